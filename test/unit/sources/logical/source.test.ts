/**
 * The capture state machine (CaptureSource) fed through a fake replication stream and a fake
 * catalog (in memory: these tests are about the order of what capture hands on, transactions,
 * the slow path and errors — the real stream and catalog are covered by the integration tests).
 */
import { EventEmitter } from 'node:events';
import { expect } from 'chai';
import type { Pool } from 'pg';
import type { Change, UndecodableChange } from '../../../../src/sources/change';
import { CaptureSource, type CatalogLike } from '../../../../src/sources/logical/source';
import type { ReplicationStreamOptions } from '../../../../src/sources/logical/stream';
import type { Config } from '../../../../src/config/types';
import type { ChangeConsumer } from '../../../../src/sources/contract';
import { ErrorCodes, PgceError } from '../../../../src/errors';
import { Lifecycle } from '../../../../src/lifecycle';
import { pg } from './pgoutput-writer';

const INT4 = 23;
const TEXT = 25;
const ORDERS = 16400;
const AUDIT = 16401; // not captured
const NOTES = 16402; // captured, its column type unknown until looked up

const ordersRel = pg.relation(ORDERS, 'public', 'orders', [{ name: 'id', typeOid: INT4, key: true }, { name: 'note', typeOid: TEXT }]);
const auditRel = pg.relation(AUDIT, 'public', 'audit', [{ name: 'id', typeOid: INT4, key: true }]);
const notesRel = pg.relation(NOTES, 'public', 'notes', [{ name: 'id', typeOid: INT4, key: true }]);

