import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeliveryConfig, SinkConfig } from '../../../src/config/types';
import { deliverWithRetry, type AttemptFailure } from '../../../src/delivery/deliver';
import { DeliveryError, ErrorCodes, PgceError } from '../../../src/errors';
import { HttpSink } from '../../../src/sinks/http';
import { startReceiver, type Receiver } from '../harness/receiver';
import { closedPort, proxyFaults } from '../harness/net';
import { describeSinkConformance } from './conformance';
import { failure } from './support';

const NO_DIR = join(tmpdir(), 'pgce-c-no-such-dir');

function sinkConfig(url: string, over: Partial<SinkConfig> = {}): SinkConfig {
  return { url, mode: 'binary', batchSize: 100, timeoutMs: 5000, caCertsDir: NO_DIR, oidcTokenPath: join(NO_DIR, 'token'), ...over };
}

const fast: DeliveryConfig = { backoffPolicy: 'exponential', backoffDelayMs: 10, backoffMaxMs: 50, timeoutMs: 5000, maxInFlight: 1, maxBufferBytes: 1 << 26 };

function sampleEvent(over: Record<string, unknown> = {}): CloudEvent<unknown> {
  return new CloudEvent<unknown>({
    specversion: '1.0',
    id: '00000000016B3748-00000003',
    source: '/pg-cloudevents/app',
    type: 'orm.post_save',
    subject: 'DCE:polls.question/22',
    time: '2020-12-01T09:43:00.250Z',
    datacontenttype: 'application/json',
    app: 'polls',
    model: 'question',
    sequence: '00000000016B3748-00000003',
    partitionkey: 'polls.question/22',
    data: { data: { id: 22, question_text: 'How are you?' }, db_table: 'polls_question' },
    ...over,
  });
}

describeSinkConformance('http (binary mode, real receiver)', async () => {
  const receiver = await startReceiver();
  const port = Number(new URL(receiver.url).port);
  return {
    sink: async () => new HttpSink(sinkConfig(receiver.url)),
    readBack: (count, timeoutMs) => receiver.waitFor(count, timeoutMs),
    unreachableSink: async () => new HttpSink(sinkConfig(`http://127.0.0.1:${await closedPort()}/`, { timeoutMs: 2000 })),
    faultySink: async (timeoutMs) => {
      const faults = await proxyFaults(port);
      return { faults, sink: new HttpSink(sinkConfig(`http://127.0.0.1:${faults.port}/`, { timeoutMs })) };
    },
    cleanup: () => receiver.close(),
  };
}, { sendBatch: true });

