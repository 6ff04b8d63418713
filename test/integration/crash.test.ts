import { expect } from 'chai';
import { formatLsn, parseLsn } from '../../src/sources/change';
import type { CloudEvent } from 'cloudevents';
import { createTestDatabase, slotInfo, waitFor } from './harness/postgres';
import { spawnCli } from './harness/process';
import { startReceiver } from './harness/receiver';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

type Data = { data: { id: number; v: number } };

/** The commit LSN an event belongs to: `sequence` is `<commit LSN, 16 hex digits>-<ordinal>` (README "The event"). */
function commitLsnOf(event: CloudEvent<unknown>): bigint {
  return BigInt(`0x${String(event.sequence).split('-')[0]}`);
}

/**
 * Every committed change arrives at least once and in commit order per row, across kill -9 of the
 * source while deliveries are in flight and across a sink that answers 503 for a while.
 */
describe('delivery guarantees (real PostgreSQL, real receiver, real process kills)', function () {
  this.timeout(180_000);

  async function startRun(dbUrl: string, sinkUrl: string, config: string) {
    const cli = spawnCli(['run'], { DATABASE_URL: dbUrl, K_SINK: sinkUrl, PG_CLOUDEVENTS_CONFIG: config, PORT: String(await freePort()) });
    await cli.waitForLine(/capturing/, 30_000);
    return cli;
  }

  /** For each row: the v values in arrival order, ignoring redelivered event ids. */
  function perRow(events: CloudEvent<unknown>[]): Map<number, number[]> {
    const seen = new Set<string>();
    const rows = new Map<number, number[]>();
    for (const e of events) {
      if (seen.has(e.id)) continue;
      seen.add(e.id);
      const { id, v } = (e.data as Data).data;
      rows.set(id, [...(rows.get(id) ?? []), v]);
    }
    return rows;
  }

  it('kill -9 with deliveries outstanding while rows are being written: restart delivers every change, per-row order holds', async () => {
    const db = await createTestDatabase('pgce_crash');
    const receiver = await startReceiver();
    await db.query('CREATE TABLE counter (id int PRIMARY KEY, v int NOT NULL)');
    const config = writeTempFile('config.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: pgce_crash, publication: pgce_crash, statusInterval: PT0.2S, reconnectDelay: PT0.2S, reconnectMax: PT1S }
tables: [ { table: public.counter } ]
`);
    // Until the kill, the receiver answers the first ANSWERED requests and holds every later one
    // unanswered, so the kill lands on deliveries in flight, not on an idle source.
    const ANSWERED = 30;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let killed = false;
    receiver.respondWith((_, n) => (killed || n <= ANSWERED ? undefined : { status: 202, after: held }));
    let cli = await startRun(db.url, receiver.url, config);

    const ROWS = 20;
    const STEPS = 15;
    const KILL_AFTER_STEP = 5;
    const distinct = (events: CloudEvent<unknown>[]) => new Set(events.map((e) => e.id));
    let atKill: { written: number; accepted: Set<string>; held: CloudEvent<unknown>[]; lastCommit: bigint } | undefined;
    // Each row goes v=0 (insert) then v=1..STEPS (updates), in single-row transactions.
    for (let step = 0; step <= STEPS; step++) {
      for (let id = 1; id <= ROWS; id++) {
        if (step === 0) await db.query('INSERT INTO counter VALUES ($1, 0)', [id]);
        else await db.query('UPDATE counter SET v = $2 WHERE id = $1', [id, step]);
      }
      if (step !== KILL_AFTER_STEP) continue;
      const { rows: [{ lsn }] } = await db.query('SELECT pg_current_wal_lsn()::text AS lsn');
      // Some events answered, some seen and waiting for their answer: then kill -9.
      await waitFor(async () => receiver.accepted.length >= ANSWERED && receiver.events.length > receiver.accepted.length, {
        timeoutMs: 30_000, intervalMs: 50, what: 'deliveries answered and deliveries held',
      });
      cli.kill('SIGKILL');
      await cli.exit();
      killed = true;
      const accepted = distinct(receiver.accepted);
      atKill = {
        written: (step + 1) * ROWS,
        accepted,
        held: receiver.events.filter((e) => !accepted.has(e.id)),
        lastCommit: parseLsn(lsn as string),
      };
      // The held answers now go to a dead connection: they never count as accepted.
      release();
    }
    expect(atKill, 'the kill happened').to.not.equal(undefined);
    const kill = atKill!;
    expect(kill.accepted.size, 'events delivered before the kill').to.be.greaterThan(0);
    expect(kill.accepted.size, 'but not every event written before it').to.be.lessThan(kill.written);
    expect(kill.held.length, 'events in flight at the kill').to.be.greaterThan(0);
    // What the restart resumes from: the walsender is gone, so the slot's position is final.
    const slot = await waitFor(async () => {
      const info = (await slotInfo(db.url, 'pgce_crash'))!;
      return !info.active && info;
    }, { timeoutMs: 15_000, intervalMs: 100, what: 'the killed source\'s walsender to exit' });
    const confirmed = slot.confirmedFlushLsn ?? 0n;
    const firstHeld = kill.held.map((e) => commitLsnOf(e)).reduce((a, b) => (a < b ? a : b));
    expect(confirmed < kill.lastCommit, `confirmed_flush_lsn ${formatLsn(confirmed)} is behind the last commit before the kill, ${formatLsn(kill.lastCommit)}`).to.equal(true);
    expect(confirmed <= firstHeld, `confirmed_flush_lsn ${formatLsn(confirmed)} has not passed the first undelivered commit, ${formatLsn(firstHeld)}`).to.equal(true);

    cli = await startRun(db.url, receiver.url, config);
    const total = ROWS * (STEPS + 1);
    await waitFor(async () => distinct(receiver.accepted).size >= total, {
      timeoutMs: 60_000, intervalMs: 100, what: `${total} distinct events`,
    });
    const deliveredAfter = distinct(receiver.accepted);
    for (const e of kill.held) expect(deliveredAfter.has(e.id), `event ${e.id}, in flight at the kill, delivered after the restart`).to.equal(true);
    const rows = perRow(receiver.accepted);
    expect(rows.size).to.equal(ROWS);
    for (const [id, values] of rows) {
      expect(values, `row ${id} values in order, none missing`).to.deep.equal(Array.from({ length: STEPS + 1 }, (_, i) => i));
    }
    // Ids are deterministic: a redelivered change carries the id it had before.
    const byId = new Map<string, string>();
    for (const e of receiver.events) {
      const key = `${(e.data as Data).data.id}:${(e.data as Data).data.v}`;
      if (byId.has(e.id)) expect(byId.get(e.id)).to.equal(key);
      byId.set(e.id, key);
    }
    cli.kill('SIGTERM');
    expect((await cli.exit()).code).to.equal(0);
    await receiver.close();
    await db.drop();
  });

  it('sink answers 503 for a while: nothing lost, the slot is not acknowledged past undelivered changes', async () => {
    const db = await createTestDatabase('pgce_outage');
    const receiver = await startReceiver();
    await db.query('CREATE TABLE counter (id int PRIMARY KEY, v int NOT NULL)');
    const config = writeTempFile('config.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: pgce_outage, publication: pgce_outage, statusInterval: PT0.2S, reconnectDelay: PT0.2S, reconnectMax: PT1S }
tables: [ { table: public.counter } ]
`);
    const cli = await startRun(db.url, receiver.url, config);
    let down = true;
    receiver.respondWith(() => (down ? { status: 503 } : undefined));

    const { rows: [{ lsn: beforeLsn }] } = await db.query('SELECT pg_current_wal_lsn()::text AS lsn');
    for (let id = 1; id <= 10; id++) await db.query('INSERT INTO counter VALUES ($1, 0)', [id]);
    // While the sink refuses, the slot must stay at or before the first undelivered commit.
    await waitFor(async () => receiver.requests.length >= 3, { timeoutMs: 20_000, intervalMs: 50, what: 'retries against the failing sink' });
    for (let i = 0; i < 5; i++) {
      const info = (await slotInfo(db.url, "pgce_outage"))!;
      const { rows } = await db.query('SELECT $1::pg_lsn <= $2::pg_lsn AS ok', [info.confirmedFlushLsn === null ? '0/0' : formatLsn(info.confirmedFlushLsn), beforeLsn]);
      expect(rows[0].ok, 'confirmed_flush_lsn must not pass the undelivered insert').to.equal(true);
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(receiver.accepted.length, 'nothing accepted while the sink is down').to.equal(0);
    expect(receiver.events.length, 'but the source kept trying').to.be.greaterThan(0);

    down = false;
    await waitFor(async () => new Set(receiver.accepted.map((e: CloudEvent<unknown>) => e.id)).size >= 10, {
      timeoutMs: 30_000, intervalMs: 100, what: '10 events after the sink recovers',
    });
    const ids = [...perRow(receiver.accepted).keys()].sort((a, b) => a - b);
    expect(ids).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const { rows: [{ lsn: afterLsn }] } = await db.query('SELECT pg_current_wal_lsn()::text AS lsn');
    await waitFor(async () => {
      const info = (await slotInfo(db.url, "pgce_outage"))!;
      if (info.confirmedFlushLsn === null) return false;
      const { rows } = await db.query('SELECT $1::pg_lsn >= $2::pg_lsn AS ok', [formatLsn(info.confirmedFlushLsn), afterLsn]);
      return rows[0].ok === true;
    }, { timeoutMs: 15_000, intervalMs: 100, what: 'the slot to catch up after recovery' });
    cli.kill('SIGTERM');
    expect((await cli.exit()).code).to.equal(0);
    await receiver.close();
    await db.drop();
  });
});

