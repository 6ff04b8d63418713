import { expect } from 'chai';
import type { CloudEvent } from 'cloudevents';
import { formatLsn, parseLsn } from '../../src/sources/change';
import { createTestDatabase, slotInfo, waitFor, type TestDatabase } from './harness/postgres';
import { spawnCli } from './harness/process';
import { startReceiver } from './harness/receiver';
import { freePort, writeTempFile } from './support';

/**
 * Keepalives while a delivery is outstanding (README "How it works": acknowledge only what was
 * delivered; keepalives are answered even while the sink is slow). One event is held
 * at the receiver for three times `wal_sender_timeout`, a single delivery, so parallel sends
 * cannot make it short; meanwhile unpublished writes move the server's position past it, so
 * every keepalive carries a position beyond the undelivered transaction.
 */

const DB = 'pgce_keepalive';
const SLOT = 'pgce_keepalive';
const WAL_SENDER_TIMEOUT_MS = 2_000;
const HOLD_MS = 3 * WAL_SENDER_TIMEOUT_MS;

type Data = { data: { id: number } };

/** The commit LSN an event belongs to: `sequence` is `<commit LSN, 16 hex digits>-<ordinal>` (README "The event"). */
function commitLsnOf(event: CloudEvent<unknown>): bigint {
  return BigInt(`0x${String(event.sequence).split('-')[0]}`);
}

/** The position the source reported as received, from walsender `pid`; throws if another serves the slot now. */
async function reportedWrite(db: TestDatabase, pid: number): Promise<bigint> {
  const { rows } = await db.query(
    `SELECT s.active_pid, r.write_lsn::text AS write FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
      WHERE s.slot_name = $1`, [SLOT]);
  const row = rows[0] as { active_pid: number | null; write: string | null };
  if (row.active_pid !== pid) throw new Error(`the stream was cut: walsender ${pid} is gone (now ${row.active_pid})`);
  return row.write ? parseLsn(row.write) : 0n;
}

describe('keepalives while a delivery is outstanding (real PostgreSQL, real receiver)', function () {
  this.timeout(120_000);

  it('keeps the stream past wal_sender_timeout and never confirms past the undelivered transaction; once delivered, confirms the idle position', async () => {
    const db = await createTestDatabase(DB);
    // Per database, so only this test's walsender gets the short timeout.
    await db.query(`ALTER DATABASE ${DB} SET wal_sender_timeout = '${WAL_SENDER_TIMEOUT_MS}ms'`);
    await db.query('CREATE TABLE t (id int PRIMARY KEY)');
    // Not in the publication: WAL the walsender reads past, sending nothing but keepalives.
    await db.query('CREATE TABLE unpublished (id serial PRIMARY KEY, pad text)');
    const receiver = await startReceiver();
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    receiver.respondWith(() => ({ status: 202, after: gate }));

    // statusInterval stays at its default (10 s, longer than the timeout): only answering the
    // server's keepalives can keep this stream alive. The delivery timeout outlasts the hold.
    const config = writeTempFile('keepalive.yaml', `capture: { slot: ${SLOT}, publication: ${SLOT}, reconnectDelay: PT0.2S, reconnectMax: PT1S }
delivery: { timeout: PT60S }
tables: [ { table: public.t } ]
`);
    const cli = spawnCli(['run'], { DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(await freePort()) });
    try {
      await cli.waitForLine(/capturing/, 30_000);
      const pid = (await slotInfo(db.url, SLOT))!.activePid!;
      expect(pid, 'the walsender serving the source').to.be.a('number');

      await db.query('INSERT INTO t VALUES (1)');
      const [held] = await receiver.waitFor(1, 30_000);
      expect((held.data as Data).data.id).to.equal(1);
      const commitLsn = commitLsnOf(held);

      // Move the server past the held transaction, then wait until the source has received a
      // position beyond it (its reported write position), which only keepalives carry here.
      for (let i = 0; i < 20; i++) await db.query(`INSERT INTO unpublished (pad) VALUES (repeat('x', 1000))`);
      const { rows: [{ lsn }] } = await db.query('SELECT pg_current_wal_lsn()::text AS lsn');
      const beyond = parseLsn(lsn as string);
      await waitFor(async () => (await reportedWrite(db, pid)) >= beyond, {
        timeoutMs: 30_000, intervalMs: 100, what: `the source to receive keepalives past ${lsn}`,
      });

      // Hold the delivery well past wal_sender_timeout, watching the slot all along.
      const heldSince = Date.now();
      let samples = 0;
      while (Date.now() - heldSince < HOLD_MS) {
        const slot = (await slotInfo(db.url, SLOT))!;
        expect(slot.activePid, 'the same walsender serves the stream while the delivery is held').to.equal(pid);
        const confirmed = slot.confirmedFlushLsn ?? 0n;
        expect(confirmed <= commitLsn, `confirmed_flush_lsn ${formatLsn(confirmed)} must not pass the undelivered commit at ${formatLsn(commitLsn)}`)
          .to.equal(true);
        samples += 1;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(samples, 'the slot was watched throughout the hold').to.be.greaterThan(5);
      expect(receiver.accepted, 'nothing answered yet').to.have.length(0);

      open();
      await waitFor(async () => receiver.accepted.length === 1, { timeoutMs: 10_000, intervalMs: 50, what: 'the held event to be answered' });
      // Delivered and idle: the position the keepalives brought is confirmed, not just the commit.
      await waitFor(async () => ((await slotInfo(db.url, SLOT))!.confirmedFlushLsn ?? 0n) >= beyond, {
        timeoutMs: 15_000, intervalMs: 100, what: `confirmed_flush_lsn to reach the keepalive position ${lsn}`,
      });
      expect((await slotInfo(db.url, SLOT))!.activePid, 'still the same walsender').to.equal(pid);
      expect(receiver.events, 'delivered once: the stream never restarted').to.have.length(1);
      expect(cli.stderr() + cli.stdout()).to.not.match(/replication stream (ended|lost)/);

      cli.kill('SIGTERM');
      expect((await cli.exit()).code).to.equal(0);
    } finally {
      open();
      cli.kill('SIGKILL');
      await cli.exit();
      await receiver.close();
      await db.drop();
    }
  });
});
