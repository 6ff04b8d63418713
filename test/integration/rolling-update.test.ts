import { expect } from 'chai';
import { Client } from 'pg';
import { leaderLockKey } from '../../src/pg/leader';
import { createTestDatabase, waitFor } from './harness/postgres';
import { startPrivatePostgres, type PrivatePostgres } from './harness/private-postgres';
import { exitWithin, spawnCli, type CliProcess } from './harness/process';
import { startReceiver } from './harness/receiver';
import { acceptedRowIds, expectEveryRowDelivered, FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

// Probe answers are read field by field.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const NAME = 'pgce_h10_rolling';

/** One GET on a replica's health server; the body as JSON when it is JSON. */
async function probe(port: number, path: string): Promise<{ status: number; body: Json; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  const text = await res.text();
  let body: Json = {};
  try {
    body = JSON.parse(text) as Json;
  } catch {
    /* /metrics is text */
  }
  return { status: res.status, body, text };
}

/** Polls until the replica on `port` answers /readyz with `status`; returns that answer's body. */
function readyzBecomes(port: number, status: number, what: string, timeoutMs = 30_000): Promise<Json> {
  return waitFor(async () => {
    const r = await probe(port, '/readyz');
    return r.status === status ? r.body : undefined;
  }, { timeoutMs, intervalMs: 100, what });
}

function roleSeries(metrics: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of metrics.matchAll(/^pgce_role\{role="(\w+)"\} (\d+)$/gm)) out[m[1]] = Number(m[2]);
  return out;
}

/**
 * A Deployment's rolling update with one replica (maxSurge 1, maxUnavailable 0): the new pod must
 * become ready while the old one still holds the leader lock, or the update never completes.
 * Ready means healthy and able to lead, so the standby is ready; the old pod then gets SIGTERM,
 * the new one leads, and nothing written before, during or after is lost.
 */
