import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config, TriggerConfig, WebhookActionConfig } from '../../../../src/config/types';
import { DeliveryError, ErrorCodes } from '../../../../src/errors';
import { RawJson } from '../../../../src/events/json-text';
import { createRouter } from '../../../../src/routing';
import { webhookAction } from '../../../../src/routing/triggers/actions/webhook';
import { encodePayload, plainMessage } from '../../../../src/routing/triggers/actions/message';
import { actionTimeoutMs } from '../../../../src/routing/triggers/actions/options';
import { compileAllowList } from '../../../../src/routing/triggers/allow';
import { compileDynamic } from '../../../../src/routing/triggers/dynamic';
import type { Destination, Sink } from '../../../../src/sinks/types';
import { insertOf } from '../../events/fixtures';
import { rejected } from './errors';
import { eventOf, orderRow, orders } from './events';

describe('trigger actions: what is sent', () => {
  it('a payload that is not a string is JSON, exact numbers kept; a string is text unless it is JSON text', () => {
    const text = (p: unknown) => {
      const { body, contentType } = encodePayload(p);
      return [body.toString('utf8'), contentType];
    };
    expect(text({ id: 7, n: new RawJson('12345678901234567890'), name: 'Ada' })).to.deep.equal([
      '{"id":7,"n":12345678901234567890,"name":"Ada"}', 'application/json',
    ]);
    expect(text(42)).to.deep.equal(['42', 'application/json']);
    expect(text(null)).to.deep.equal(['null', 'application/json']);
    expect(text('sale 7 by Ada')).to.deep.equal(['sale 7 by Ada', 'text/plain; charset=utf-8']);
    expect(text('{"id": 7}')).to.deep.equal(['{"id": 7}', 'application/json']);
    expect(text('"quoted"')).to.deep.equal(['"quoted"', 'application/json']);
    expect(text('12')).to.deep.equal(['12', 'application/json']);
  });

  it("a broker message's id is the action's delivery event id, its key the row's partition key", () => {
    const delivery = new CloudEvent<unknown>({ id: 'e/trigger/r/0', source: '/s', type: 't', partitionkey: 'shop.orders/7' }, false);
    const message = plainMessage({ a: 1 }, delivery);
    expect(message).to.deep.include({ id: 'e/trigger/r/0', key: 'shop.orders/7', contentType: 'application/json' });
    expect(message.body.toString()).to.equal('{"a":1}');
  });

  it("an action's own payload wins over the rule's; another action keeps the rule's", async () => {
    const sent: CloudEvent<unknown>[] = [];
    const sink: Sink = { name: 'mem', send: async (e) => void sent.push(e), close: async () => {}, describe: () => 'mem' };
    const rule: TriggerConfig = {
      name: 'big-sale', active: true, tables: [{ schema: 'shop', name: 'orders' }], on: ['post_save'],
      payload: { rule: '{{ quantity }}' },
      actions: [{ cloudevent: {}, payload: { own: '{{ customer_name }}' } }, { cloudevent: {} }],
    };
    const config = { handler: 'http', events: { enabled: false, typePrefix: 'orm' }, triggers: [rule] } as unknown as Config;
    const handler: Destination = { name: 'http', sink, batchSize: 1 };
    const router = createRouter({ config, buildEvent: eventOf, destination: () => handler });
    const deliveries: { destination: Destination; event: CloudEvent<unknown> }[] = [];
    router.route(insertOf(orders, orderRow()), (destination, event) => deliveries.push({ destination, event }));
    for (const d of deliveries) await d.destination.sink.send(d.event);
    expect(sent.map((e) => e.data)).to.deep.equal([{ own: 'Ada' }, { rule: 12 }]);
  });

  it('timeout: the smaller of the action\'s and limits.maxActionTimeout, else delivery.timeout', () => {
    expect(actionTimeoutMs({ timeoutMs: 5000 }, 10_000, 30_000)).to.equal(5000);
    expect(actionTimeoutMs({ timeoutMs: 15_000 }, 10_000, 30_000)).to.equal(10_000);
    expect(actionTimeoutMs({}, 10_000, 30_000)).to.equal(10_000);
    expect(actionTimeoutMs({ timeoutMs: 15_000 }, undefined, 30_000)).to.equal(15_000);
    expect(actionTimeoutMs({}, undefined, 30_000)).to.equal(30_000);
  });
});