describe('sinks/http against a real receiver', function () {
  let receiver: Receiver;
  let sink: HttpSink;

  beforeEach(async () => {
    receiver = await startReceiver();
  });
  afterEach(async () => {
    await sink?.close();
    await receiver.close();
  });

  it('binary mode: ce- headers, content-type and the JSON body exactly', async () => {
    sink = new HttpSink(sinkConfig(receiver.url));
    const event = sampleEvent();
    await sink.send(event);
    expect(receiver.errors).to.deep.equal([]);
    const [req] = receiver.requests;
    expect(req.mode).to.equal('binary');
    const ce = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k.startsWith('ce-')));
    expect(ce).to.deep.equal({
      'ce-specversion': '1.0',
      'ce-id': '00000000016B3748-00000003',
      'ce-source': '/pg-cloudevents/app',
      'ce-type': 'orm.post_save',
      'ce-subject': 'DCE:polls.question/22',
      'ce-time': '2020-12-01T09:43:00.250Z',
      'ce-app': 'polls',
      'ce-model': 'question',
      'ce-sequence': '00000000016B3748-00000003',
      'ce-partitionkey': 'polls.question/22',
    });
    expect(req.headers['content-type']).to.equal('application/json');
    expect(JSON.parse(req.body)).to.deep.equal(event.data);
    expect(receiver.events[0].toJSON()).to.deep.equal(event.toJSON());
  });

  it('falls back to structured mode for a non-ASCII subject or extension, and the event round-trips', async () => {
    sink = new HttpSink(sinkConfig(receiver.url));
    const accented = sampleEvent({ subject: 'DCE:polls.question/Zürich' });
    const spaced = sampleEvent({ id: 'x-2', tenant: 'Acme Corp' });
    const plain = sampleEvent({ id: 'x-3' });
    for (const e of [accented, spaced, plain]) await sink.send(e);
    expect(receiver.errors).to.deep.equal([]);
    expect(receiver.requests.map((r) => r.mode)).to.deep.equal(['structured', 'structured', 'binary']);
    expect(receiver.requests[0].headers['content-type']).to.match(/^application\/cloudevents\+json/);
    expect(receiver.requests[0].headers).not.to.have.property('ce-subject');
    expect(receiver.events[0].toJSON()).to.deep.equal(accented.toJSON());
    expect(receiver.events[1].toJSON()).to.deep.equal(spaced.toJSON());
  });

  it('mode structured sends every event structured', async () => {
    sink = new HttpSink(sinkConfig(receiver.url, { mode: 'structured' }));
    const event = sampleEvent();
    await sink.send(event);
    expect(receiver.requests[0].mode).to.equal('structured');
    expect(JSON.parse(receiver.requests[0].body)).to.deep.equal(JSON.parse(event.toString()));
    expect(receiver.events[0].toJSON()).to.deep.equal(event.toJSON());
  });

  it('classifies answers by Knative’s table', async () => {
    sink = new HttpSink(sinkConfig(receiver.url));
    const statuses = [200, 202, 400, 401, 403, 404, 408, 409, 429, 500, 503, 301];
    receiver.respondWith((_req, n) => ({ status: statuses[n - 1], body: 'nope' }));
    const outcomes: Record<number, string> = {};
    for (const status of statuses) {
      try {
        await sink.send(sampleEvent({ id: `s-${status}` }));
        outcomes[status] = 'delivered';
      } catch (err) {
        expect(err).to.be.instanceOf(DeliveryError);
        expect((err as DeliveryError).status).to.equal(status);
        outcomes[status] = (err as DeliveryError).retriable ? 'retriable' : 'final';
      }
    }
    expect(outcomes).to.deep.equal({
      200: 'delivered', 202: 'delivered',
      400: 'final', 401: 'final', 403: 'final', 301: 'final',
      404: 'retriable', 408: 'retriable', 409: 'retriable', 429: 'retriable', 500: 'retriable', 503: 'retriable',
    });
  });

  it('the error names the status and quotes at most 512 characters of the answer', async () => {
    sink = new HttpSink(sinkConfig(receiver.url));
    receiver.respondWith(() => ({ status: 503, body: `overloaded ${'x'.repeat(5000)}` }));
    const err = await failure(sink.send(sampleEvent()));
    expect(err.message).to.match(/^sink answered 503 Service Unavailable: overloaded x+/);
    const excerpt = err.message.slice(err.message.indexOf(': ') + 2);
    expect(excerpt.length).to.be.at.most(512);
    expect(err.code).to.equal(ErrorCodes.SINK_RETRIABLE);

    receiver.respondWith(() => ({ status: 302, headers: { location: 'http://127.0.0.1:1/' } }));
    const redirect = await failure(sink.send(sampleEvent()));
    expect(redirect.retriable).to.equal(false);
    expect(redirect.message).to.match(/302 Found.*redirects are not followed/);
  });

  it('honours Retry-After in seconds', async () => {
    sink = new HttpSink(sinkConfig(receiver.url));
    receiver.respondWith((_r, n) => (n === 1 ? { status: 503, headers: { 'retry-after': '1' } } : undefined));
    const result = await deliverWithRetry(sink, sampleEvent(), fast);
    expect(result.attempts).to.equal(2);
    const gap = receiver.requests[1].at - receiver.requests[0].at;
    expect(gap).to.be.at.least(1000);
    expect(gap).to.be.below(3000);
  });

  it('honours Retry-After as an HTTP-date', async () => {
    sink = new HttpSink(sinkConfig(receiver.url));
    let retryAt = 0;
    receiver.respondWith((_r, n) => {
      if (n > 1) return undefined;
      retryAt = Math.ceil((Date.now() + 1500) / 1000) * 1000; // HTTP-dates have whole seconds
      return { status: 429, headers: { 'retry-after': new Date(retryAt).toUTCString() } };
    });
    const result = await deliverWithRetry(sink, sampleEvent(), fast);
    expect(result.attempts).to.equal(2);
    expect(receiver.requests[1].at).to.be.at.least(retryAt - 5);
    expect(receiver.requests[1].at - receiver.requests[0].at).to.be.at.least(1400);
  });

  it('a timeout is a retriable failure', async () => {
    sink = new HttpSink(sinkConfig(receiver.url, { timeoutMs: 150 }));
    receiver.respondWith(() => ({ status: 200, delayMs: 2000 }));
    const started = Date.now();
    const err = await failure(sink.send(sampleEvent()));
    expect(Date.now() - started).to.be.below(1500);
    expect(err).to.be.instanceOf(DeliveryError);
    expect(err.retriable).to.equal(true);
    expect(err.message).to.match(/did not answer within 150 ms/);
  });

  it('connection refused is a retriable SINK_UNREACHABLE, and the password never shows', async () => {
    const port = await closedPort();
    sink = new HttpSink(sinkConfig(`http://user:hunter2@127.0.0.1:${port}/`));
    const err = await failure(sink.send(sampleEvent()));
    expect(err.retriable).to.equal(true);
    expect(err.code).to.equal(ErrorCodes.SINK_UNREACHABLE);
    expect(err.message).to.match(/ECONNREFUSED/);
    expect(err.message).not.to.include('hunter2');
    expect(err.cause).to.be.an('error');
  });

  it('check(): any answer is fine; a refused connection names K_SINK', async () => {
    sink = new HttpSink(sinkConfig(receiver.url));
    await sink.check();
    const port = await closedPort();
    const down = new HttpSink(sinkConfig(`http://127.0.0.1:${port}/`));
    try {
      const err = await failure(down.check());
      expect(err).to.be.instanceOf(PgceError);
      expect(err.code).to.equal(ErrorCodes.SINK_UNREACHABLE);
      expect(err.message).to.match(new RegExp(`K_SINK http://127.0.0.1:${port}/ is not reachable.*ECONNREFUSED`));
    } finally {
      await down.close();
    }
  });

  it('deliverWithRetry: 503, 503, 200 → delivered after 3 attempts', async () => {
    sink = new HttpSink(sinkConfig(receiver.url));
    receiver.respondWith((_r, n) => (n <= 2 ? { status: 503 } : { status: 200 }));
    const failures: AttemptFailure[] = [];
    const result = await deliverWithRetry(sink, sampleEvent(), fast, { onAttemptFailed: (f) => failures.push(f) });
    expect(result.attempts).to.equal(3);
    expect(receiver.requests.map((r) => r.status)).to.deep.equal([503, 503, 200]);
    expect(receiver.accepted).to.have.length(1);
    expect(failures.map((f) => f.error.status)).to.deep.equal([503, 503]);
  });

  it('deliverWithRetry: retry 2 against a sink that stays at 500 throws after 3 attempts', async () => {
    sink = new HttpSink(sinkConfig(receiver.url));
    receiver.respondWith(() => ({ status: 500 }));
    const err = await failure(deliverWithRetry(sink, sampleEvent(), { ...fast, retry: 2 }));
    expect(err.status).to.equal(500);
    expect((err as unknown as { attempts: number }).attempts).to.equal(3);
    expect(receiver.requests).to.have.length(3);
  });

  it('deliverWithRetry: abort while waiting stops promptly without another request', async () => {
    sink = new HttpSink(sinkConfig(receiver.url));
    receiver.respondWith(() => ({ status: 503 }));
    const ac = new AbortController();
    const slow = { ...fast, backoffDelayMs: 30_000, backoffMaxMs: 30_000 };
    const delivering = deliverWithRetry(sink, sampleEvent(), slow, { signal: ac.signal });
    await receiver.waitFor(1);
    const abortedAt = Date.now();
    ac.abort();
    const err = await failure(delivering);
    expect(err.name).to.equal('AbortError');
    expect(Date.now() - abortedAt).to.be.below(500);
    expect(receiver.requests).to.have.length(1);
  });

  it('reuses kept-alive TCP connections across sequential requests', async () => {
    sink = new HttpSink(sinkConfig(receiver.url));
    receiver.respondWith((_r, n) => (n === 3 ? { status: 503, body: 'busy' } : undefined));
    for (let i = 0; i < 6; i++) await sink.send(sampleEvent({ id: `k-${i}` })).catch(() => undefined);
    expect(receiver.requests).to.have.length(6);
    // A request sent in the same tick as the previous answer completed may find its connection
    // not yet back in undici's pool and open one more; after that the pool reuses them. Without
    // keep-alive every request would open its own connection (6).
    expect(receiver.connections()).to.be.at.most(2);
    const perConnection = new Map<number, number>();
    for (const r of receiver.requests) perConnection.set(r.connection, (perConnection.get(r.connection) ?? 0) + 1);
    expect(Math.max(...perConnection.values()), 'one connection carried several requests').to.be.at.least(3);
  });

  describe('batch mode (HTTP binding §3.3)', () => {
    const batchOf = (n: number) =>
      Array.from({ length: n }, (_, i) => sampleEvent({ id: `b-${i}`, subject: `DCE:polls.question/${i}`, partitionkey: `polls.question/${i}` }));

    it('sends N events as one application/cloudevents-batch+json request that the SDK reads back as N events', async () => {
      sink = new HttpSink(sinkConfig(receiver.url, { mode: 'batch' }));
      const events = batchOf(5);
      const result = await sink.sendBatch(events);
      expect(result).to.deep.equal({ status: 202 });
      expect(receiver.errors).to.deep.equal([]);
      expect(receiver.requests).to.have.length(1);
      const [req] = receiver.requests;
      expect(req.mode).to.equal('batch');
      expect(req.eventCount).to.equal(5);
      expect(req.headers['content-type']).to.equal('application/cloudevents-batch+json; charset=utf-8');
      // No ce- headers: every attribute travels in the body (JSON Batch Format, JSON format §4).
      expect(Object.keys(req.headers).filter((h) => h.startsWith('ce-'))).to.deep.equal([]);
      const body = JSON.parse(req.body);
      expect(body).to.be.an('array').with.length(5);
      expect(body[0]).to.deep.equal(JSON.parse(events[0].toString()));
      expect(receiver.events.map((e) => e.toJSON())).to.deep.equal(events.map((e) => e.toJSON()));
      for (const e of receiver.events) expect(e.validate()).to.equal(true);
    });

    it('an empty batch sends nothing', async () => {
      sink = new HttpSink(sinkConfig(receiver.url, { mode: 'batch' }));
      await sink.sendBatch([]);
      expect(receiver.requests).to.have.length(0);
    });

    it('single sends stay binary in batch mode', async () => {
      sink = new HttpSink(sinkConfig(receiver.url, { mode: 'batch' }));
      await sink.send(sampleEvent());
      expect(receiver.requests[0].mode).to.equal('binary');
    });

    it('a 503 for the batch is retriable (with Retry-After), a 400 final, with the answer body kept', async () => {
      sink = new HttpSink(sinkConfig(receiver.url, { mode: 'batch' }));
      receiver.respondWith((_req, n) =>
        n === 1 ? { status: 503, headers: { 'retry-after': '2' }, body: 'busy' } : { status: 400, body: 'bad batch' },
      );
      const busy = await failure(sink.sendBatch(batchOf(3)));
      expect(busy.retriable).to.equal(true);
      expect(busy.status).to.equal(503);
      expect(busy.retryAfterMs).to.equal(2000);
      const bad = await failure(sink.sendBatch(batchOf(3)));
      expect(bad.retriable).to.equal(false);
      expect(bad.status).to.equal(400);
      expect(bad.code).to.equal(ErrorCodes.SINK_FINAL);
      expect(Buffer.from(bad.detail.responseBodyBase64 as string, 'base64').toString()).to.equal('bad batch');
      expect(receiver.requests.map((r) => r.eventCount)).to.deep.equal([3, 3]);
    });

    it('sends the bearer token with a batch too', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'pgce-e2-oidc-'));
      try {
        writeFileSync(join(dir, 'token'), 'batch.token\n');
        sink = new HttpSink(sinkConfig(receiver.url, { mode: 'batch', oidcTokenPath: join(dir, 'token') }));
        await sink.sendBatch(batchOf(2));
        expect(receiver.requests[0].headers.authorization).to.equal('Bearer batch.token');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a batch that does not answer within the timeout fails retriably', async () => {
      sink = new HttpSink(sinkConfig(receiver.url, { mode: 'batch', timeoutMs: 200 }));
      receiver.respondWith(() => ({ status: 202, delayMs: 2000 }));
      const err = await failure(sink.sendBatch(batchOf(2)));
      expect(err.retriable).to.equal(true);
      expect(err.message).to.match(/did not answer within 200 ms/);
    });
  });

  it('keeps at most 1 KiB of a failed answer’s body, byte for byte, for knativeerrordata', async () => {
    sink = new HttpSink(sinkConfig(receiver.url));
    const body = `${'é'.repeat(300)}${'z'.repeat(2000)}`;
    receiver.respondWith(() => ({ status: 400, body }));
    const err = await failure(sink.send(sampleEvent()));
    const kept = Buffer.from(err.detail.responseBodyBase64 as string, 'base64');
    expect(kept.length).to.equal(1024);
    expect(kept.equals(Buffer.from(body, 'utf8').subarray(0, 1024))).to.equal(true);
  });

  it('posts to the K_SINK path and query as given', async () => {
    sink = new HttpSink(sinkConfig(`${receiver.url}hooks/pg?tenant=a&x=%20y`));
    await sink.send(sampleEvent({ id: 'p-1' }));
    await sink.sendBatch([sampleEvent({ id: 'p-2' })]);
    expect(receiver.requests.map((r) => r.path)).to.deep.equal(['/hooks/pg?tenant=a&x=%20y', '/hooks/pg?tenant=a&x=%20y']);
  });

  it('an answer longer than 256 KiB is not read to its end: its status still decides, and the next send works', async () => {
    sink = new HttpSink(sinkConfig(receiver.url));
    const huge = 'x'.repeat(4 * 1024 * 1024);
    receiver.respondWith(() => ({ status: 202, body: huge }));
    expect(await sink.send(sampleEvent({ id: 'big-ok' }))).to.deep.equal({ status: 202 });
    receiver.respondWith(() => ({ status: 503, body: huge }));
    const err = await failure(sink.send(sampleEvent({ id: 'big-503' })));
    expect(err.retriable).to.equal(true);
    expect(err.status).to.equal(503);
    expect(Buffer.from(err.detail.responseBodyBase64 as string, 'base64').toString()).to.equal('x'.repeat(1024));
    receiver.respondWith(() => ({ status: 202 }));
    expect(await sink.send(sampleEvent({ id: 'after' }))).to.deep.equal({ status: 202 });
  });

  describe('OIDC token file', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'pgce-c-oidc-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('sends the token as a bearer and re-reads it when the file changes', async () => {
      const path = join(dir, 'token');
      // maxAgeMs 0: look at the file on every send, so each change shows on the next request.
      sink = new HttpSink(sinkConfig(receiver.url, { oidcTokenPath: path }), { tokenFile: { maxAgeMs: 0 } });
      await sink.send(sampleEvent({ id: 't-0' }));
      writeFileSync(path, 'first.token\n');
      await sink.send(sampleEvent({ id: 't-1' }));
      writeFileSync(path, 'second.rotated.token\n');
      await sink.send(sampleEvent({ id: 't-2' }));
      rmSync(path);
      await sink.send(sampleEvent({ id: 't-3' }));
      expect(receiver.requests.map((r) => r.headers.authorization)).to.deep.equal([
        undefined,
        'Bearer first.token',
        'Bearer second.rotated.token',
        undefined,
      ]);
    });
  });

  describe('https', () => {
    let dir: string;
    let caPem: string;
    let tlsReceiver: Receiver;

    before(function () {
      this.timeout(30_000);
      dir = mkdtempSync(join(tmpdir(), 'pgce-c-tls-'));
      const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
      run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=pgce test CA');
      run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
      writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
      run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext');
      caPem = readFileSync(join(dir, 'ca.pem'), 'utf8');
    });
    beforeEach(async () => {
      tlsReceiver = await startReceiver({
        tls: { key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.pem')) },
      });
    });
    afterEach(() => tlsReceiver.close());
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('trusts the CA given in K_CA_CERTS', async () => {
      sink = new HttpSink(sinkConfig(tlsReceiver.url, { caCerts: caPem }));
      await sink.send(sampleEvent());
      expect(tlsReceiver.events).to.have.length(1);
      expect(tlsReceiver.errors).to.deep.equal([]);
    });

    it('trusts a CA file in caCertsDir', async () => {
      const certsDir = join(dir, 'custom-certs');
      execFileSync('mkdir', ['-p', certsDir]);
      writeFileSync(join(certsDir, 'bundle.pem'), caPem);
      sink = new HttpSink(sinkConfig(tlsReceiver.url, { caCertsDir: certsDir }));
      await sink.send(sampleEvent());
      expect(tlsReceiver.events).to.have.length(1);
    });

    it('refuses the self-signed chain without it', async () => {
      sink = new HttpSink(sinkConfig(tlsReceiver.url));
      const err = await failure(sink.send(sampleEvent()));
      expect(err.code).to.equal(ErrorCodes.SINK_UNREACHABLE);
      expect(err.message).to.match(/certificate/i);
      expect(tlsReceiver.events).to.have.length(0);
    });
  });
});