describe('rolling update: a ready standby, SIGTERM to the leader, takeover (real processes, real receiver)', function () {
  this.timeout(120_000);

  it('B stands by ready (/readyz 200, role standby) while A leads; A gets SIGTERM; B leads; every row arrives', async () => {
    const db = await createTestDatabase(NAME);
    const receiver = await startReceiver();
    await db.query('CREATE TABLE t (id int PRIMARY KEY, v int)');
    const config = writeTempFile('config.yaml', `${FAST_DELIVERY_YAML}  shutdownGracePeriod: PT5S
capture: { slot: ${NAME}, publication: ${NAME}, statusInterval: PT0.5S, reconnectDelay: PT0.2S, reconnectMax: PT1S }
leader: { pollInterval: PT0.5S }
tables: [ { table: public.t } ]
`);
    const [portA, portB] = [await freePort(), await freePort()];
    const env = (port: number) => ({ DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(port), LOG_LEVEL: 'info' });

    const a = spawnCli(['run'], env(portA));
    let b: CliProcess | undefined;
    let writing = true;
    const inserted: number[] = [];
    let writer: Promise<void> = Promise.resolve();
    try {
      await readyzBecomes(portA, 200, 'A to be ready');
      expect((await probe(portA, '/status')).body.role, 'A /status role').to.equal('leader');

      // Single-row transactions, one every 10 ms; an id counts once its INSERT committed.
      writer = (async () => {
        for (let id = 1; writing; id++) {
          await db.query('INSERT INTO t VALUES ($1, $2)', [id, id * 10]);
          inserted.push(id);
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      await receiver.waitFor((events) => events.length >= 20, 20_000);

      // The surge pod: ready while standing by, which is what lets the rollout go on.
      b = spawnCli(['run'], env(portB));
      const ready = await readyzBecomes(portB, 200, 'B (standby) to be ready');
      expect(ready.status).to.equal('ready');
      const statusB = (await probe(portB, '/status')).body;
      expect(statusB.role, 'B /status role').to.equal('standby');
      expect(statusB.ready, 'B /status ready').to.equal(true);
      expect(statusB.database.reachable, 'B /status database.reachable').to.equal(true);
      expect(statusB.capture.connected, 'a standby does not capture').to.equal(false);
      expect(roleSeries((await probe(portB, '/metrics')).text)).to.deep.equal({ starting: 0, standby: 1, leader: 0 });
      expect(roleSeries((await probe(portA, '/metrics')).text)).to.deep.equal({ starting: 0, standby: 0, leader: 1 });
      expect((await probe(portA, '/readyz')).status, 'A still ready').to.equal(200);

      // The old pod is terminated; B must lead within a deadline, with no row lost.
      const beforeSigterm = inserted.length;
      a.kill('SIGTERM');
      await waitFor(async () => (await probe(portB, '/status')).body.role === 'leader', {
        timeoutMs: 20_000, intervalMs: 100, what: 'B to lead after SIGTERM to A',
      });
      expect((await exitWithin(a, 20_000)).code, 'A exit code on SIGTERM').to.equal(0);
      await readyzBecomes(portB, 200, 'B (leader) to be ready: capturing', 20_000);

      const afterTakeover = inserted.length + 20;
      await waitFor(async () => acceptedRowIds(receiver.accepted).has(afterTakeover), {
        timeoutMs: 30_000, intervalMs: 50, what: `B to deliver row ${afterTakeover} (written after the takeover)`,
      });
      writing = false;
      await writer;
      expect(inserted.length, 'rows written after SIGTERM').to.be.above(beforeSigterm);

      await expectEveryRowDelivered(receiver, inserted);
      expect(roleSeries((await probe(portB, '/metrics')).text)).to.deep.equal({ starting: 0, standby: 0, leader: 1 });

      b.kill('SIGTERM');
      expect((await exitWithin(b, 20_000)).code, 'B exit code on SIGTERM').to.equal(0);
    } finally {
      writing = false;
      await writer.catch(() => undefined);
      a.kill('SIGKILL');
      b?.kill('SIGKILL');
      await receiver.close();
    }
    await db.drop();
  });
});

/**
 * Ready means able to lead: a standby whose database does not answer could not take over, so it
 * is not ready. The database is stopped for real, which the shared server must never be: this
 * runs a private cluster, and the lock is held by the test's own session so that `run` stands by.
 */
describe('a standby whose database is unreachable is not ready (private PostgreSQL cluster, stopped)', function () {
  this.timeout(120_000);
  let pg: PrivatePostgres | undefined;
  after(async () => pg?.stop());

  it('/readyz 200 while the database answers, 503 naming it once the cluster is gone; /healthz stays 200', async () => {
    pg = await startPrivatePostgres({ settings: { wal_level: 'logical' } });
    const slot = 'pgce_h10_standby_unreachable';
    await pg.query(`CREATE DATABASE ${slot}`);
    await pg.query('CREATE TABLE t (id int PRIMARY KEY)', [], slot);
    const holder = new Client({ connectionString: pg.url(slot), application_name: 'pgce-test-lock-holder' });
    holder.on('error', () => undefined);
    await holder.connect();
    await holder.query('SELECT pg_advisory_lock($1::bigint)', [leaderLockKey(slot).toString()]);

    const port = await freePort();
    const run = spawnCli(['run'], {
      DATABASE_URL: pg.url(slot),
      CLOUDEVENTS_HANDLER: 'console',
      PG_CLOUDEVENTS_TABLES: 'public.t',
      PG_CLOUDEVENTS_CONFIG: writeTempFile('unreachable.yaml', `capture: { slot: ${slot}, publication: ${slot} }\nleader: { pollInterval: PT0.3S }\n`),
      PORT: String(port),
      LOG_LEVEL: 'info',
    });
    try {
      await readyzBecomes(port, 200, 'the standby to be ready');
      expect((await probe(port, '/status')).body.role).to.equal('standby');

      await pg.stop();
      const notReady = await readyzBecomes(port, 503, 'the standby to be not ready once its database is gone', 20_000);
      expect(notReady.reasons.join('; ')).to.match(/the database is not reachable/);
      const status = (await probe(port, '/status')).body;
      expect(status.role, 'still a standby').to.equal('standby');
      expect(status.database.reachable).to.equal(false);
      expect(status.database.lastError).to.be.a('string');
      expect((await probe(port, '/healthz')).status, 'liveness: the process is alive and retrying').to.equal(200);

      run.kill('SIGTERM');
      expect((await exitWithin(run, 30_000)).code, 'exit code on SIGTERM').to.equal(0);
    } finally {
      run.kill('SIGKILL');
      await holder.end().catch(() => undefined);
    }
  });
});
