/**
 * capture.mode: trigger against logical mode, on one database (real PostgreSQL, real receivers).
 *
 * Both change sources run side by side, each its own `run` under its own capture name, over the
 * same tables: the conformance cases (insert, update, delete, truncate, every common type,
 * composite keys, per-row order) write once and expect the same events from both, table-driven;
 * so do a sink outage (503 for a while: nothing lost, per-row order kept) and a poison event (400:
 * dead-lettered with its reason, the rest go on). The trigger-mode process runs as a role with
 * neither REPLICATION nor superuser. Then the journal's own guarantees: backpressure (the source
 * reads no further than the delivery buffer), a transaction committing after a later one is not skipped, journal
 * rows go only once delivered, kill -9 loses nothing, a lost NOTIFY is made up by the poll, and
 * teardown leaves no trigger behind.
 */
import { expect } from 'chai';
import type { CloudEvent } from 'cloudevents';
import { Client } from 'pg';
import { createTestDatabase, databaseUrl, waitFor } from '../harness/postgres';
import { spawnCli, type CliProcess } from '../harness/process';
import { startReceiver, type Receiver } from '../harness/receiver';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from '../support';

type Db = Awaited<ReturnType<typeof createTestDatabase>>;

const DB = 'pgce_jrn_modes';
const LOGICAL = 'pgce_jrn_l';
const TRIGGER = 'pgce_jrn_t';
/** The trigger-mode process's login: no REPLICATION, no superuser. */
const ROLE = 'pgce_jrn_app';

const SCHEMA = `
CREATE SCHEMA shop;
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE DOMAIN price AS numeric(10,2);
CREATE TABLE plain (id serial PRIMARY KEY, name text, qty int);
CREATE TABLE full_row (id int PRIMARY KEY, name text, qty int, total int GENERATED ALWAYS AS (qty * 2) STORED);
ALTER TABLE full_row REPLICA IDENTITY FULL;
CREATE TABLE shop.line (sku text, order_id int, qty int, PRIMARY KEY (order_id, sku));
CREATE TABLE every_type (
  id int PRIMARY KEY, b bool, i2 int2, i8_small int8, i8_big int8, f4 float4, f8 float8, n numeric(30,4), p price,
  t text, vc varchar(10), ch char(3), u uuid, j json, jb jsonb, by bytea, d date, ts timestamp, tstz timestamptz,
  tm time, tmtz timetz, iv interval, ia int[], iaa int[][], ta text[], tsa timestamptz[], m mood, nul text,
  mo money, bi bit(3), ip inet, rng tstzrange, ja jsonb[], tsaa timestamp[][]);
CREATE TABLE counter (id int PRIMARY KEY, v int);
CREATE TABLE late (id int PRIMARY KEY, note text);
`;

const TABLES = ['plain', 'full_row', 'shop.line', 'every_type', 'counter', 'late'];

/** A conformance case: statements (each its own transaction, or one transaction when `atomic`), and the events it makes. */
interface Case {
  name: string;
  sql: string[];
  atomic?: boolean;
  events: number;
}

