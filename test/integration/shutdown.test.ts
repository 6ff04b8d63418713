import { expect } from 'chai';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from 'pg';
import { formatLsn } from '../../src/sources/change';
import { createTestDatabase, slotInfo, waitFor, type TestDatabase } from './harness/postgres';
import { spawnCli, type CliProcess, type ExitStatus } from './harness/process';
import { startReceiver } from './harness/receiver';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

/** The walsenders serving database `db` right now. */
async function walsenders(db: TestDatabase): Promise<number[]> {
  const { rows } = await db.query(`SELECT pid FROM pg_stat_activity WHERE backend_type = 'walsender' AND datname = $1`, [db.name]);
  return rows.map((r: { pid: number }) => r.pid);
}

/** The process's exit, or a failure naming its output when it is still alive after `ms`. */
async function exitWithin(cli: CliProcess, ms: number, what: string): Promise<ExitStatus & { ms: number }> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(
      `${what}: the process is still running after ${ms} ms; its output:\n${cli.stderr().split('\n').slice(-12).join('\n')}`)), ms);
  });
  try {
    return { ...(await Promise.race([cli.exit(), late])), ms: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A sink that holds every answer until the test releases it (or never), so that requests are
 * provably in flight when the signal arrives. Records each request's ce-id (binary mode).
 */
async function holdingSink() {
  const ids: string[] = [];
  const held: http.ServerResponse[] = [];
  let holding = true;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      ids.push(String(req.headers['ce-id']));
      if (holding) held.push(res);
      else res.writeHead(202).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    ids,
    held: () => held.length,
    /** Answer the held requests 202, and every later one at once. */
    release() {
      holding = false;
      for (const res of held.splice(0)) if (!res.destroyed) res.writeHead(202).end();
    },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

const countOf = (ids: string[], id: string) => ids.filter((x) => x === id).length;

describe('stopping: fatal errors end the process, SIGTERM is honoured, sends in flight finish (real PostgreSQL, real process)', function () {
  this.timeout(180_000);

  for (const gone of ['publication', 'slot'] as const) {
    it(`exits non-zero, naming it, when the ${gone} is dropped while capturing; no walsender is left`, async () => {
      const NAME = `pgce_h9_fatal_${gone === 'publication' ? 'pub' : 'slot'}`;
      const db = await createTestDatabase(NAME);
      const receiver = await startReceiver();
      await db.query('CREATE TABLE t (id int PRIMARY KEY)');
      const config = writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: ${NAME}, publication: ${NAME}, statusInterval: PT0.5S, reconnectDelay: PT1S, reconnectMax: PT2S }
tables: [ t ]
`);
      const cli = spawnCli(['run'], { DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(await freePort()) });
      try {
        await cli.waitForLine(/"msg":"capturing"/, 30_000);
        await db.query('INSERT INTO t VALUES (1)');
        await receiver.waitFor(1, 20_000);
        if (gone === 'publication') {
          await db.query(`DROP PUBLICATION ${NAME}`);
          // The walsender looks the publication up when it decodes the next change.
          await db.query('INSERT INTO t VALUES (2)');
        } else {
          // End its walsender and drop the slot before it reconnects (should it win, again).
          await waitFor(async () => {
            await db.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, [NAME]);
            await db.query('SELECT pg_drop_replication_slot($1)', [NAME]);
            return true;
          }, { timeoutMs: 15_000, intervalMs: 50, what: 'the slot to be dropped' });
        }
        const { code } = await exitWithin(cli, 20_000, `run after the ${gone} was dropped`);
        expect(code, 'exit code').to.equal(1);
        const last = cli.stderr().trim().split('\n').pop()!;
        if (gone === 'publication') expect(last).to.match(/publication "pgce_h9_fatal_pub" does not exist/);
        else expect(last).to.match(/pgce_h9_fatal_slot/);
        await waitFor(async () => (await walsenders(db)).length === 0, { timeoutMs: 5_000, intervalMs: 50, what: 'no walsender left' });
      } finally {
        cli.kill('SIGKILL');
        await receiver.close();
      }
      await db.drop();
    });
  }

  it('SIGTERM during start-up (slot creation waiting for a running transaction) exits promptly with 0', async () => {
    const NAME = 'pgce_h9_sig_setup';
    const db = await createTestDatabase(NAME);
    await db.query('CREATE TABLE t (id int PRIMARY KEY)');
    // A transaction with an xid: creating a logical slot waits for it to end.
    const blocker = new Client({ connectionString: db.url, application_name: 'pgce-test-blocker' });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('SELECT txid_current()');
    const config = writeTempFile('c.yaml', `capture: { slot: ${NAME}, publication: ${NAME} }\ntables: [ t ]\n`);
    const cli = spawnCli(['run'], { DATABASE_URL: db.url, CLOUDEVENTS_HANDLER: 'console', PG_CLOUDEVENTS_CONFIG: config, PORT: String(await freePort()) });
    try {
      await waitFor(async () => {
        const { rows } = await db.query(
          `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND query LIKE '%pg_create_logical_replication_slot%' AND wait_event_type = 'Lock'`, [NAME]);
        return rows.length > 0;
      }, { timeoutMs: 30_000, intervalMs: 50, what: 'run to wait in slot creation' });
      cli.kill('SIGTERM');
      const { code } = await exitWithin(cli, 15_000, 'run stopped during slot creation');
      expect(code).to.equal(0);
    } finally {
      cli.kill('SIGKILL');
      await blocker.query('ROLLBACK').catch(() => undefined);
      await blocker.end().catch(() => undefined);
    }
    await db.drop();
  });

  /** Ten rows in one transaction, and their event ids as the sink saw them. */
  async function tenInFlight(db: TestDatabase, sink: Awaited<ReturnType<typeof holdingSink>>): Promise<string[]> {
    await db.query('INSERT INTO t SELECT g FROM generate_series(1, 10) g');
    await waitFor(async () => sink.held() === 10, { timeoutMs: 20_000, intervalMs: 20, what: 'ten requests held by the sink' });
    return [...sink.ids];
  }

  async function runWith(db: TestDatabase, url: string, grace: string): Promise<CliProcess> {
    const config = writeTempFile('c.yaml', `delivery: { backoffDelay: PT0.05S, backoffMax: PT0.5S, timeout: PT60S, shutdownGracePeriod: ${grace} }
capture: { slot: ${db.name}, publication: ${db.name}, statusInterval: PT0.5S }
tables: [ t ]
`);
    const cli = spawnCli(['run'], { DATABASE_URL: db.url, K_SINK: url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(await freePort()) });
    await cli.waitForLine(/"msg":"capturing"/, 30_000);
    return cli;
  }

  it('SIGTERM lets the sends in flight finish and acknowledges them: none is delivered again after a restart', async () => {
    const db = await createTestDatabase('pgce_h9_grace_ok');
    await db.query('CREATE TABLE t (id int PRIMARY KEY)');
    const sink = await holdingSink();
    let cli = await runWith(db, sink.url, 'PT20S');
    try {
      const inFlight = await tenInFlight(db, sink);
      cli.kill('SIGTERM');
      await cli.waitForLine(/"msg":"stopping: finishing the delivery in flight/, 10_000);
      // The answers come only now, after the signal.
      sink.release();
      const { code } = await exitWithin(cli, 20_000, 'run after its sends were answered');
      expect(code).to.equal(0);
      expect(cli.stderr()).to.not.match(/MaxListenersExceededWarning/);

      cli = await runWith(db, sink.url, 'PT20S');
      await db.query('INSERT INTO t VALUES (11)');
      const { rows: [{ lsn }] } = await db.query('SELECT pg_current_wal_lsn()::text AS lsn');
      // Once the slot passes row 11, whatever the restart re-read before it has been delivered.
      await waitFor(async () => {
        const info = await slotInfo(db.url, db.name);
        if (!info?.confirmedFlushLsn) return false;
        const r = await db.query('SELECT $1::pg_lsn >= $2::pg_lsn AS past', [formatLsn(info.confirmedFlushLsn), lsn]);
        return r.rows[0].past === true;
      }, { timeoutMs: 30_000, intervalMs: 100, what: 'the slot to pass row 11' });
      expect(inFlight.map((id) => countOf(sink.ids, id)), 'deliveries per event id of the ten in flight at SIGTERM').to.deep.equal(Array(10).fill(1));
    } finally {
      cli.kill('SIGKILL');
      await sink.close();
    }
    await db.drop();
  });

  it('SIGTERM with sends that never get an answer: exits 0 after the grace period, and they are delivered after a restart', async () => {
    const db = await createTestDatabase('pgce_h9_grace_hung');
    await db.query('CREATE TABLE t (id int PRIMARY KEY)');
    const sink = await holdingSink();
    let cli = await runWith(db, sink.url, 'PT2S');
    try {
      const inFlight = await tenInFlight(db, sink);
      cli.kill('SIGTERM');
      // 2 s of grace plus a margin for closing, far below the 60 s the sends could still take.
      const { code } = await exitWithin(cli, 2_000 + 10_000, 'run with sends that never get an answer');
      expect(code).to.equal(0);
      expect(cli.stderr()).to.match(/shutdown grace period over/);

      sink.release();
      cli = await runWith(db, sink.url, 'PT20S');
      await waitFor(async () => inFlight.every((id) => countOf(sink.ids, id) >= 2), {
        timeoutMs: 30_000, intervalMs: 100, what: 'the ten unacknowledged events to be sent again',
      });
      cli.kill('SIGTERM');
      expect((await exitWithin(cli, 20_000, 'run after the restart')).code).to.equal(0);
    } finally {
      cli.kill('SIGKILL');
      await sink.close();
    }
    await db.drop();
  });

  it('a second SIGTERM while the grace period runs exits at once (143)', async () => {
    const db = await createTestDatabase('pgce_h9_sig_twice');
    await db.query('CREATE TABLE t (id int PRIMARY KEY)');
    const sink = await holdingSink();
    const cli = await runWith(db, sink.url, 'PT60S');
    try {
      await tenInFlight(db, sink);
      cli.kill('SIGTERM');
      await cli.waitForLine(/"msg":"stopping: finishing the delivery in flight/, 10_000);
      cli.kill('SIGTERM');
      const { code } = await exitWithin(cli, 10_000, 'run after a second SIGTERM');
      expect(code).to.equal(143);
      expect(cli.stderr()).to.match(/second signal: exiting now/);
    } finally {
      cli.kill('SIGKILL');
      await sink.close();
    }
    await db.drop();
  });
});
