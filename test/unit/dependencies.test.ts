/**
 * pg, cloudevents and undici are pinned to a minor version (`~` in package.json) because the code
 * relies on parts of them that are not their documented API, or on details their docs do not
 * promise (docs/dependencies.md lists each one and why). This file fails loudly when an upgrade
 * changes one: first when the installed minor is not the pinned one, then per internal, naming it
 * and where it is used. pg's replication internals are exercised against a fake walsender on
 * loopback (mocked: unit tests have no PostgreSQL), undici's dispatcher against a local HTTP server.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import { CloudEvent, CONSTANTS, HTTP } from 'cloudevents';
import { Client } from 'pg';
import { errors as undiciErrors, Pool } from 'undici';
import { createEvent } from '../../src/events/format';
import { RESERVED_ATTRIBUTES } from '../../src/events/overrides';
import { isEventSource } from '../../src/events/source';
import { structuredJson } from '../../src/events/structured';
import { exchange } from '../../src/sinks/http/exchange';
import { ReplicationStream } from '../../src/sources/logical/stream';

const REPO_ROOT = path.join(__dirname, '..', '..', '..');
const PINNED = ['pg', 'cloudevents', 'undici'] as const;

/** The failure message: which internal of which dependency, and the code that relies on it. */
function broken(dependency: string, internal: string, usedIn: string): string {
  return `${dependency} ${installedVersion(dependency)}: ${internal} changed; used by ${usedIn} ` +
    `(docs/dependencies.md). Adapt that code before moving the pin in package.json`;
}

function installedVersion(name: string): string {
  let dir = path.dirname(require.resolve(name));
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version: string };
      if (pkg.name === name) return pkg.version;
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`package.json of ${name} not found above ${require.resolve(name)}`);
    dir = up;
  }
}

const minorOf = (version: string): string => /^(\d+\.\d+)\./.exec(version)?.[1] ?? version;