/** A stream that the test drives: data and keepalives go straight to capture's callbacks. */
class FakeStream extends EventEmitter {
  paused = false;
  acknowledged: bigint[] = [];
  /** The stream ran: the test fed it something. */
  streamed = false;
  readonly ended: Promise<Error | undefined>;
  private settle!: (error: Error | undefined) => void;
  private done = false;
  constructor(readonly opts: ReplicationStreamOptions) {
    super();
    this.ended = new Promise((resolve) => (this.settle = resolve));
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {
    this.end(undefined);
  }
  acknowledge(lsn: bigint): void {
    this.acknowledged.push(lsn);
  }
  flush(): void {}
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  abort(error: Error): void {
    this.end(error);
  }
  get acknowledgedLsn(): bigint {
    return 0n;
  }
  /** As ReplicationStream does: a throwing callback ends the stream with that error. */
  data(buf: Buffer): void {
    this.streamed = true;
    try {
      this.opts.onData(buf, 0n, 0n);
    } catch (err) {
      this.end(err as Error);
    }
  }
  keepalive(lsn: bigint): void {
    try {
      this.opts.onKeepalive?.(lsn);
    } catch (err) {
      this.end(err as Error);
    }
  }
  end(error: Error | undefined): void {
    if (this.done) return;
    this.done = true;
    this.settle(error);
    this.emit('end', error);
  }
}

/** Relation ids not in `known` need a lookup; each lookup waits for the test to settle it. */
class FakeCatalog implements CatalogLike {
  readonly known = new Set([ORDERS, AUDIT]);
  readonly lookups: { id: number; resolve(): void; reject(err: Error): void }[] = [];
  async preload(): Promise<void> {}
  needsLookup(relation: { id: number }): boolean {
    return !this.known.has(relation.id);
  }
  lookup(relation: { id: number }): Promise<void> {
    return new Promise((resolve, reject) => {
      this.lookups.push({
        id: relation.id,
        resolve: () => {
          this.known.add(relation.id);
          resolve();
        },
        reject,
      });
    });
  }
  keyColumns(id: number): string[] | undefined {
    return this.known.has(id) ? ['id'] : undefined;
  }
}

type Call =
  | { kind: 'change'; change: Change }
  | { kind: 'undecodable'; change: UndecodableChange }
  | { kind: 'commit'; lsn: bigint }
  | { kind: 'position'; lsn: bigint }
  | { kind: 'reset' }
  | { kind: 'stop' };

class RecordingConsumer implements ChangeConsumer {
  readonly calls: Call[] = [];
  throwOnChange?: Error;
  change(change: Change): void {
    if (this.throwOnChange) throw this.throwOnChange;
    this.calls.push({ kind: 'change', change });
  }
  undecodable(change: UndecodableChange): void {
    this.calls.push({ kind: 'undecodable', change });
  }
  commit(lsn: bigint): void {
    this.calls.push({ kind: 'commit', lsn });
  }
  position(lsn: bigint): void {
    this.calls.push({ kind: 'position', lsn });
  }
  async reset(): Promise<void> {
    this.calls.push({ kind: 'reset' });
  }
  async stop(): Promise<void> {
    this.calls.push({ kind: 'stop' });
  }
  /** A compact trace: `change insert public.orders #0`, `commit 200`, … */
  trace(): string[] {
    return this.calls.map((c) => {
      switch (c.kind) {
        case 'change':
        case 'undecodable':
          return `${c.kind} ${c.change.kind} ${c.change.kind === 'message' ? c.change.prefix : c.change.relation?.table} #${c.change.ordinal}`;
        case 'commit':
        case 'position':
          return `${c.kind} ${c.lsn}`;
        default:
          return c.kind;
      }
    });
  }
}

const config = {
  databaseUrl: 'postgres://unused@127.0.0.1/unused',
  tables: [
    { table: 'public.orders', schema: 'public', name: 'orders', app: 'public', model: 'orders' },
    { table: 'public.notes', schema: 'public', name: 'notes', app: 'public', model: 'notes' },
  ],
  capture: { slot: 's', publication: 'p', statusIntervalMs: 10_000, reconnectDelayMs: 1, reconnectMaxMs: 4, heartbeatIntervalMs: 0 },
} as unknown as Config;

interface Rig {
  source: CaptureSource;
  consumer: RecordingConsumer;
  catalog: FakeCatalog;
  streams: FakeStream[];
  stream(): FakeStream;
  done: Promise<void>;
}

async function rig(): Promise<Rig> {
  const consumer = new RecordingConsumer();
  const catalog = new FakeCatalog();
  const streams: FakeStream[] = [];
  const source = new CaptureSource({
    config, pool: {} as Pool, consumer, lifecycle: new Lifecycle(), catalog,
    openStream: (o) => {
      const s = new FakeStream(o);
      streams.push(s);
      return s as never;
    },
  });
  const { done } = await source.start();
  done.catch(() => undefined); // inspected by the tests that expect it to fail
  return { source, consumer, catalog, streams, stream: () => streams[streams.length - 1], done };
}

async function until(what: string, fn: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Lets pending promise callbacks run, to show that something does NOT happen. */
const settle = () => new Promise((r) => setTimeout(r, 10));

async function rejection(p: Promise<unknown>): Promise<PgceError> {
  try {
    await p;
  } catch (err) {
    return err as PgceError;
  }
  throw new Error('expected a rejection');
}

describe('sources/logical/source (the capture state machine, fake stream and catalog)', () => {
  it('hands on changes, commits and idle positions in stream order', async () => {
    const r = await rig();
    const s = r.stream();
    s.keepalive(50n);
    s.data(pg.begin(200n, 7));
    s.data(ordersRel);
    s.data(pg.insert(ORDERS, [['t', '1'], ['t', 'a']]));
    s.data(pg.update(ORDERS, [['t', '1'], ['t', 'b']]));
    s.data(pg.commit(200n, 264n));
    s.keepalive(300n);
    expect(r.consumer.trace()).to.deep.equal([
      'position 50', 'change insert orders #0', 'change update orders #1', 'commit 264', 'position 300',
    ]);
    const insert = (r.consumer.calls[1] as { change: Change }).change;
    expect(insert).to.deep.include({ kind: 'insert', commitLsn: 200n, xid: 7, new: { id: 1, note: 'a' } });
    await r.source.stop();
  });

  it('never confirms a keepalive position inside a transaction (it may be past the commit)', async () => {
    const r = await rig();
    const s = r.stream();
    s.data(pg.begin(200n, 7));
    s.data(ordersRel);
    s.data(pg.insert(ORDERS, [['t', '1'], ['t', 'a']]));
    s.keepalive(999n);
    s.data(pg.commit(200n, 264n));
    expect(r.consumer.trace()).to.deep.equal(['change insert orders #0', 'commit 264']);
    await r.source.stop();
  });

  it('counts every change of a transaction, captured or not, truncate targets included', async () => {
    const r = await rig();
    const s = r.stream();
    s.data(pg.begin(200n, 7));
    s.data(ordersRel);
    s.data(auditRel);
    s.data(pg.insert(AUDIT, [['t', '1']])); // 0, not captured
    s.data(pg.truncate([ORDERS, AUDIT, ORDERS], 1)); // 1, 2 (not captured), 3
    s.data(pg.insert(ORDERS, [['t', '2'], ['n']])); // 4
    s.data(pg.commit(200n, 264n));
    expect(r.consumer.trace()).to.deep.equal([
      'change truncate orders #1', 'change truncate orders #3', 'change insert orders #4', 'commit 264',
    ]);
    expect((r.consumer.calls[0] as { change: Change }).change).to.include({ cascade: true, restartIdentity: false });
    await r.source.stop();
  });

  describe('the slow path (a Relation whose types must be looked up first)', () => {
    it('holds everything behind the lookup, pauses the stream, then goes on in order', async () => {
      const r = await rig();
      const s = r.stream();
      s.data(pg.begin(200n, 7));
      s.data(ordersRel);
      s.data(pg.insert(ORDERS, [['t', '1'], ['t', 'a']]));
      s.data(notesRel);
      s.data(pg.insert(NOTES, [['t', '5']]));
      s.data(pg.commit(200n, 264n));
      s.keepalive(300n);
      await until('the lookup', () => r.catalog.lookups.length === 1);
      expect(s.paused, 'paused during the lookup').to.equal(true);
      expect(r.consumer.trace()).to.deep.equal(['change insert orders #0']);
      r.catalog.lookups[0].resolve();
      await until('the queue drained', () => r.consumer.calls.length === 4);
      expect(r.consumer.trace()).to.deep.equal([
        'change insert orders #0', 'change insert notes #1', 'commit 264', 'position 300',
      ]);
      expect(s.paused, 'resumed after the drain').to.equal(false);
      await r.source.stop();
    });

    it('keeps the stream paused when the consumer asked for it during the drain', async () => {
      const r = await rig();
      const s = r.stream();
      s.data(pg.begin(200n, 7));
      s.data(notesRel);
      await until('the lookup', () => r.catalog.lookups.length === 1);
      r.source.setPressure(true);
      r.source.setPressure(false);
      expect(s.paused, 'pressure released mid-drain must not resume reading past the lookup').to.equal(true);
      r.source.setPressure(true);
      r.catalog.lookups[0].resolve();
      await settle();
      expect(s.paused, 'still under pressure after the drain').to.equal(true);
      r.source.setPressure(false);
      expect(s.paused).to.equal(false);
      await r.source.stop();
    });

    it('restarts the stream (with a reset) when the lookup failed for a transient reason', async () => {
      const r = await rig();
      const s = r.stream();
      s.data(pg.begin(200n, 7));
      s.data(notesRel);
      s.data(pg.insert(NOTES, [['t', '5']]));
      await until('the lookup', () => r.catalog.lookups.length === 1);
      r.catalog.lookups[0].reject(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }));
      await until('a new stream', () => r.streams.length === 2);
      expect(r.consumer.trace()).to.deep.equal(['reset']);
      // The new stream starts from the slot again: the queued messages of the old one are gone.
      const again = r.stream();
      again.data(pg.begin(200n, 7));
      again.data(notesRel);
      await until('the second lookup', () => r.catalog.lookups.length === 2);
      r.catalog.lookups[1].resolve();
      again.data(pg.insert(NOTES, [['t', '5']]));
      again.data(pg.commit(200n, 264n));
      await until('the change', () => r.consumer.calls.length === 3);
      expect(r.consumer.trace()).to.deep.equal(['reset', 'change insert notes #0', 'commit 264']);
      await r.source.stop();
    });

    it('ends capture with PGCE_ERR_CATALOG when the lookup failed deterministically (no retry loop)', async () => {
      const r = await rig();
      const s = r.stream();
      s.data(pg.begin(200n, 7));
      s.data(notesRel);
      await until('the lookup', () => r.catalog.lookups.length === 1);
      r.catalog.lookups[0].reject(Object.assign(new Error('relation "pg_typ" does not exist'), { code: '42P01' }));
      const err = await rejection(r.done);
      expect(err.code).to.equal(ErrorCodes.CATALOG);
      expect(err.retriable).to.equal(false);
      expect(err.message).to.contain('public.notes');
      await settle();
      expect(r.streams, 'no reconnect').to.have.length(1);
      await r.source.stop();
    });

    it('applies the fast path\'s policy to a protocol error met while draining: final', async () => {
      const r = await rig();
      const s = r.stream();
      s.data(pg.begin(200n, 7));
      s.data(notesRel);
      s.data(pg.insert(99, [['t', '1']])); // a relation never announced
      await until('the lookup', () => r.catalog.lookups.length === 1);
      r.catalog.lookups[0].resolve();
      const err = await rejection(r.done);
      expect(err.code).to.equal(ErrorCodes.PROTOCOL);
      await settle();
      expect(r.streams).to.have.length(1);
      await r.source.stop();
    });
  });

  describe('errors', () => {
    it('dead-letters a row that does not decode, with its raw text, and goes on', async () => {
      const r = await rig();
      const s = r.stream();
      s.data(pg.begin(200n, 7));
      s.data(ordersRel);
      s.data(pg.insert(ORDERS, [['t', '1'], ['t', 'a'], ['t', 'extra']])); // 3 columns for 2
      s.data(pg.insert(ORDERS, [['t', '2'], ['t', 'b']]));
      s.data(pg.commit(200n, 264n));
      expect(r.consumer.trace()).to.deep.equal(['undecodable insert orders #0', 'change insert orders #1', 'commit 264']);
      const bad = (r.consumer.calls[0] as { change: UndecodableChange }).change;
      expect(bad.raw).to.deep.equal({ new: { id: '1', note: 'a', '#3': 'extra' } });
      expect((bad.error as PgceError).code).to.equal(ErrorCodes.PROTOCOL);
      expect(r.streams).to.have.length(1);
      await r.source.stop();
    });

    it('ends capture (final, no reconnect) on a change for a relation never announced', async () => {
      const r = await rig();
      const s = r.stream();
      s.data(pg.begin(200n, 7));
      s.data(pg.insert(99, [['t', '1']]));
      const err = await rejection(r.done);
      expect(err.code).to.equal(ErrorCodes.PROTOCOL);
      await settle();
      expect(r.streams).to.have.length(1);
      expect(r.consumer.calls.filter((c) => c.kind === 'change' || c.kind === 'undecodable')).to.deep.equal([]);
      await r.source.stop();
    });

    it('treats a bug downstream (a TypeError) as final with PGCE_ERR_INTERNAL, never as a reason to reconnect', async () => {
      const r = await rig();
      r.consumer.throwOnChange = new TypeError("Cannot read properties of undefined (reading 'x')");
      const s = r.stream();
      s.data(pg.begin(200n, 7));
      s.data(ordersRel);
      s.data(pg.insert(ORDERS, [['t', '1'], ['t', 'a']]));
      const err = await rejection(r.done);
      expect(err.code).to.equal(ErrorCodes.INTERNAL);
      expect(err.retriable).to.equal(false);
      expect(err.message).to.contain("reading 'x'");
      await settle();
      expect(r.streams).to.have.length(1);
      await r.source.stop();
    });

    it('reconnects after a retriable stream end, resets the consumer and forgets the half-read transaction', async () => {
      const r = await rig();
      const s = r.stream();
      s.data(pg.begin(200n, 7));
      s.data(ordersRel);
      s.data(pg.insert(ORDERS, [['t', '1'], ['t', 'a']]));
      s.end(new PgceError(ErrorCodes.REPLICATION, 'replication connection closed by the server', { retriable: true }));
      await until('a new stream', () => r.streams.length === 2);
      const again = r.stream();
      again.keepalive(150n); // before any Begin on the new stream: not inside a transaction
      again.data(pg.begin(200n, 7));
      again.data(ordersRel);
      again.data(pg.insert(ORDERS, [['t', '1'], ['t', 'a']]));
      again.data(pg.commit(200n, 264n));
      expect(r.consumer.trace()).to.deep.equal([
        'change insert orders #0', 'reset', 'position 150', 'change insert orders #0', 'commit 264',
      ]);
      await r.source.stop();
    });
  });
});