const CASES: Case[] = [
  { name: 'insert, update, delete without REPLICA IDENTITY FULL', events: 3, sql: [
    `INSERT INTO plain VALUES (1, 'a', 1)`, `UPDATE plain SET qty = 2 WHERE id = 1`, `DELETE FROM plain WHERE id = 1`] },
  { name: 'an update that changes the key carries the old key', events: 2, sql: [
    `INSERT INTO plain VALUES (2, 'b', 1)`, `UPDATE plain SET id = 3 WHERE id = 2`] },
  { name: 'REPLICA IDENTITY FULL: old rows, changed columns, generated columns left out', events: 4, sql: [
    `INSERT INTO full_row VALUES (7, 'pen', 1)`, `UPDATE full_row SET qty = 5 WHERE id = 7`, `UPDATE full_row SET name = name WHERE id = 7`,
    `DELETE FROM full_row WHERE id = 7`] },
  { name: 'a composite key, in key order', events: 3, sql: [
    `INSERT INTO shop.line VALUES ('x-1', 42, 1)`, `UPDATE shop.line SET qty = 3 WHERE order_id = 42`, `DELETE FROM shop.line WHERE order_id = 42`] },
  { name: 'every common type, edge values included', events: 3, sql: [
    `INSERT INTO every_type VALUES (1, true, 12, 42, 9007199254740993, 1.1, 0.1, 12345678901234567890.1234, 3.1,
      E'caf\\u00e9 "q" \\\\ \\n', 'short', 'ab', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      '{"b": 1, "a": [1.50, 12345678901234567890, 1e400], "b": 2}', '{"z": 1, "a": 1.0, "n": null}', '\\x00ff10',
      '2020-12-01', '2020-12-01 09:43:00.123456', '2020-12-01 09:43:00.5+02', '09:00:00.25', '09:00:00+05:30',
      '1 day 02:03:04.5', '{1,NULL,3}', '{{1,2},{3,4}}', '{"a,b","c\\"d",NULL,""}',
      '{"2020-01-01 00:00:00+00","2021-06-01 12:00:00.25+03"}', 'happy', NULL, 12.34, B'101', '10.0.0.1/8',
      '[2020-01-01 00:00+00,2021-01-01 00:00+00)', ARRAY['{"k": 1.10}'::jsonb], '{{"2020-01-01 10:00:00.5",NULL},{"infinity","2021-01-01 00:00:00"}}')`,
    `INSERT INTO every_type (id, f4, f8, n, d, ts, tstz, ia, ta, i8_big, t) VALUES (2, 'NaN', '-Infinity', 'NaN', '0044-03-15 BC',
      '0044-03-15 09:00:00 BC', 'infinity', '{}', '{}', -9223372036854775808, '')`,
    `INSERT INTO every_type (id, f8, tstz, d, ts) VALUES (3, 1e100, '0044-03-15 09:00:00+00 BC', '-infinity', '294276-12-31 23:59:59.999999')`] },
  { name: 'per-row order across transactions', events: 3, sql: [
    `INSERT INTO counter VALUES (1, 0)`, `UPDATE counter SET v = 1 WHERE id = 1`, `UPDATE counter SET v = 2 WHERE id = 1`] },
  { name: '…and inside one transaction', atomic: true, events: 3, sql: [
    `UPDATE counter SET v = 3 WHERE id = 1`, `UPDATE counter SET v = 4 WHERE id = 1`, `DELETE FROM counter WHERE id = 1`] },
  { name: 'a truncate, one event per table', events: 2, sql: [
    `INSERT INTO plain VALUES (9, 'z', 1)`, `TRUNCATE plain`] },
];

/** What differs by construction between the modes: the id (commit LSN vs journal row), and the time (commit vs transaction start). */
function comparable(e: CloudEvent<unknown>): Record<string, unknown> {
  const { id: _id, time: _time, sequence: _sequence, ...rest } = e as unknown as Record<string, unknown>;
  return JSON.parse(JSON.stringify(rest));
}

/** Events by subject, each subject's in arrival order (the order delivery keeps). */
function bySubject(events: CloudEvent<unknown>[]): Record<string, Record<string, unknown>[]> {
  const out: Record<string, Record<string, unknown>[]> = {};
  for (const e of events) (out[String(e.subject)] ??= []).push(comparable(e));
  return out;
}

/** Each row's `v` values in arrival order (events by their id once: a redelivery counts once). */
function valuesByRow(events: CloudEvent<unknown>[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  const seen = new Set<string>();
  for (const e of events) {
    if (seen.has(e.id)) continue;
    seen.add(e.id);
    (out[String(e.subject)] ??= []).push((e.data as { data: { v: number } }).data.v);
  }
  return out;
}

/** A gauge of run's /metrics, e.g. pgce_delivery_buffered_events. */
async function gauge(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!match) throw new Error(`no ${name} in /metrics`);
  return Number(match[1]);
}