describe('dependencies: pinned minors and the internals the code relies on', () => {
  describe('pins', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const name of PINNED) {
      it(`${name}: pinned with ~ and installed at the pinned minor`, () => {
        const range = pkg.dependencies[name];
        expect(range, `package.json pins ${name} with ~ (a minor may change the internals below)`).to.match(/^~\d+\.\d+\.\d+$/);
        const pinned = minorOf(range.slice(1));
        expect(minorOf(installedVersion(name)),
          `${name} ${installedVersion(name)} is installed but package.json pins ${range}: the internals in ` +
          `docs/dependencies.md were checked against ${pinned}; run this file against the new version, adapt, then move the pin`,
        ).to.equal(pinned);
      });
    }
  });

  describe('pg: the replication connection (src/sources/logical/stream.ts)', () => {
    const where = 'src/sources/logical/stream.ts';

    it('Client#connection is the protocol Connection: an EventEmitter with sendCopyFromChunk and its socket as `stream`', () => {
      const client = new Client({ host: '127.0.0.1', port: 1 });
      const connection = (client as unknown as { connection?: unknown }).connection as
        { sendCopyFromChunk?: unknown; stream?: { pause?: unknown; resume?: unknown } } | undefined;
      expect(connection instanceof EventEmitter, broken('pg', 'Client#connection (an EventEmitter)', `${where} (replicationStart)`)).to.equal(true);
      expect(typeof connection!.sendCopyFromChunk, broken('pg', 'Connection#sendCopyFromChunk', `${where} (standby status updates)`)).to.equal('function');
      expect(typeof connection!.stream?.pause, broken('pg', 'Connection#stream.pause', `${where} (backpressure: pause())`)).to.equal('function');
      expect(typeof connection!.stream?.resume, broken('pg', 'Connection#stream.resume', `${where} (backpressure: resume())`)).to.equal('function');
    });

    it('streams through a submittable query against a fake walsender: replication=database, replicationStart, CopyData both ways, pause', async () => {
      const walsender = await FakeWalsender.start();
      const data: Buffer[] = [];
      const stream = new ReplicationStream({
        connectionString: `postgres://u@127.0.0.1:${walsender.port}/db`,
        slot: 's"lot', publication: 'pub', statusIntervalMs: 60_000,
        onData: (payload) => data.push(Buffer.from(payload)),
      });
      try {
        await within(stream.start(0x1000n), broken('pg', "the Connection's 'replicationStart' event for CopyBothResponse ('W')", where));
        expect(walsender.startup.replication, broken('pg', 'the `replication` connection option (startup parameter)', where)).to.equal('database');
        expect(walsender.queries, broken('pg', 'Client#query(submittable) calling submit(connection)', where))
          .to.deep.equal([`START_REPLICATION SLOT "s""lot" LOGICAL 0/1000 (proto_version '1', messages 'true', publication_names '"pub"')`]);

        walsender.copyData(xlogData(0x2000n, Buffer.from('Bpayload')));
        walsender.copyData(keepalive(0x3000n, true));
        const reply = await within(walsender.nextStatusUpdate(), broken('pg', "CopyData routed to handleCopyData, or Connection#sendCopyFromChunk", where));
        expect(data.map((d) => d.toString()), broken('pg', "CopyData ('d') routed to the active query's handleCopyData", where)).to.deep.equal(['Bpayload']);
        expect(reply.flush, broken('pg', 'Connection#sendCopyFromChunk (a keepalive asking for a reply is answered)', where)).to.equal(0x1000n);

        stream.acknowledge(0x2100n);
        stream.flush();
        expect((await walsender.nextStatusUpdate()).flush).to.equal(0x2100n);

        // Backpressure pauses the very socket pg reads from.
        const socket = (stream as unknown as { client: { connection: { stream: net.Socket } } }).client.connection.stream;
        stream.pause();
        expect(socket.isPaused(), broken('pg', 'Connection#stream (the socket pg reads)', `${where} (backpressure: pause())`)).to.equal(true);
        walsender.copyData(xlogData(0x4000n, Buffer.from('Bwhile paused')));
        walsender.copyData(keepalive(0x4100n, true));
        stream.resume();
        expect(socket.isPaused()).to.equal(false);
        await within(walsender.nextStatusUpdate(), broken('pg', 'Connection#stream.resume()', `${where} (backpressure)`));
        expect(data.map((d) => d.toString())).to.deep.equal(['Bpayload', 'Bwhile paused']);
      } finally {
        await stream.stop();
        await walsender.close();
      }
    });

    it("a refused START_REPLICATION arrives through the submittable's handleError, with its SQLSTATE", async () => {
      const walsender = await FakeWalsender.start({ refuse: { code: '42704', message: 'replication slot "x" does not exist' } });
      const stream = new ReplicationStream({
        connectionString: `postgres://u@127.0.0.1:${walsender.port}/db`, slot: 'x', publication: 'p', statusIntervalMs: 60_000, onData: () => undefined,
      });
      try {
        const err = await stream.start().then(() => undefined, (e: unknown) => e as { message: string; retriable: boolean; detail?: { sqlstate?: string } });
        expect(err?.message, broken('pg', "ErrorResponse routed to the active query's handleError", where)).to.contain('does not exist');
        expect(err?.detail?.sqlstate, broken('pg', 'the error\'s `code` (SQLSTATE)', where)).to.equal('42704');
        expect(err?.retriable).to.equal(false);
      } finally {
        await stream.stop();
        await walsender.close();
      }
    });
  });

  describe('cloudevents', () => {
    const attributes = {
      id: 'id-1', type: 'com.example.t', source: '/s', time: '2024-05-01T10:00:00.000Z', subject: 'sub',
      datacontenttype: 'application/json', data: { a: 1 }, partitionkey: 'k',
    };

    it("createEvent builds what new CloudEvent(attributes, false) builds: prototype, own keys in order, frozen", () => {
      const sdk = new CloudEvent(attributes, false) as unknown as Record<string, unknown>;
      const ours = createEvent(attributes) as unknown as Record<string, unknown>;
      const used = 'src/events/format.ts (createEvent)';
      expect(Object.getPrototypeOf(ours), broken('cloudevents', 'CloudEvent.prototype', used)).to.equal(Object.getPrototypeOf(sdk));
      expect(Object.keys(ours), broken('cloudevents', "the constructor's own attribute keys and their order", used)).to.deep.equal(Object.keys(sdk));
      expect(Object.isFrozen(ours), broken('cloudevents', 'events being frozen', used)).to.equal(Object.isFrozen(sdk));
      expect(structuredJson(ours as never), broken('cloudevents', 'CloudEvent#toJSON (the structured form)', 'src/events/structured.ts'))
        .to.equal(JSON.stringify(sdk));
    });

    it("every lower-case method of CloudEvent is a reserved override name (it would shadow the method)", () => {
      const methods = Object.getOwnPropertyNames(CloudEvent.prototype).filter((n) => /^[a-z0-9]+$/.test(n));
      expect(methods.filter((m) => !RESERVED_ATTRIBUTES.has(m)),
        broken('cloudevents', 'CloudEvent.prototype method names', 'src/events/overrides.ts (RESERVED_ATTRIBUTES)')).to.deep.equal([]);
    });

    it('strict construction (new CloudEvent(…, true)) rejects an empty source and accepts a URI-reference', () => {
      const used = 'src/events/source.ts (isEventSource, the configuration\'s source check)';
      expect(isEventSource(''), broken('cloudevents', 'strict validation of `source`', used)).to.equal(false);
      expect(isEventSource('/orders'), broken('cloudevents', 'strict validation of `source`', used)).to.equal(true);
    });

    it('the content types and header name the sinks write out themselves', () => {
      const used = 'src/sinks/http/encode.ts, kafka/, mqtt/, rabbitmq/';
      expect(CONSTANTS.DEFAULT_CONTENT_TYPE, broken('cloudevents', 'CONSTANTS.DEFAULT_CONTENT_TYPE', used)).to.equal('application/json; charset=utf-8');
      expect(CONSTANTS.DEFAULT_CE_CONTENT_TYPE, broken('cloudevents', 'CONSTANTS.DEFAULT_CE_CONTENT_TYPE', used)).to.equal('application/cloudevents+json; charset=utf-8');
      expect(CONSTANTS.HEADER_CONTENT_TYPE, broken('cloudevents', 'CONSTANTS.HEADER_CONTENT_TYPE', used)).to.equal('content-type');
      const event = new CloudEvent({ ...attributes, datacontenttype: undefined });
      expect(HTTP.binary(event).headers['content-type'], broken('cloudevents', "HTTP.binary's default Content-Type", 'src/sinks/http/encode.ts'))
        .to.equal('application/json; charset=utf-8');
    });
  });

  describe('undici: the HTTP sink (src/sinks/http)', () => {
    let server: http.Server;
    let origin: string;
    before(async () => {
      server = http.createServer((req, res) => {
        if (req.url === '/busy') res.writeHead(503, { 'Retry-After': '7' }).end('try later');
        else res.writeHead(202).end('ok');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      origin = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    });
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it("Pool with the sink's options, and dispatch() with the handler callbacks exchange.ts implements", async () => {
      const pool = new Pool(origin, { pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: 5_000, bodyTimeout: 5_000, connect: {} });
      const used = 'src/sinks/http/exchange.ts (Dispatcher#dispatch with onConnect/onHeaders/onData/onComplete/onError)';
      try {
        const ok = await exchange(pool, { path: '/', method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x', timeoutMs: 5_000 });
        expect(ok.status, broken('undici', 'the dispatch handler API (onHeaders status)', used)).to.equal(202);
        const busy = await exchange(pool, { path: '/busy', method: 'POST', headers: {}, body: 'x', timeoutMs: 5_000 });
        expect(busy.status, broken('undici', 'the dispatch handler API (onHeaders status)', used)).to.equal(503);
        expect(busy.retryAfter, broken('undici', 'onHeaders raw headers (name, value pairs)', used)).to.equal('7');
        expect(busy.kept.toString(), broken('undici', 'onData chunks', used)).to.equal('try later');
      } finally {
        await pool.close();
      }
    });

    it('the timeout errors the sink classifies as retriable', () => {
      const used = 'src/sinks/http/index.ts (networkError)';
      expect(typeof undiciErrors.HeadersTimeoutError, broken('undici', 'errors.HeadersTimeoutError', used)).to.equal('function');
      expect(typeof undiciErrors.BodyTimeoutError, broken('undici', 'errors.BodyTimeoutError', used)).to.equal('function');
    });
  });
});

/** `promise`, or a failure saying what must have changed when it does not settle in 5 s. */
function within<T>(promise: Promise<T>, failure: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within 5 s: ${failure}`)), 5_000);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** XLogData ('w'): start, end, send time, payload. */
function xlogData(walStart: bigint, payload: Buffer): Buffer {
  const head = Buffer.alloc(25);
  head[0] = 0x77;
  head.writeBigUInt64BE(walStart, 1);
  head.writeBigUInt64BE(walStart + BigInt(payload.length), 9);
  return Buffer.concat([head, payload]);
}

/** Primary keepalive ('k'). */
function keepalive(walEnd: bigint, replyRequested: boolean): Buffer {
  const buf = Buffer.alloc(18);
  buf[0] = 0x6b;
  buf.writeBigUInt64BE(walEnd, 1);
  buf[17] = replyRequested ? 1 : 0;
  return buf;
}

function message(tag: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(tag, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

/**
 * Just enough of a walsender (PostgreSQL frontend/backend protocol 3.0): trust login, one simple
 * Query answered with CopyBothResponse (or an ErrorResponse), then CopyData both ways.
 */
class FakeWalsender {
  readonly startup: Record<string, string> = {};
  readonly queries: string[] = [];
  client?: net.Socket;
  private statusUpdates: { flush: bigint }[] = [];
  private waiting?: (u: { flush: bigint }) => void;

  private constructor(private readonly server: net.Server, private readonly refuse?: { code: string; message: string }) {}

  static async start(options: { refuse?: { code: string; message: string } } = {}): Promise<FakeWalsender> {
    const server = net.createServer();
    const fake = new FakeWalsender(server, options.refuse);
    server.on('connection', (socket) => fake.serve(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  copyData(payload: Buffer): void {
    this.client!.write(message('d', payload));
  }

  nextStatusUpdate(): Promise<{ flush: bigint }> {
    const next = this.statusUpdates.shift();
    if (next) return Promise.resolve(next);
    return new Promise((resolve) => (this.waiting = resolve));
  }

  close(): Promise<void> {
    this.client?.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: net.Socket): void {
    this.client = socket;
    socket.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let started = false;
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (!started) {
          if (buf.length < 4 || buf.length < buf.readInt32BE(0)) return;
          const len = buf.readInt32BE(0);
          const fields = buf.subarray(8, len - 1).toString('utf8').split('\0');
          for (let i = 0; i + 1 < fields.length; i += 2) this.startup[fields[i]] = fields[i + 1];
          buf = buf.subarray(len);
          started = true;
          const authOk = Buffer.alloc(4); // AuthenticationOk
          socket.write(Buffer.concat([message('R', authOk), message('Z', Buffer.from('I'))]));
          continue;
        }
        if (buf.length < 5 || buf.length < 1 + buf.readInt32BE(1)) return;
        const tag = String.fromCharCode(buf[0]);
        const body = buf.subarray(5, 1 + buf.readInt32BE(1));
        buf = buf.subarray(1 + buf.readInt32BE(1));
        if (tag === 'Q') this.query(socket, body.subarray(0, body.length - 1).toString('utf8'));
        else if (tag === 'd' && body[0] === 0x72 /* 'r' */) this.statusUpdate({ flush: body.readBigUInt64BE(9) });
        else if (tag === 'X') socket.end();
      }
    });
  }

  private query(socket: net.Socket, text: string): void {
    this.queries.push(text);
    if (this.refuse) {
      const fields = Buffer.from(`SERROR\0VERROR\0C${this.refuse.code}\0M${this.refuse.message}\0\0`, 'utf8');
      socket.write(Buffer.concat([message('E', fields), message('Z', Buffer.from('I'))]));
      return;
    }
    const copyBoth = Buffer.alloc(3); // format 0, no columns
    socket.write(message('W', copyBoth));
  }

  private statusUpdate(update: { flush: bigint }): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting) waiting(update);
    else this.statusUpdates.push(update);
  }
}
