/**
 * Backfill in `capture.mode: trigger` (README "Backfill", docs/backfill.md "Trigger mode"): the
 * watermarks are journal rows, met in the journal's order, which is not commit order between the
 * transactions of one round. First the interleaving that order allows, step by step; then `run`
 * backfilling while writers change the rows, and a kill -9 in the middle.
 */
import { expect } from 'chai';
import type { CloudEvent } from 'cloudevents';
import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { Client } from 'pg';
import { loadConfig } from '../../src/config/load';
import { Lifecycle } from '../../src/lifecycle';
import { createPool } from '../../src/pg/db';
import { createKnex } from '../../src/pg/schema/knex';
import { ChunkReader } from '../../src/sources/backfill/chunks';
import { BackfillStore, type BackfillRow } from '../../src/sources/backfill/store';
import { BackfillWindow, type ChunkOutcome } from '../../src/sources/backfill/window';
import type { Change } from '../../src/sources/change';
import type { ChangeConsumer } from '../../src/sources/contract';
import { JournalSource } from '../../src/sources/journal/source';
import { REPLICATION_SESSION_OPTIONS } from '../../src/sources/logical/stream';
import { createTestDatabase, waitFor, type TestDatabase } from './harness/postgres';
import { exitWithin, spawnCli, type CliProcess } from './harness/process';
import { startReceiver, type Receiver } from './harness/receiver';
import { expectResumeAfterKill, isBackfill, payload, until } from './harness/backfill';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

/** Unique per run (`bfj`: this feature's tag): worktrees share the server. */
const unique = (tag: string) => `pgce_bfj_${tag}_${randomBytes(3).toString('hex')}`;