/** Each capture its own product schema: the trigger-mode role owns its own (its journal). `delivery`: lines added under delivery. */
function configYaml(capture: string, overrides: Record<string, string> = {}, delivery = ''): string {
  const settings = { slot: capture, publication: capture, statusInterval: 'PT1S', reconnectDelay: 'PT0.2S', reconnectMax: 'PT1S', ...overrides };
  return writeTempFile(`${capture}.yaml`, `${FAST_DELIVERY_YAML}${delivery}
capture: { ${Object.entries(settings).map(([k, v]) => `${k}: ${v}`).join(', ')} }
deadLetters: { schema: ${capture} }
tables: [${TABLES.join(', ')}]
`);
}

describe('capture.mode trigger: a trigger-written journal, against logical mode (real PostgreSQL, real receivers)', function () {
  this.timeout(120_000);
  let db: Db;
  let logicalReceiver: Receiver;
  let triggerReceiver: Receiver;
  let logical: CliProcess;
  let trigger: CliProcess;
  const roleUrl = () => {
    const url = new URL(databaseUrl(DB));
    url.username = ROLE;
    url.password = '';
    return url.toString();
  };
  const triggerConfig = configYaml(TRIGGER, { mode: 'trigger', pollInterval: 'PT1H' });

  let triggerPort = 0;
  const startTrigger = async (config: string) => {
    triggerPort = await freePort();
    const cli = spawnCli(['run'], { DATABASE_URL: roleUrl(), K_SINK: triggerReceiver.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(triggerPort) });
    await cli.waitForLine(/capturing/, 30_000);
    return cli;
  };
  const journalRows = async () => Number((await db.query(`SELECT count(*) AS n FROM ${TRIGGER}.journal WHERE capture = $1`, [TRIGGER])).rows[0].n);

  before(async () => {
    db = await createTestDatabase(DB);
    await db.query(SCHEMA);
    await db.query(`DROP ROLE IF EXISTS ${ROLE}`);
    await db.query(`CREATE ROLE ${ROLE} LOGIN NOSUPERUSER NOREPLICATION`);
    // What trigger mode needs: its schema (CREATE on the database), and the captured tables (here
    // the application's role owns them; TRIGGER and SELECT are enough for setup, teardown needs the owner).
    await db.query(`GRANT CREATE ON DATABASE ${DB} TO ${ROLE}; GRANT USAGE ON SCHEMA shop TO ${ROLE};
      ${TABLES.map((t) => `ALTER TABLE ${t} OWNER TO ${ROLE}`).join('; ')}`);
    [logicalReceiver, triggerReceiver] = await Promise.all([startReceiver(), startReceiver()]);
    logical = spawnCli(['run'], { DATABASE_URL: db.url, K_SINK: logicalReceiver.url, PG_CLOUDEVENTS_CONFIG: configYaml(LOGICAL), PORT: String(await freePort()) });
    trigger = await startTrigger(triggerConfig);
    await logical.waitForLine(/capturing/, 30_000);
  });

  after(async () => {
    for (const cli of [logical, trigger]) {
      if (!cli) continue;
      cli.kill('SIGTERM');
      await cli.exit();
    }
    await Promise.all([logicalReceiver?.close(), triggerReceiver?.close()]);
    await db?.drop();
    const admin = new Client({ connectionString: databaseUrl('postgres') });
    await admin.connect();
    await admin.query(`DROP ROLE IF EXISTS ${ROLE}`).catch(() => undefined);
    await admin.end();
  });

  afterEach(() => {
    expect([...logicalReceiver.errors, ...triggerReceiver.errors], 'every request parsed as a valid CloudEvent').to.deep.equal([]);
  });

  it('check in trigger mode needs neither wal_level = logical nor REPLICATION (logical mode refuses the same role)', async () => {
    const check = (config: string) => spawnCli(['check'], { DATABASE_URL: roleUrl(), K_SINK: triggerReceiver.url, PG_CLOUDEVENTS_CONFIG: config });
    const ok = check(triggerConfig);
    expect((await ok.exit()).code, ok.stderr()).to.equal(0);
    expect(ok.stdout()).to.match(/capture\.mode trigger .*no replication needed/);
    expect(ok.stdout()).to.match(new RegExp(`ok   journal triggers ${TRIGGER}_journal on ${TABLES.length} table`));
    const refused = check(configYaml(`${LOGICAL}_x`));
    expect((await refused.exit()).code).to.not.equal(0);
    expect(refused.stderr()).to.match(/REPLICATION/);
  });

  // Conformance: the same events from both change sources.
  for (const c of CASES) {
      it(`both modes: ${c.name}`, async () => {
        const before = [logicalReceiver.accepted.length, triggerReceiver.accepted.length];
        if (c.atomic) await db.query(`BEGIN; ${c.sql.join('; ')}; COMMIT`);
        else for (const sql of c.sql) await db.query(sql);
        await logicalReceiver.waitFor((all) => all.length >= before[0] + c.events, 20_000);
        await triggerReceiver.waitFor((all) => all.length >= before[1] + c.events, 20_000);
        const fromLogical = logicalReceiver.accepted.slice(before[0]);
        const fromTrigger = triggerReceiver.accepted.slice(before[1]);
        expect(fromLogical).to.have.length(c.events);
        expect(bySubject(fromTrigger)).to.deep.equal(bySubject(fromLogical));
        // Ids: the journal row's, so a redelivery keeps its id.
        for (const e of fromTrigger) expect(e.id).to.match(/^[0-9A-F]{16}-00000000$/);
      });
  }

  it('a transaction that commits after a later one (smaller journal id) is still delivered', async () => {
    const early = new Client({ connectionString: db.url });
    await early.connect();
    try {
      await early.query(`BEGIN; INSERT INTO late VALUES (1, 'begun first, committed last')`);
      await db.query(`INSERT INTO late VALUES (2, 'begun second, committed first')`);
      const second = await triggerReceiver.waitFor((all) => all.some((e) => e.subject === 'DCE:public.late/2'), 20_000);
      expect(second.some((e) => e.subject === 'DCE:public.late/1'), 'not before its transaction commits').to.equal(false);
      await early.query('COMMIT');
    } finally {
      await early.end();
    }
    const all = await triggerReceiver.waitFor((events) => events.some((e) => e.subject === 'DCE:public.late/1'), 20_000);
    const id = (subject: string) => BigInt(`0x${String(all.find((e) => e.subject === subject)!.id).slice(0, 16)}`);
    // The pitfall of a cursor over the id: row 1's journal id is the smaller one, yet it was handed over after row 2.
    expect(id('DCE:public.late/1') < id('DCE:public.late/2')).to.equal(true);
    expect(all.findIndex((e) => e.subject === 'DCE:public.late/1')).to.be.greaterThan(all.findIndex((e) => e.subject === 'DCE:public.late/2'));
  });

  it('journal rows are deleted only once their event is delivered', async () => {
    await waitFor(async () => (await journalRows()) === 0 || undefined, { timeoutMs: 10_000, intervalMs: 50, what: 'the journal emptied' });
    let refuse = true;
    triggerReceiver.respondWith((req) => (refuse && req.headers['ce-subject'] === 'DCE:public.plain/20' ? { status: 503 } : undefined));
    await db.query(`INSERT INTO plain VALUES (20, 'held', 1)`);
    await waitFor(async () => triggerReceiver.requests.filter((r) => r.headers['ce-subject'] === 'DCE:public.plain/20').length >= 3 || undefined,
      { timeoutMs: 20_000, intervalMs: 50, what: 'retries of the refused event' });
    expect(await journalRows(), 'the undelivered change stays in the journal').to.equal(1);
    refuse = false;
    await triggerReceiver.waitFor((all) => all.some((e) => e.subject === 'DCE:public.plain/20'), 20_000);
    await waitFor(async () => (await journalRows()) === 0 || undefined, { timeoutMs: 10_000, intervalMs: 50, what: 'the delivered row deleted' });
    triggerReceiver.respondWith(undefined);
  });

  it('status and GET /status show the journal depth and the age of its oldest row', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    triggerReceiver.respondWith((req) => (req.headers['ce-subject'] === 'DCE:public.plain/21' ? { status: 202, after: held } : undefined));
    await db.query(`INSERT INTO plain VALUES (21, 'waiting', 1)`);
    await waitFor(async () => triggerReceiver.requests.length && (await journalRows()) === 1 || undefined, { timeoutMs: 10_000, intervalMs: 50, what: 'a row waiting' });
    const status = spawnCli(['status', '--json'], { DATABASE_URL: roleUrl(), PG_CLOUDEVENTS_CONFIG: triggerConfig });
    expect((await status.exit()).code, status.stderr()).to.equal(0);
    const report = JSON.parse(status.stdout());
    expect(report.mode).to.equal('trigger');
    expect(report.journal.depth).to.equal(1);
    expect(report.journal.oldestAgeSeconds).to.be.a('number').and.at.least(0);
    expect(report.journal.triggers).to.have.length(TABLES.length * 2);
    const live = await (await fetch(`http://127.0.0.1:${triggerPort}/status`)).json() as { journal: { depth: number; oldestAgeSeconds: number }; slot: unknown };
    expect(live.journal.depth, 'GET /status').to.equal(1);
    expect(live.journal.oldestAgeSeconds).to.be.a('number');
    expect(live.slot).to.equal(null);
    release();
    await waitFor(async () => (await journalRows()) === 0 || undefined, { timeoutMs: 10_000, intervalMs: 50, what: 'the row delivered and deleted' });
    triggerReceiver.respondWith(undefined);
  });

  it('both modes: the sink answers 503 for a while, then recovers: nothing lost, per-row order kept, journal rows kept until delivered', async () => {
    const receivers = [logicalReceiver, triggerReceiver];
    await waitFor(async () => (await journalRows()) === 0 || undefined, { timeoutMs: 10_000, intervalMs: 50, what: 'the journal emptied' });
    const before = receivers.map((r) => ({ accepted: r.accepted.length, requests: r.requests.length }));
    let down = true;
    for (const r of receivers) r.respondWith(() => (down ? { status: 503 } : undefined));
    const ROWS = 4;
    const STEPS = 3;
    const changes = ROWS * (STEPS + 1);
    await db.query('INSERT INTO counter SELECT g, 0 FROM generate_series(101, 100 + $1) g', [ROWS]);
    // One transaction per step, every row in each: rows compete for the sink once it is back.
    for (let step = 1; step <= STEPS; step++) await db.query('UPDATE counter SET v = $1 WHERE id > 100', [step]);
    await waitFor(async () => receivers.every((r, i) => r.requests.length >= before[i].requests + 3 * ROWS) || undefined,
      { timeoutMs: 20_000, intervalMs: 50, what: 'both modes retrying against the failing sink' });
    expect(receivers.map((r, i) => r.accepted.length - before[i].accepted), 'nothing accepted while down').to.deep.equal([0, 0]);
    expect(await journalRows(), 'every undelivered change stays in the journal').to.equal(changes);
    down = false;
    await waitFor(async () => receivers.every((r, i) => new Set(r.accepted.slice(before[i].accepted).map((e) => e.id)).size >= changes) || undefined,
      { timeoutMs: 30_000, intervalMs: 50, what: 'every change accepted in both modes' });
    const expected = Object.fromEntries(Array.from({ length: ROWS }, (_, i) => [`DCE:public.counter/${101 + i}`, Array.from({ length: STEPS + 1 }, (_, v) => v)]));
    expect(valuesByRow(logicalReceiver.accepted.slice(before[0].accepted)), 'logical: per-row order').to.deep.equal(expected);
    expect(valuesByRow(triggerReceiver.accepted.slice(before[1].accepted)), 'trigger: per-row order').to.deep.equal(expected);
    await waitFor(async () => (await journalRows()) === 0 || undefined, { timeoutMs: 10_000, intervalMs: 50, what: 'the delivered rows deleted' });
    for (const r of receivers) r.respondWith(undefined);
  });

  it('both modes: a poison event (400, for good) is dead-lettered with its reason, the others go on, the journal drains', async () => {
    const receivers = [logicalReceiver, triggerReceiver];
    const POISON = 'DCE:public.plain/51';
    for (const r of receivers) r.respondWith((req) => (req.headers['ce-subject'] === POISON ? { status: 400, body: 'row 51 is refused' } : undefined));
    for (const id of [50, 51, 52]) await db.query(`INSERT INTO plain VALUES ($1, 'p', 1)`, [id]);
    await db.query('UPDATE plain SET qty = 2 WHERE id = 52');
    for (const r of receivers) {
      await r.waitFor((all) => all.filter((e) => e.subject === 'DCE:public.plain/52').length >= 2 && all.some((e) => e.subject === 'DCE:public.plain/50'), 20_000);
      expect(r.accepted.some((e) => e.subject === POISON)).to.equal(false);
    }
    for (const schema of [LOGICAL, TRIGGER]) {
      const dead = await waitFor(async () => (await db.query(`SELECT subject, status, error, destination FROM ${schema}.dead_letters WHERE subject = $1`, [POISON])).rows[0],
        { timeoutMs: 10_000, intervalMs: 50, what: `the dead letter in ${schema}` });
      expect(dead, schema).to.include({ status: 400, destination: 'default' });
      expect(dead.error, schema).to.include('row 51 is refused');
    }
    // Dead-lettered counts as done: its journal row goes too.
    await waitFor(async () => (await journalRows()) === 0 || undefined, { timeoutMs: 10_000, intervalMs: 50, what: 'the journal drained' });
    for (const r of receivers) r.respondWith(undefined);
  });

  it('trigger mode backpressure: a burst is delivered whole while the source holds no more than the buffer (and one page)', async () => {
    trigger.kill('SIGTERM');
    expect((await trigger.exit()).code).to.equal(0);
    const BATCH = 10;
    trigger = await startTrigger(configYaml(TRIGGER, { mode: 'trigger', pollInterval: 'PT1H', batchSize: String(BATCH) }, '  maxBufferBytes: 65536\n'));
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    triggerReceiver.respondWith(() => ({ status: 202, after: gate }));
    const N = 300;
    const WIDE = 2000;
    // Each event is more than WIDE bytes: the byte budget is full after 65536 / WIDE events at most.
    const bound = Math.ceil(65536 / WIDE) + BATCH;
    const before = triggerReceiver.accepted.length;
    try {
      await db.query(`INSERT INTO plain (id, name, qty) SELECT g, repeat('x', ${WIDE}), 1 FROM generate_series(1001, 1000 + $1) g`, [N]);
      await waitFor(async () => (await gauge(triggerPort, 'pgce_delivery_buffered_bytes')) >= 65536 || undefined,
        { timeoutMs: 20_000, intervalMs: 50, what: 'the buffer to fill' });
      // Paused: however long the sink holds, what was read stays within the budget.
      const samples: number[] = [];
      await waitFor(async () => {
        samples.push(await gauge(triggerPort, 'pgce_delivery_buffered_events'));
        return samples.length >= 10 || undefined;
      }, { timeoutMs: 20_000, intervalMs: 100, what: 'ten samples' });
      expect(Math.max(...samples), `buffered events (N = ${N})`).to.be.at.most(bound);
      expect(await journalRows()).to.equal(N);
    } finally {
      open();
      triggerReceiver.respondWith(undefined);
    }
    await waitFor(async () => new Set(triggerReceiver.accepted.slice(before).map((e) => e.subject)).size >= N || undefined,
      { timeoutMs: 30_000, intervalMs: 50, what: 'the whole burst accepted' });
    await waitFor(async () => (await journalRows()) === 0 || undefined, { timeoutMs: 20_000, intervalMs: 50, what: 'the journal drained' });
  });

  it('kill -9 with a delivery in flight loses nothing: the restarted source reads the journal again', async () => {
    triggerReceiver.respondWith((req) => (req.headers['ce-subject'] === 'DCE:public.plain/30' ? { status: 503 } : undefined));
    await db.query(`INSERT INTO plain VALUES (30, 'across a crash', 1)`);
    await waitFor(async () => triggerReceiver.requests.some((r) => r.headers['ce-subject'] === 'DCE:public.plain/30') || undefined,
      { timeoutMs: 20_000, intervalMs: 50, what: 'the first attempt' });
    trigger.kill('SIGKILL');
    await trigger.exit();
    triggerReceiver.respondWith(undefined);
    // Now polled every 0.3 s; the listener, once lost, waits 30 s before it reconnects (the next test).
    trigger = await startTrigger(configYaml(TRIGGER, { mode: 'trigger', pollInterval: 'PT0.3S', reconnectDelay: 'PT30S', reconnectMax: 'PT30S' }));
    await triggerReceiver.waitFor((all) => all.some((e) => e.subject === 'DCE:public.plain/30'), 20_000);
    await waitFor(async () => (await journalRows()) === 0 || undefined, { timeoutMs: 10_000, intervalMs: 50, what: 'the row deleted' });
  });

  it('a lost NOTIFY (the listener connection killed) is made up by the poll', async () => {
    const { rows } = await db.query(`SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE datname = $1 AND query = $2`,
      [DB, `LISTEN "${TRIGGER}_journal"`]);
    expect(rows.map((r) => r.ended)).to.deep.equal([true]);
    await trigger.waitForLine(/journal listener connection was lost/, 10_000);
    await db.query(`INSERT INTO plain VALUES (31, 'no one listens', 1)`);
    await triggerReceiver.waitFor((all) => all.some((e) => e.subject === 'DCE:public.plain/31'), 10_000);
  });

  it('teardown removes the triggers, the function and the journal; the logical capture goes on', async () => {
    trigger.kill('SIGTERM');
    expect((await trigger.exit()).code).to.equal(0);
    const teardown = spawnCli(['teardown'], { DATABASE_URL: roleUrl(), PG_CLOUDEVENTS_CONFIG: triggerConfig });
    expect((await teardown.exit()).code, teardown.stderr()).to.equal(0);
    expect(teardown.stdout()).to.match(/drop journal function/);
    const left = await db.query(`SELECT tgname FROM pg_trigger WHERE tgname LIKE '%journal%'`);
    expect(left.rows).to.deep.equal([]);
    const fn = await db.query(`SELECT proname FROM pg_proc WHERE proname = $1`, [`${TRIGGER}_journal`]);
    expect(fn.rows).to.deep.equal([]);
    const table = await db.query(`SELECT to_regclass('${TRIGGER}.journal') AS t`);
    expect(table.rows[0].t).to.equal(null);
    // Writes go on without the triggers, and the logical capture still delivers them.
    const before = logicalReceiver.accepted.length;
    await db.query(`INSERT INTO plain VALUES (40, 'after teardown', 1)`);
    await logicalReceiver.waitFor((all) => all.length > before, 20_000);
  });
});
