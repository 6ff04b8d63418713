import { expect } from 'chai';
import { Client } from 'pg';
import { ReplicationStream } from '../../src/sources/logical/stream';
import { STATEMENT_TIMEOUT_MS } from '../../src/pg/db';
import { PgceError } from '../../src/errors';
import { createTestDatabase, slotInfo, waitFor, type TestDatabase } from './harness/postgres';
import { spawnCli, type CliProcess } from './harness/process';
import { startReceiver } from './harness/receiver';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

/** The walsenders serving database `db` right now (one per open replication connection). */
async function walsenders(db: TestDatabase): Promise<number[]> {
  const { rows } = await db.query(`SELECT pid FROM pg_stat_activity WHERE backend_type = 'walsender' AND datname = $1`, [db.name]);
  return rows.map((r: { pid: number }) => r.pid);
}

interface LogLine {
  time: string;
  msg: string;
  err?: string;
  retryInMs?: number;
}

function logLines(cli: CliProcess, msg: string): LogLine[] {
  return cli.stderr().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine).filter((l) => l.msg === msg);
}

describe('capture connections: START_REPLICATION failures, backoff, capture\'s own catalog connection (real PostgreSQL)', function () {
  this.timeout(120_000);

  it('ReplicationStream.start() resolves only once the server accepted START_REPLICATION; a refusal rejects and closes its connection', async () => {
    const NAME = 'pgce_h9_start';
    const db = await createTestDatabase(NAME);
    await db.query('CREATE TABLE t (id int PRIMARY KEY)');
    await db.query(`CREATE PUBLICATION ${NAME} FOR TABLE t`);
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [NAME]);
    const open = (slot: string) => new ReplicationStream({
      connectionString: db.url, slot, publication: NAME, statusIntervalMs: 1000, onData: () => undefined,
    });
    const holder = open(NAME);
    await holder.start();
    expect(await walsenders(db)).to.have.length(1);
    try {
      // The slot is busy: the server refuses, and start() says so instead of resolving.
      let busy: unknown;
      await open(NAME).start().catch((err) => (busy = err));
      expect(busy, 'start() on a busy slot').to.be.instanceOf(PgceError);
      expect((busy as PgceError).message).to.match(/replication slot "pgce_h9_start" is active for PID/);
      expect((busy as PgceError).retriable, 'another process may release the slot').to.equal(true);
      // A missing slot is final.
      let missing: unknown;
      await open('pgce_h9_start_missing').start().catch((err) => (missing = err));
      expect((missing as PgceError).message).to.match(/replication slot "pgce_h9_start_missing" does not exist/);
      expect((missing as PgceError).retriable).to.equal(false);
      // Neither refused attempt left its walsender behind: only the holder's remains.
      await waitFor(async () => (await walsenders(db)).length === 1, { timeoutMs: 5_000, intervalMs: 50, what: 'only the holder\'s walsender' });
      expect(await walsenders(db)).to.deep.equal([(await slotInfo(db.url, NAME))!.activePid]);
    } finally {
      await holder.stop();
    }
    await db.drop();
  });

  it('a second run on a busy slot keeps at most one walsender and backs off between attempts; it takes over once the slot is free', async () => {
    const NAME = 'pgce_h9_busy';
    const db = await createTestDatabase(NAME);
    const receiver = await startReceiver();
    await db.query('CREATE TABLE t (id int PRIMARY KEY)');
    const config = writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: ${NAME}, publication: ${NAME}, statusInterval: PT0.5S, reconnectDelay: PT0.2S, reconnectMax: PT3.2S }
leader: { enabled: false }
tables: [ t ]
`);
    const env = async () => ({ DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(await freePort()) });
    const a = spawnCli(['run'], await env());
    let b: CliProcess | undefined;
    let sampling = true;
    let sampler: Promise<void> = Promise.resolve();
    try {
      await a.waitForLine(/"msg":"capturing"/, 30_000);
      const holder = (await slotInfo(db.url, NAME))!.activePid;
      b = spawnCli(['run'], await env());
      // Walsenders other than A's (the slot's reader) belong to B.
      let most = 0;
      sampler = (async () => {
        while (sampling) {
          const others = (await walsenders(db)).filter((pid) => pid !== holder);
          most = Math.max(most, others.length);
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      const failed = () => logLines(b!, 'replication stream lost; reconnecting');
      await waitFor(async () => failed().length >= 5, { timeoutMs: 60_000, intervalMs: 100, what: 'five refused attempts of the second run' });
      sampling = false;
      await sampler;
      expect(most, 'walsenders of the second run at any moment').to.be.at.most(1);
      const attempts = failed().slice(0, 5);
      expect(attempts[0].err).to.match(/replication slot "pgce_h9_busy" is active for PID/);
      expect(attempts.map((l) => l.retryInMs), 'exponential backoff up to reconnectMax').to.deep.equal([200, 400, 800, 1600, 3200]);
      for (let i = 0; i + 1 < attempts.length; i++) {
        const gap = Date.parse(attempts[i + 1].time) - Date.parse(attempts[i].time);
        expect(gap, `attempt ${i + 2} came after the announced wait`).to.be.at.least(attempts[i].retryInMs!);
      }
      expect(b.stderr(), 'never claims to capture while the server refuses it').to.not.match(/"msg":"capturing"/);

      a.kill('SIGTERM');
      expect((await a.exit()).code).to.equal(0);
      await b.waitForLine(/"msg":"capturing"/, 30_000);
      await db.query('INSERT INTO t VALUES (1)');
      await receiver.waitFor(1, 20_000);
      b.kill('SIGTERM');
      expect((await b.exit()).code).to.equal(0);
    } finally {
      sampling = false;
      await sampler.catch(() => undefined);
      a.kill('SIGKILL');
      b?.kill('SIGKILL');
      await receiver.close();
    }
    await db.drop();
  });

  it('a hung query on the shared pool (dead-letter insert and /status blocked by a lock) does not stop capture: catalog lookups have their own connection', async () => {
    const NAME = 'pgce_h9_pool';
    const db = await createTestDatabase(NAME);
    const receiver = await startReceiver();
    receiver.respondWith((req) => (req.headers['ce-subject'] === 'DCE:public.t/1' ? { status: 400 } : undefined));
    await db.query('CREATE TABLE t (id int PRIMARY KEY)');
    const port = await freePort();
    const config = writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: ${NAME}, publication: ${NAME}, statusInterval: PT0.5S }
deadLetters: { schema: ${NAME}_dl, table: failed }
tables: [ t ]
`);
    const cli = spawnCli(['run'], { DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(port) });
    const locker = new Client({ connectionString: db.url, application_name: 'pgce-test-locker' });
    const status = new AbortController();
    try {
      await cli.waitForLine(/"msg":"capturing"/, 30_000);
      await locker.connect();
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE ${NAME}_dl.failed IN ACCESS EXCLUSIVE MODE`);
      const blocked = async () => {
        const { rows } = await db.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = $1 AND application_name = 'pg-cloudevents' AND wait_event_type = 'Lock'`, [NAME]);
        return rows[0].n as number;
      };
      // Row 1 is refused for good: its dead-letter insert waits for the lock on one pooled connection…
      await db.query('INSERT INTO t VALUES (1)');
      await waitFor(async () => (await blocked()) >= 1, { timeoutMs: 20_000, intervalMs: 50, what: 'the dead-letter insert to wait for the lock' });
      // …and /status counts the dead letters on the other one.
      void fetch(`http://127.0.0.1:${port}/status`, { signal: status.signal }).catch(() => undefined);
      await waitFor(async () => (await blocked()) >= 2, { timeoutMs: 20_000, intervalMs: 50, what: 'the /status query to wait for the lock' });

      // A column of a type capture has never seen needs a catalog lookup before row 2 can be decoded.
      await db.query(`CREATE TYPE mood AS ENUM ('sad', 'happy')`);
      await db.query('ALTER TABLE t ADD COLUMN m mood');
      await db.query(`INSERT INTO t VALUES (2, 'happy')`);
      // Well before the shared pool's statement timeout would free its connections.
      const events = await receiver.waitFor((es) => es.some((e) => e.subject === 'DCE:public.t/2'), STATEMENT_TIMEOUT_MS * 2 / 3);
      const two = events.find((e) => e.subject === 'DCE:public.t/2')!;
      expect((two.data as { data: unknown }).data).to.deep.equal({ id: 2, m: 'happy' });
      expect(await blocked(), 'the shared pool was still stuck meanwhile').to.be.at.least(2);
    } finally {
      status.abort();
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end().catch(() => undefined);
    }
    cli.kill('SIGTERM');
    expect((await cli.exit()).code).to.equal(0);
    await receiver.close();
    await db.drop();
  });
});
