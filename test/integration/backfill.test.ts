import { expect } from 'chai';
import type { CloudEvent } from 'cloudevents';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import type { Knex } from 'knex';
import { createKnex } from '../../src/pg/schema/knex';
import { BackfillStore } from '../../src/sources/backfill/store';
import { formatLsn } from '../../src/sources/change';
import { acknowledgedEverything, createTestDatabase, slotInfo, waitFor, type TestDatabase } from './harness/postgres';
import { spawnCli, type CliProcess } from './harness/process';
import { startReceiver, type Receiver } from './harness/receiver';
import { expectResumeAfterKill, isBackfill, payload, until } from './harness/backfill';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

/** Unique per run (`bfc`: this feature's tag): slot names are cluster-wide, worktrees share the server. */
const suffix = () => randomBytes(3).toString('hex');


interface Pipeline {
  db: TestDatabase;
  receiver: Receiver;
  cli: CliProcess;
  port: number;
  knex: Knex;
  store: BackfillStore;
  slot: string;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** A database, a receiver, `run` as a child process (restartable), and the backfills store the CLI would use. */
async function pipeline(tag: string, tablesYaml: string, setupSql: string[], sinkYaml = ''): Promise<Pipeline> {
  const name = `pgce_bfc_${tag}_${suffix()}`;
  const db = await createTestDatabase(name);
  for (const sql of setupSql) await db.query(sql);
  const receiver = await startReceiver();
  const config = writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: ${name}, publication: ${name}, statusInterval: PT0.2S, reconnectDelay: PT0.2S, reconnectMax: PT1S }
${sinkYaml}
tables: ${tablesYaml}
`);
  const knex = createKnex({ databaseUrl: db.url });
  const p: Pipeline = {
    db, receiver, knex, slot: name, port: 0, cli: undefined as unknown as CliProcess,
    store: new BackfillStore(knex, { schema: 'pgcloudevents', backfills: 'backfills' }, name),
    async start() {
      p.port = await freePort();
      p.cli = spawnCli(['run'], { DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(p.port) });
      await p.cli.waitForLine(/capturing/, 30_000);
    },
    async close() {
      p.cli.kill('SIGTERM');
      await p.cli.exit();
      await knex.destroy();
      await receiver.close();
      await db.drop();
    },
  };
  await p.start();
  return p;
}

/** Per row id: the last accepted event, in arrival order (the receiver keeps it). */
function lastEvents(events: CloudEvent<unknown>[], table: string): Map<number, CloudEvent<unknown>> {
  const last = new Map<number, CloudEvent<unknown>>();
  for (const e of events) {
    if (payload(e).db_table !== table) continue;
    last.set(payload(e).data.id as number, e);
  }
  return last;
}

describe('backfill: DBLog watermarks in the running leader (real PostgreSQL 15, real HTTP receiver, real process kills)', function () {
  this.timeout(180_000);

  it('100,000 rows while 10 writers update and delete random rows: the last event of every row is its final state, nothing missing, the slot advances', async () => {
    const ROWS = 100_000;
    const p = await pipeline('big', '[ public.orders ]', [
      'CREATE TABLE orders (id int PRIMARY KEY, v int NOT NULL, note text)',
      `INSERT INTO orders SELECT g, 0, 'initial ' || g FROM generate_series(1, ${ROWS}) g`,
    ], 'sink: { mode: batch, batchSize: 500 }');
    try {
      const [bf] = await p.store.request([{ schema: 'public', table: 'orders', chunkSize: 2500, origin: 'cli' }]);
      const confirmed = async () => (await slotInfo(p.db.url, p.slot))?.confirmedFlushLsn ?? 0n;
      const writers = Array.from({ length: 10 }, async (_, w) => {
        const client = new Client({ connectionString: p.db.url });
        await client.connect();
        let n = 0;
        try {
          while (!(await p.store.get(bf.id).then((r) => r?.state !== 'pending' && r?.state !== 'running')) || n === 0) {
            for (let i = 0; i < 10; i++, n++) {
              const id = 1 + Math.floor(Math.random() * ROWS);
              if (Math.random() < 0.2) await client.query('DELETE FROM orders WHERE id = $1', [id]);
              else await client.query('UPDATE orders SET v = v + 1, note = $2 WHERE id = $1', [id, `writer ${w} step ${n}`]);
            }
            // About 50 writes/s per writer: contention on the rows, not a load test of the machine.
            await new Promise((r) => setTimeout(r, 200));
          }
        } finally {
          await client.end();
        }
        return n;
      });
      // The slot's confirmed position moves while the backfill runs: live capture is not paused.
      const running = await until(p.store, bf.id, ['running', 'done']);
      expect(running.state, 'still running when first seen (the test needs it mid-way)').to.equal('running');
      const before = await confirmed();
      await waitFor(async () => (await confirmed()) > before || undefined, { timeoutMs: 30_000, intervalMs: 50, what: 'the slot to advance during the backfill' });
      const stillRunning = await p.store.get(bf.id);
      expect(stillRunning!.state, `slot advanced past ${formatLsn(before)} while the backfill was running`).to.equal('running');

      const done = await until(p.store, bf.id, ['done', 'failed'], 120_000);
      expect(done.state, String(done.error)).to.equal('done');
      const writes = (await Promise.all(writers)).reduce((a, b) => a + b, 0);
      await acknowledgedEverything(p.db, p.slot);

      const { rows } = await p.db.query('SELECT id, v, note FROM orders');
      const final = new Map<number, { id: number; v: number; note: string }>(rows.map((r) => [r.id as number, r]));
      const last = lastEvents(p.receiver.accepted, 'orders');
      let deleted = 0;
      const wrong: string[] = [];
      for (let id = 1; id <= ROWS; id++) {
        const e = last.get(id);
        const row = final.get(id);
        if (!e) {
          wrong.push(`${id}: no event`);
        } else if (!row) {
          deleted++;
          if (e.type !== 'orm.post_delete') wrong.push(`${id}: deleted, last event ${e.type} ${JSON.stringify(payload(e).data)}`);
        } else if (e.type !== 'orm.post_save' || JSON.stringify(payload(e).data) !== JSON.stringify(row)) {
          wrong.push(`${id}: final ${JSON.stringify(row)}, last event ${e.type} ${JSON.stringify(payload(e).data)}`);
        }
      }
      expect(wrong.slice(0, 10), `${wrong.length} rows whose last event is not their final state`).to.deep.equal([]);
      expect(deleted, 'the writers deleted rows').to.be.greaterThan(0);
      const backfilled = p.receiver.accepted.filter(isBackfill);
      expect(backfilled.length, 'most rows came from the backfill').to.be.greaterThan(ROWS / 2);
      for (const e of backfilled.slice(0, 50)) {
        expect(e.type).to.equal('orm.post_save');
        expect(payload(e).signal_kwargs).to.include({ raw: true, created: true });
        expect(e.id).to.match(new RegExp(`^backfill-${bf.id}-[0-9a-f]{32}$`));
      }
      const superseded = done.rowsDone - done.rowsEmitted;
      expect(done.rowsDone, 'rows read').to.be.at.most(ROWS);
      const seconds = (done.finishedAt!.getTime() - done.startedAt!.getTime()) / 1000;
      console.log(`      backfill ${done.rowsDone} rows read in ${seconds} s, ${done.rowsEmitted} emitted, ${superseded} superseded by live changes; ${writes} live writes`);
    } finally {
      await p.close();
    }
  });

  it('kill -9 in the middle: the new process resumes from the last delivered chunk, no row lost, at most one chunk repeated, with the same ids', async () => {
    const ROWS = 10_000;
    const CHUNK = 500;
    const p = await pipeline('kill', '[ public.items ]', [
      'CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL)',
      `INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, ${ROWS}) g`,
    ], 'sink: { mode: batch, batchSize: 200 }');
    try {
      await expectResumeAfterKill(p, { table: 'items', rows: ROWS, chunk: CHUNK, rate: 5000, drained: () => acknowledgedEverything(p.db, p.slot) });
    } finally {
      await p.close();
    }
  });

  it('a backfilled row is the row a live insert gives (many types); --where; a table without a key fails; cancel stops it; onAdd; /status and metrics', async () => {
    const p = await pipeline('misc', `
  - { table: public.typed }
  - { table: public.nokey }
  - { table: public.small }
  - { table: public.joined, backfill: onAdd }`, [
      "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
      `CREATE TABLE typed (id int PRIMARY KEY, gone int, n numeric, n2 numeric(30,10), big int8, huge int8, f float8, r real,
        ts timestamptz, t timestamp, d date, tm time, iv interval, j jsonb, js json, arr int[], tarr text[], b bytea,
        ok boolean, u uuid, m mood, twice int GENERATED ALWAYS AS (id * 2) STORED, note varchar(20), ch char(3))`,
      'ALTER TABLE typed DROP COLUMN gone',
      'CREATE TABLE nokey (a int, b text)',
      'ALTER TABLE nokey REPLICA IDENTITY FULL',
      "INSERT INTO nokey VALUES (1, 'x')",
      'CREATE TABLE small (id int PRIMARY KEY, v int NOT NULL)',
      'INSERT INTO small SELECT g, g FROM generate_series(1, 3000) g',
      'CREATE TABLE joined (id int PRIMARY KEY, label text)',
      "INSERT INTO joined SELECT g, 'j' || g FROM generate_series(1, 50) g",
    ]);
    const TYPED_ROW = `(1, 12345678901234567890.123456789, 1.5, 9007199254740993, 42, 0.1, 0.25,
      '2024-02-29 23:59:59.123456+05:30', '2024-01-01 00:00:00.5', '2024-12-31', '13:14:15.5', '1 day 02:03:04',
      '{"a": 1, "big": 12345678901234567890, "x": [1.50, "s"]}', '{"k": "v",  "k": 2}', '{1,NULL,3}', '{"a b","c,d",NULL}',
      '\\x00ff10', true, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'happy', 'hé "quoted"', 'ab')`;
    const COLUMNS = '(id, n, n2, huge, big, f, r, ts, t, d, tm, iv, j, js, arr, tarr, b, ok, u, m, note, ch)';
    try {
      // onAdd: run's set-up made the publication with `joined` in it, and requested its backfill once.
      const onAdd = (await p.store.list()).filter((b) => b.table === 'joined');
      expect(onAdd.map((b) => b.origin)).to.deep.equal(['on_add']);
      expect((await until(p.store, onAdd[0].id, ['done', 'failed'])).state).to.equal('done');
      await waitFor(async () => p.receiver.accepted.filter((e) => isBackfill(e) && payload(e).db_table === 'joined').length >= 50 || undefined,
        { timeoutMs: 20_000, intervalMs: 50, what: 'the 50 rows of the onAdd backfill' });

      // The same row, once as a live insert and once backfilled: the same data, value for value.
      await p.db.query(`INSERT INTO typed ${COLUMNS} VALUES ${TYPED_ROW}`);
      const live = (await p.receiver.waitFor((es) => es.some((e) => payload(e).db_table === 'typed'), 20_000)).find((e) => payload(e).db_table === 'typed')!;
      const [typed] = await p.store.request([{ schema: 'public', table: 'typed', chunkSize: 10, origin: 'cli' }]);
      expect((await until(p.store, typed.id, ['done', 'failed'])).state).to.equal('done');
      const backfilled = (await p.receiver.waitFor((es) => es.some((e) => isBackfill(e) && payload(e).db_table === 'typed'), 20_000))
        .find((e) => isBackfill(e) && payload(e).db_table === 'typed')!;
      expect(payload(backfilled).data).to.deep.equal(payload(live).data);
      expect(JSON.stringify(payload(backfilled).data), 'the same JSON text: exact numbers and key order too').to.equal(JSON.stringify(payload(live).data));
      expect(payload(live).data).to.not.have.property('twice');
      expect(payload(backfilled).signal_kwargs).to.include({ raw: true, created: true });
      expect(payload(live).signal_kwargs).to.include({ raw: false, created: true });
      expect(backfilled.subject).to.equal(live.subject);

      // A table without a key: refused with a clear message.
      const [nokey] = await p.store.request([{ schema: 'public', table: 'nokey', chunkSize: 10, origin: 'cli' }]);
      const failed = await until(p.store, nokey.id, ['done', 'failed', 'cancelled']);
      expect(failed.state).to.equal('failed');
      expect(failed.error).to.match(/public\.nokey has no primary key/);

      // --where: only the rows it selects.
      const [where] = await p.store.request([{ schema: 'public', table: 'small', where: 'id % 7 = 0', chunkSize: 100, origin: 'cli' }]);
      expect((await until(p.store, where.id, ['done', 'failed'])).state).to.equal('done');
      await acknowledgedEverything(p.db, p.slot);
      const whereIds = p.receiver.accepted.filter((e) => e.id.startsWith(`backfill-${where.id}-`)).map((e) => payload(e).data.id as number);
      expect(new Set(whereIds).size).to.equal(Math.floor(3000 / 7));
      expect(whereIds.every((id) => id % 7 === 0)).to.equal(true);

      // Cancel: a slow backfill (rate 500 rows/s) shows on /status and in the metrics, then stops.
      const [slow] = await p.store.request([{ schema: 'public', table: 'small', chunkSize: 100, rate: 500, origin: 'cli' }]);
      const status = await waitFor(async () => {
        const s = await (await fetch(`http://127.0.0.1:${p.port}/status`)).json() as { backfills?: Record<string, unknown>[] };
        const b = s.backfills?.find((x) => x.id === slow.id);
        return b && (b.rowsDone as number) >= 200 ? b : undefined;
      }, { timeoutMs: 20_000, intervalMs: 50, what: 'the slow backfill on /status' });
      expect(status).to.include({ table: 'public.small' });
      expect(status.rowsEstimated).to.be.a('number');
      expect(status.remaining).to.be.a('number');
      expect(status.rate).to.be.a('number');
      expect(status).to.have.property('etaSeconds');
      const metrics = await (await fetch(`http://127.0.0.1:${p.port}/metrics`)).text();
      expect(metrics).to.match(new RegExp(`pgce_backfill_rows_done\\{id="${slow.id}",table="public.small"\\} \\d+`));
      expect(metrics).to.match(/pgce_backfill_rows_total\{table="public.joined",outcome="emitted"\} 50/);
      await p.store.cancel(slow.id);
      // Backfills run one after another: once the next one is done, the cancelled one sends nothing more.
      const [next] = await p.store.request([{ schema: 'public', table: 'small', where: 'id = 1', chunkSize: 10, origin: 'cli' }]);
      expect((await until(p.store, next.id, ['done', 'failed'])).state).to.equal('done');
      await acknowledgedEverything(p.db, p.slot);
      const cancelled = await p.store.get(slow.id);
      expect(cancelled!.state).to.equal('cancelled');
      const slowEvents = new Set(p.receiver.accepted.filter((e) => e.id.startsWith(`backfill-${slow.id}-`)).map((e) => e.id));
      expect(slowEvents.size, 'rows sent before the cancel').to.be.greaterThan(0);
      // Recorded progress, plus at most the chunk that was open when the cancel came.
      expect(slowEvents.size).to.be.at.most(cancelled!.rowsDone + 100);
      expect(slowEvents.size).to.be.lessThan(3000);
      expect((await p.store.list()).filter((b) => b.table === 'joined').length, 'onAdd requested once').to.equal(1);
    } finally {
      await p.close();
    }
  });
});
