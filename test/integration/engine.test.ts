import { expect } from 'chai';
import { formatLsn } from '../../src/sources/change';
import type { CloudEvent } from 'cloudevents';
import { readFileSync } from 'node:fs';
import { createTestDatabase, slotInfo, waitFor } from './harness/postgres';
import { spawnCli } from './harness/process';
import { startReceiver } from './harness/receiver';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

type Row = { id: number; v: number };
const rowOf = (e: CloudEvent<unknown>) => (e.data as { data: Row }).data;

/** CPU seconds (user + system) a process has used, from /proc (clock ticks of 1/100 s here). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}


describe('delivery engine: parallel rows, per-row order, dead letters, outages (real PostgreSQL, real receivers)', function () {
  this.timeout(180_000);

  it('many rows updated many times, a slow and random sink: every event arrives, per-row order holds', async () => {
    const db = await createTestDatabase('pgce_order');
    const receiver = await startReceiver();
    // Slow and uneven, with occasional retriable failures: later events of other rows overtake.
    receiver.respondWith(() => (Math.random() < 0.1 ? { status: 503 } : { status: 202, delayMs: Math.floor(Math.random() * 15) }));
    await db.query('CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL)');
    const config = writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}
  maxInFlight: 16
capture: { slot: pgce_order, publication: pgce_order, statusInterval: PT0.2S }
tables: [ t ]
`);
    const cli = spawnCli(['run'], { DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(await freePort()) });
    await cli.waitForLine(/capturing/, 30_000);
    const ROWS = 40;
    const STEPS = 10;
    await db.query('INSERT INTO t SELECT g, 0 FROM generate_series(1, $1) g', [ROWS]);
    for (let step = 1; step <= STEPS; step++) {
      // One transaction per step: every row changes in it, so rows compete for the sink.
      await db.query('UPDATE t SET v = $1', [step]);
    }
    const total = ROWS * (STEPS + 1);
    await waitFor(async () => new Set(receiver.accepted.map((e) => e.id)).size >= total, {
      timeoutMs: 90_000, intervalMs: 100, what: `${total} distinct events`,
    });
    const perRow = new Map<number, number[]>();
    const seen = new Set<string>();
    for (const e of receiver.accepted) {
      if (seen.has(e.id)) continue;
      seen.add(e.id);
      const { id, v } = rowOf(e);
      perRow.set(id, [...(perRow.get(id) ?? []), v]);
    }
    for (const [id, values] of perRow) {
      expect(values, `row ${id}`).to.deep.equal(Array.from({ length: STEPS + 1 }, (_, i) => i));
    }
    // Parallelism really happened: some event of a later transaction was accepted before an
    // event of an earlier one (impossible one at a time).
    const order = receiver.accepted.map((e) => String(e.sequence));
    expect(order.some((s, i) => i > 0 && s < order[i - 1]), 'rows were delivered concurrently').to.equal(true);
    cli.kill('SIGTERM');
    expect((await cli.exit()).code).to.equal(0);
    await receiver.close();
    await db.drop();
  });

  it('a poison event is dead-lettered (table and dead-letter sink), the rest flow, and replay delivers it', async () => {
    const db = await createTestDatabase('pgce_poison');
    const receiver = await startReceiver();
    const deadLetterSink = await startReceiver();
    let broken = true;
    receiver.respondWith((req) => (broken && req.headers['ce-subject'] === 'DCE:public.t/13' ? { status: 400, body: 'bad row 13' } : undefined));
    await db.query('CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL)');
    const configText = `${FAST_DELIVERY_YAML}
  deadLetterSink: ${deadLetterSink.url}
capture: { slot: pgce_poison, publication: pgce_poison, statusInterval: PT0.2S }
deadLetters: { schema: pgce_dl, table: failed }
tables: [ t ]
`;
    const config = writeTempFile('c.yaml', configText);
    const env = { DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: config };
    const cli = spawnCli(['run'], { ...env, PORT: String(await freePort()) });
    await cli.waitForLine(/capturing/, 30_000);
    for (let id = 1; id <= 25; id++) await db.query('INSERT INTO t VALUES ($1, 0)', [id]);

    await waitFor(async () => receiver.accepted.length >= 24, { timeoutMs: 30_000, intervalMs: 100, what: 'the 24 good events' });
    expect(receiver.accepted.map((e) => rowOf(e).id)).to.not.include(13);
    const [dead] = await deadLetterSink.waitFor(1, 15_000);
    expect(dead.subject).to.equal('DCE:public.t/13');
    expect(dead.knativeerrordest).to.equal(receiver.url);
    expect(Number(dead.knativeerrorcode)).to.equal(400);
    expect(Buffer.from(String(dead.knativeerrordata), 'base64').toString()).to.include('bad row 13');
    await waitFor(async () => (await db.query('SELECT 1 FROM pgce_dl.failed')).rowCount === 1, {
      timeoutMs: 10_000, intervalMs: 100, what: 'the dead-letter row',
    });
    const { rows } = await db.query('SELECT event_id, subject, status, attempts, event FROM pgce_dl.failed');
    expect(rows[0]).to.include({ event_id: dead.id, subject: 'DCE:public.t/13', status: 400, attempts: 1 });
    expect(JSON.parse(rows[0].event).data.data).to.deep.equal({ id: 13, v: 0 });
    // The slot moved past the poison event once it was stored.
    const { rows: [{ lsn }] } = await db.query('SELECT pg_current_wal_lsn()::text AS lsn');
    await waitFor(async () => {
      const info = await slotInfo(db.url, 'pgce_poison');
      return (await db.query('SELECT $1::pg_lsn >= $2::pg_lsn AS ok', [formatLsn(info!.confirmedFlushLsn!), lsn])).rows[0].ok;
    }, { timeoutMs: 10_000, intervalMs: 100, what: 'the slot to pass the dead-lettered event' });

    const list = spawnCli(['dead-letters', 'list', '--json'], { ...env, LOG_LEVEL: 'warn' });
    expect((await list.exit()).code).to.equal(0);
    expect(JSON.parse(list.stdout())).to.have.length(1);

    broken = false;
    const replay = spawnCli(['dead-letters', 'replay', '--all'], { ...env, LOG_LEVEL: 'warn' });
    expect((await replay.exit()).code, replay.stderr()).to.equal(0);
    expect(receiver.accepted.map((e) => rowOf(e).id)).to.include(13);
    expect((await db.query('SELECT 1 FROM pgce_dl.failed')).rowCount, 'replayed rows are removed').to.equal(0);

    cli.kill('SIGTERM');
    expect((await cli.exit()).code).to.equal(0);
    await receiver.close();
    await deadLetterSink.close();
    await db.drop();
  });

  it('sink answers 503 with Retry-After for 8 s: nothing lost, spacing respected, the CPU stays idle', async () => {
    const db = await createTestDatabase('pgce_retry_after');
    const receiver = await startReceiver();
    // Long enough for every event to be refused several times (Retry-After 2 s); kept short for make test.
    const OUTAGE_MS = 8_000;
    let downUntil = 0;
    receiver.respondWith(() => (Date.now() < downUntil ? { status: 503, headers: { 'retry-after': '2' } } : undefined));
    await db.query('CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL)');
    const config = writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: pgce_retry_after, publication: pgce_retry_after, statusInterval: PT0.5S }
tables: [ t ]
`);
    const cli = spawnCli(['run'], { DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(await freePort()), LOG_LEVEL: 'info' });
    await cli.waitForLine(/capturing/, 30_000);
    downUntil = Date.now() + OUTAGE_MS;
    for (let id = 1; id <= 20; id++) await db.query('INSERT INTO t VALUES ($1, 0)', [id]);
    await waitFor(async () => receiver.requests.length >= 1, { timeoutMs: 10_000, intervalMs: 50, what: 'a first attempt' });
    const cpuBefore = cpuSeconds(cli.child.pid!);
    const started = Date.now();
    await waitFor(async () => new Set(receiver.accepted.map((e) => e.id)).size >= 20, {
      timeoutMs: OUTAGE_MS + 30_000, intervalMs: 200, what: '20 events after the outage',
    });
    const cpuUsed = cpuSeconds(cli.child.pid!) - cpuBefore;
    const elapsed = (Date.now() - started) / 1000;
    // A spinning retry loop would use a whole core (~1.0). Waiting costs only the retry traffic
    // itself (20 events every 2 s, each attempt logged): 2-5% measured, more on a busy machine.
    expect(cpuUsed / elapsed, `CPU ${cpuUsed}s over ${elapsed}s while waiting`).to.be.lessThan(0.15);
    // Per event: consecutive attempts during the outage are at least Retry-After (2 s) apart.
    const attempts = new Map<string, number[]>();
    for (const r of receiver.requests) {
      if (r.status !== 503) continue;
      const id = r.headers['ce-id'];
      attempts.set(id, [...(attempts.get(id) ?? []), r.at]);
    }
    const gaps = [...attempts.values()].flatMap((ts) => ts.slice(1).map((t, i) => t - ts[i]));
    expect(gaps.length).to.be.greaterThan(5);
    expect(Math.min(...gaps), 'no retry before Retry-After').to.be.at.least(1900);
    expect(rowIds(receiver.accepted)).to.deep.equal(Array.from({ length: 20 }, (_, i) => i + 1));
    cli.kill('SIGTERM');
    expect((await cli.exit()).code).to.equal(0);
    await receiver.close();
    await db.drop();
  });
});

function rowIds(events: CloudEvent<unknown>[]): number[] {
  return [...new Set(events.map((e) => rowOf(e).id))].sort((a, b) => a - b);
}