describe('trigger actions: dynamic values, read when sent', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'pgce-ha-'))));
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    delete process.env.PGCE_HA_TOKEN;
  });
  const compile = (text: string) => {
    const problems: string[] = [];
    const compiled = compileDynamic(text, 'h', { trusted: true }, problems);
    expect(problems).to.deep.equal([]);
    return compiled;
  };

  it('env: read at send; unset is final and the message names the reference only', async () => {
    const text = compile('Bearer {{ env.PGCE_HA_TOKEN }}');
    expect(text.references).to.deep.equal(['env.PGCE_HA_TOKEN']);
    const err = (await rejected(text.resolve())) as DeliveryError;
    expect(err.code).to.equal(ErrorCodes.DYNAMIC_VALUE);
    expect(err.retriable).to.equal(false);
    expect(err.message).to.equal('h: {{ env.PGCE_HA_TOKEN }} is not set in the environment');
    process.env.PGCE_HA_TOKEN = 's3cret';
    expect(await text.resolve()).to.equal('Bearer s3cret');
  });

  it('file: read again on every send (a rotated token is used), a missing file retriable without its content', async () => {
    const file = join(dir, 'token');
    const text = compile(`{{ file:${file} }}`);
    const missing = (await rejected(text.resolve())) as DeliveryError;
    expect(missing.retriable).to.equal(true);
    expect(missing.code).to.equal(ErrorCodes.DYNAMIC_VALUE);
    writeFileSync(file, 'first\n');
    expect(await text.resolve()).to.equal('first');
    writeFileSync(file, 'second\n');
    expect(await text.resolve()).to.equal('second');
  });

  it('module: loaded once; a string export as it is, a function export called on every send', async () => {
    const file = join(dir, 'values.js');
    writeFileSync(file, 'globalThis.pgceHaLoads = (globalThis.pgceHaLoads ?? 0) + 1; let n = 0;\n' +
      'exports.token = "tok"; exports.next = async () => `n${++n}`; exports.bad = 3n;\n');
    const g = globalThis as { pgceHaLoads?: number };
    const token = compile(`{{ module:${file}#token }}`);
    const next = compile(`{{ module:${file}#next }}`);
    expect(await token.resolve()).to.equal('tok');
    expect(await next.resolve()).to.equal('n1');
    expect(await next.resolve()).to.equal('n2');
    expect(g.pgceHaLoads, 'imported once').to.equal(1);
    const bad = (await rejected(compile(`{{ module:${file}#bad }}`).resolve())) as DeliveryError;
    expect(bad.retriable).to.equal(false);
    expect(bad.message).to.include('is not a string, a number, or a function returning one');
  });
});