const configFile = (name: string, capture: string, tables: string, extra = '') => writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}
capture: { mode: trigger, slot: ${name}, ${capture} reconnectDelay: PT0.2S, reconnectMax: PT1S }
${extra}
tables: ${tables}
`);

/** This capture's journal rows still there (changes and watermarks not yet delivered). */
async function journalRows(db: TestDatabase, capture: string): Promise<number> {
  const { rows } = await db.query('SELECT count(*)::int AS n FROM pgcloudevents.journal WHERE capture = $1', [capture]);
  return rows[0].n as number;
}

const journalEmpty = (db: TestDatabase, capture: string) =>
  waitFor(async () => (await journalRows(db, capture)) === 0 || undefined, { timeoutMs: 30_000, intervalMs: 50, what: 'every journal row (watermarks too) delivered and deleted' });

describe('backfill in trigger mode: watermarks in the journal (real PostgreSQL 15)', function () {
  this.timeout(120_000);

  it('a transaction the chunk did not see, handed over before the low watermark in the same round, supersedes its row (source, window and chunk reader in process; a recorder instead of the delivery engine)', async () => {
    const name = unique('order');
    const db = await createTestDatabase(name);
    const pools: { end(): Promise<void> }[] = [];
    let source: JournalSource | undefined;
    const writer = new Client({ connectionString: db.url });
    try {
      await db.query('CREATE TABLE rows (id int PRIMARY KEY, v int NOT NULL); INSERT INTO rows SELECT g, 0 FROM generate_series(1, 10) g');
      // A poll of an hour: rounds start only when woken (a NOTIFY, a watermark, the pressure lifted).
      const env = { DATABASE_URL: db.url, K_SINK: 'http://127.0.0.1:9/', PG_CLOUDEVENTS_CONFIG: configFile(name, 'pollInterval: PT1H,', '[ rows ]') };
      const setup = await exitWithin(spawnCli(['setup'], env), 30_000);
      expect(setup.code, 'setup').to.equal(0);
      const config = loadConfig({ env, configPath: env.PG_CLOUDEVENTS_CONFIG });

      // What reaches the engine, in order; every position is acknowledged at once (delivered).
      const seen: string[] = [];
      const engine: ChangeConsumer = {
        change: (c: Change) => {
          if (c.kind === 'insert' && c.backfill) seen.push(`backfill ${c.new.id}=${c.new.v}`);
          else if (c.kind === 'update') seen.push(`update ${c.new.id}=${c.new.v}`);
          else seen.push(c.kind);
        },
        undecodable: () => seen.push('undecodable'),
        watermark: (token) => seen.push(`watermark ${token.split(':').pop()}`),
        commit: (p) => source!.acknowledge(p, true),
        position: (p) => source!.acknowledge(p, true),
        reset: async () => undefined,
        stop: async () => undefined,
      };
      const window = new BackfillWindow(engine);
      const sourcePool = createPool(db.url, 1);
      const readerPool = createPool(db.url, 1, REPLICATION_SESSION_OPTIONS);
      pools.push(sourcePool, readerPool);
      source = new JournalSource({ config, pool: sourcePool, consumer: window, lifecycle: new Lifecycle() });
      await source.start();
      const reader = new ChunkReader(readerPool);
      const rel = (await reader.relation('public', 'rows'))!;

      // The reader paused: what follows is handed over in one round, in id order.
      source.setPressure(true);
      await writer.connect();
      await writer.query('BEGIN');
      await writer.query('UPDATE rows SET v = 1 WHERE id = 5'); // its journal row takes the smallest id
      const armed = window.arm({ backfillId: '1', chunkNo: 0, relation: rel.relation });
      await source.writeWatermark(armed.low);
      const chunk = await reader.read(rel, null, null, 100, new AbortController().signal);
      // The chunk's snapshot saw the update in progress: it read row 5 before it.
      expect(chunk.rows.find((r) => r.id === 5)).to.deep.equal({ id: 5, v: 0 });
      await writer.query('COMMIT');
      window.supply({ rows: chunk.rows, snapshot: chunk.snapshot, readAt: chunk.readAt });
      await source.writeWatermark(armed.high);
      expect(await journalRows(db, name), 'the update and both watermarks wait in the journal').to.equal(3);
      source.setPressure(false);

      const outcome = await armed.outcome as Extract<ChunkOutcome, { kind: 'emitted' }>;
      expect(outcome).to.include({ kind: 'emitted', read: 10, emitted: 9, superseded: 1 });
      // The update came first, before the low watermark (id order within the round), although it
      // committed after the chunk's snapshot: the window dropped row 5, so the stale 5=0 never follows 5=1.
      expect(seen).to.deep.equal(['update 5=1', 'watermark low', 'watermark high', ...[1, 2, 3, 4, 6, 7, 8, 9, 10].map((id) => `backfill ${id}=0`)]);
      // Watermarks are no changes, and are deleted once acknowledged like every row.
      await journalEmpty(db, name);
    } finally {
      await source?.stop();
      await writer.end().catch(() => undefined);
      for (const p of pools) await p.end();
      await db.drop();
    }
  });

  interface Pipeline {
    db: TestDatabase;
    receiver: Receiver;
    cli: CliProcess;
    knex: Knex;
    store: BackfillStore;
    capture: string;
    start(): Promise<void>;
    close(): Promise<void>;
  }

  /** A database, a receiver, `run` in trigger mode as a child process (restartable), the backfills store. */
  async function pipeline(tag: string, setupSql: string): Promise<Pipeline> {
    const name = unique(tag);
    const db = await createTestDatabase(name);
    await db.query(setupSql);
    const receiver = await startReceiver();
    const config = configFile(name, 'pollInterval: PT0.5S,', '[ public.orders ]', 'sink: { mode: batch, batchSize: 500 }');
    const knex = createKnex({ databaseUrl: db.url });
    const p: Pipeline = {
      db, receiver, knex, capture: name, cli: undefined as unknown as CliProcess,
      store: new BackfillStore(knex, { schema: 'pgcloudevents', backfills: 'backfills' }, name),
      async start() {
        p.cli = spawnCli(['run'], { DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(await freePort()), LOG_LEVEL: 'info' });
        await p.cli.waitForLine(/capturing/, 30_000);
      },
      async close() {
        p.cli?.kill('SIGTERM');
        await p.cli?.exit();
        await knex.destroy();
        await receiver.close();
        await db.drop();
      },
    };
    await p.start();
    return p;
  }

  it('15,000 rows while 6 writers update and delete rows, most of them just ahead of the backfill: the last event of every row is its final state, nothing missing, the journal emptied', async () => {
    const ROWS = 15_000;
    const CHUNK = 500;
    const p = await pipeline('big', `CREATE TABLE orders (id int PRIMARY KEY, v int NOT NULL, note text);
      INSERT INTO orders SELECT g, 0, 'initial ' || g FROM generate_series(1, ${ROWS}) g`);
    try {
      const [bf] = await p.store.request([{ schema: 'public', table: 'orders', chunkSize: CHUNK, origin: 'cli' }]);
      let finished = false;
      const writers = Array.from({ length: 6 }, async (_, w) => {
        const client = new Client({ connectionString: p.db.url });
        await client.connect();
        let n = 0;
        try {
          while (!finished) {
            // Where the backfill reads next: the chunks being read meet live changes of their rows.
            const row = await p.store.get(bf.id);
            const next = row?.lastKey ? Number(row.lastKey[0]) : 0;
            for (let i = 0; i < 10; i++, n++) {
              const near = Math.random() < 0.7;
              const id = near ? Math.min(ROWS, next + 1 + Math.floor(Math.random() * 2 * CHUNK)) : 1 + Math.floor(Math.random() * ROWS);
              if (Math.random() < 0.2) await client.query('DELETE FROM orders WHERE id = $1', [id]);
              else await client.query('UPDATE orders SET v = v + 1, note = $2 WHERE id = $1', [id, `writer ${w} step ${n}`]);
            }
            await new Promise((r) => setTimeout(r, 20));
          }
        } finally {
          await client.end();
        }
        return n;
      });
      let done: BackfillRow;
      try {
        done = await until(p.store, bf.id, ['done', 'failed'], 90_000);
      } finally {
        finished = true;
      }
      const writes = (await Promise.all(writers)).reduce((a, b) => a + b, 0);
      expect(done.state, String(done.error)).to.equal('done');
      await journalEmpty(p.db, p.capture);

      const { rows } = await p.db.query('SELECT id, v, note FROM orders');
      const final = new Map<number, Record<string, unknown>>(rows.map((r) => [r.id as number, r]));
      const last = new Map<number, CloudEvent<unknown>>();
      for (const e of p.receiver.accepted) last.set(payload(e).data.id as number, e);
      expect(p.receiver.accepted.every((e) => payload(e).db_table === 'orders'), 'no event but the table\'s (a watermark is none)').to.equal(true);
      const wrong: string[] = [];
      let deleted = 0;
      for (let id = 1; id <= ROWS; id++) {
        const e = last.get(id);
        const row = final.get(id);
        if (!e) wrong.push(`${id}: no event`);
        else if (!row) {
          deleted++;
          if (e.type !== 'orm.post_delete') wrong.push(`${id}: deleted, last event ${e.type} ${JSON.stringify(payload(e).data)}`);
        } else if (e.type !== 'orm.post_save' || JSON.stringify(payload(e).data) !== JSON.stringify(row)) {
          wrong.push(`${id}: final ${JSON.stringify(row)}, last event ${e.type}${isBackfill(e) ? ' (backfilled)' : ''} ${JSON.stringify(payload(e).data)}`);
        }
      }
      if (wrong.length) {
        // What it takes to tell a window fault from a delivery one.
        const history = (id: number) => p.receiver.events.filter((e) => payload(e).data.id === id).map((e) => `${e.id} ${e.type} ${JSON.stringify(payload(e).data)}${p.receiver.accepted.includes(e) ? '' : ' (not accepted)'}`);
        const { rows: [dl] } = await p.db.query('SELECT count(*)::int AS n FROM pgcloudevents.dead_letters');
        const notable = `${p.cli.stdout()}\n${p.cli.stderr()}`.split('\n').filter((l) => /"level":(40|50)|leader|redo|read again|restart/.test(l)).slice(0, 20);
        console.log(`      run said:\n${notable.join('\n')}`);
        console.log(`      ${dl.n} dead letters, ${p.receiver.errors.length} receiver errors; ${wrong.slice(0, 5).map((w) => `${w}; received: ${history(Number(w.split(':')[0])).join(' | ')}`).join('\n      ')}`);
      }
      expect(wrong.slice(0, 10), `${wrong.length} rows whose last event is not their final state`).to.deep.equal([]);
      expect(deleted, 'the writers deleted rows').to.be.greaterThan(0);
      const backfilled = p.receiver.accepted.filter(isBackfill);
      expect(backfilled.length, 'most rows came from the backfill').to.be.greaterThan(ROWS / 2);
      for (const e of backfilled.slice(0, 50)) {
        expect(payload(e).signal_kwargs).to.include({ raw: true, created: true });
        expect(e.id).to.match(new RegExp(`^backfill-${bf.id}-[0-9a-f]{32}$`));
      }
      const seconds = (done.finishedAt!.getTime() - done.startedAt!.getTime()) / 1000;
      console.log(`      trigger mode: backfill ${done.rowsDone} rows read in ${seconds} s, ${done.rowsEmitted} emitted, ${done.rowsDone - done.rowsEmitted} superseded by live changes; ${writes} live writes`);
    } finally {
      await p.close();
    }
  });

  it('kill -9 in the middle: the new process resumes from the last delivered chunk, no row lost, at most one chunk repeated, leftover watermarks deleted', async () => {
    const ROWS = 8_000;
    const CHUNK = 400;
    const p = await pipeline('kill', `CREATE TABLE orders (id int PRIMARY KEY, label text NOT NULL);
      INSERT INTO orders SELECT g, 'item ' || g FROM generate_series(1, ${ROWS}) g`);
    try {
      await expectResumeAfterKill(p, { table: 'orders', rows: ROWS, chunk: CHUNK, rate: 4000, drained: () => journalEmpty(p.db, p.capture) });
    } finally {
      await p.close();
    }
  });
});