/** A loopback HTTP server whose answers the test scripts; every request recorded. */
async function server(answer: (req: http.IncomingMessage, n: number) => { status: number; headers?: Record<string, string> } | 'hang') {
  const requests: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString() });
      const a = answer(req, requests.length);
      if (a === 'hang') return;
      res.writeHead(a.status, a.headers).end('answer body');
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`, requests,
    close: () => new Promise<void>((resolve) => { srv.closeAllConnections(); srv.close(() => resolve()); }),
  };
}

describe('trigger actions: the webhook target (an in-process HTTP server)', () => {
  const delivery = new CloudEvent<unknown>({ id: 'ev-1/trigger/big-sale/0', source: '/s', type: 'orm.trigger.big-sale', partitionkey: 'k', trigger: 'big-sale' }, false);
  const config = (over: Partial<Config> = {}) =>
    ({ delivery: { timeoutMs: 2000 }, sink: { caCertsDir: '/nonexistent' }, limits: {}, ...over }) as unknown as Config;
  const target = (webhook: Partial<WebhookActionConfig['webhook']> & { url: string }, extra: Partial<WebhookActionConfig> = {}, over: Partial<Config> = {}, trusted = true) =>
    webhookAction.target({ webhook: { method: 'POST', headers: {}, ...webhook }, ...extra }, { config: config(over), trusted, where: 'triggers[0].actions[0]', defaultSink: () => { throw new Error('unused'); } });

  it('sends the method, the headers (your Content-Type wins in bare mode), the Idempotency-Key; GET has no body', async () => {
    const s = await server(() => ({ status: 200 }));
    try {
      const put = target({ url: `${s.url}/a?x=1`, method: 'PUT', headers: { 'X-Team': 'pay', 'Content-Type': 'application/vnd.x+json' } });
      expect(await put.send({ a: 1 }, delivery)).to.deep.equal({ status: 200 });
      const get = target({ url: `${s.url}/b`, method: 'GET' });
      await get.send({ ignored: true }, delivery);
      const [first, second] = s.requests;
      expect(first).to.deep.include({ method: 'PUT', url: '/a?x=1', body: '{"a":1}' });
      expect(first.headers).to.deep.include({ 'x-team': 'pay', 'content-type': 'application/vnd.x+json', 'idempotency-key': 'ev-1/trigger/big-sale/0' });
      expect(second).to.deep.include({ method: 'GET', url: '/b', body: '' });
      expect(second.headers['content-type']).to.equal(undefined);
      expect(second.headers['idempotency-key']).to.equal('ev-1/trigger/big-sale/0');
      await Promise.all([put.close(), get.close()]);
    } finally {
      await s.close();
    }
  });

  it('classifies answers as the sink does: 503 with Retry-After retriable and waits, 400 final, 404 retriable', async () => {
    const answers = [{ status: 503, headers: { 'retry-after': '3' } }, { status: 400 }, { status: 404 }];
    const s = await server((_req, n) => answers[n - 1]);
    const t = target({ url: s.url });
    try {
      const busy = (await rejected(t.send('x', delivery))) as DeliveryError;
      expect(busy).to.include({ retriable: true, status: 503, retryAfterMs: 3000 });
      expect(busy.message).to.match(/^webhook POST http:\/\/127\.0\.0\.1:\d+ answered 503 Service Unavailable: answer body$/);
      expect((await rejected(t.send('x', delivery))) as DeliveryError).to.include({ retriable: false, status: 400, code: ErrorCodes.SINK_FINAL });
      expect((await rejected(t.send('x', delivery))) as DeliveryError).to.include({ retriable: true, status: 404 });
    } finally {
      await t.close();
      await s.close();
    }
  });

  it('a receiver that does not answer within the timeout is a retriable PGCE_ERR_ACTION_TIMEOUT; limits cap the timeout', async () => {
    const s = await server(() => 'hang');
    const t = target({ url: s.url }, { timeoutMs: 5000 }, { limits: { maxActionTimeoutMs: 100 } } as Partial<Config>);
    try {
      const err = (await rejected(t.send({}, delivery))) as DeliveryError;
      expect(err).to.include({ retriable: true, code: ErrorCodes.ACTION_TIMEOUT });
      expect(err.message).to.match(/did not answer within 100 ms$/);
    } finally {
      await t.close();
      await s.close();
    }
  });

  it('a URL with dynamic values is checked when resolved: a refusal is final, names the setting, never the value', async () => {
    process.env.PGCE_HA_HOST = '169.254.169.254';
    try {
      const allow = compileAllowList({ webhookUrls: ['https?://.*'], dynamicValues: ['env.PGCE_HA_HOST'] });
      const t = target({ url: 'http://{{ env.PGCE_HA_HOST }}/latest' }, {}, { allow } as Partial<Config>, false);
      const err = (await rejected(t.send({}, delivery))) as DeliveryError;
      expect(err).to.include({ retriable: false, code: ErrorCodes.URL_NOT_ALLOWED });
      expect(err.message).to.include('allow.webhookUrls').and.include('{{ env.PGCE_HA_HOST }}');
      expect(err.message).to.not.include('169.254');
      await t.close();
    } finally {
      delete process.env.PGCE_HA_HOST;
    }
  });

  it('format: cloudevent sends the derived event in binary mode (ce- headers, data the payload)', async () => {
    const s = await server(() => ({ status: 202 }));
    const t = target({ url: s.url, headers: { 'ce-type': 'spoofed' } }, { format: 'cloudevent' });
    try {
      await t.send({ id: 7 }, delivery);
      const [req] = s.requests;
      expect(req.headers).to.deep.include({ 'ce-id': 'ev-1/trigger/big-sale/0', 'ce-type': 'orm.trigger.big-sale', 'ce-trigger': 'big-sale', 'content-type': 'application/json' });
      expect(JSON.parse(req.body)).to.deep.equal({ id: 7 });
    } finally {
      await t.close();
      await s.close();
    }
  });
});
