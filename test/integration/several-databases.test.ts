import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { defaultCaptureName } from '../../src/config/capture-names';
import { createTestDatabase, waitFor } from './harness/postgres';
import { startPrivatePostgres, type PrivatePostgres } from './harness/private-postgres';
import { spawnCli } from './harness/process';
import { freePort } from './support';

type Db = Awaited<ReturnType<typeof createTestDatabase>>;
/** Per run: several worktrees share the cluster, and slot names are cluster-wide. */
const RUN = randomBytes(3).toString('hex');

async function cli(args: string[], env: Record<string, string>) {
  const p = spawnCli(args, { LOG_LEVEL: 'warn', ...env });
  const { code } = await p.exit();
  return { code, stdout: p.stdout(), stderr: p.stderr(), all: p.stdout() + p.stderr() };
}

/** `run` with the console handler until an event for row `id` is printed; then SIGTERM. */
async function runUntilEvent(env: Record<string, string>, id: number): Promise<string> {
  const p = spawnCli(['run'], { LOG_LEVEL: 'warn', CLOUDEVENTS_HANDLER: 'console', PORT: String(await freePort()), ...env });
  try {
    return await p.waitForLine(new RegExp(`"subject":"DCE:public\\.items/${id}"`), 30_000);
  } finally {
    p.kill('SIGTERM');
    const { code } = await p.exit();
    expect(code, p.stdout() + p.stderr()).to.equal(0);
  }
}

describe('several databases on one cluster: per-database slot and publication (real PostgreSQL)', function () {
  this.timeout(90_000);
  let a: Db;
  let b: Db;
  const env = (db: Db): Record<string, string> => ({ DATABASE_URL: db.url, PG_CLOUDEVENTS_TABLES: 'public.items', CLOUDEVENTS_HANDLER: 'console' });

  before(async () => {
    [a, b] = await Promise.all([createTestDatabase(`pgce_h10s_a_${RUN}`), createTestDatabase(`pgce_h10s_b_${RUN}`)]);
    for (const db of [a, b]) await db.query('CREATE TABLE items (id int PRIMARY KEY, name text)');
  });
  after(async () => {
    await a?.drop();
    await b?.drop();
  });

  it('setup and run in two databases at once, each with its own pg_cloudevents_<database> slot and publication', async () => {
    const setups = await Promise.all([a, b].map((db) => cli(['setup'], env(db))));
    for (const r of setups) expect(r.code, r.all).to.equal(0);
    await Promise.all([a, b].map(async (db, i) => {
      await db.query('INSERT INTO items VALUES ($1, $2)', [i + 1, db.name]);
      const line = await runUntilEvent(env(db), i + 1);
      expect(JSON.parse(line).source).to.equal(`/pg-cloudevents/${db.name}`);
    }));
    for (const db of [a, b]) {
      const name = `pg_cloudevents_${db.name}`;
      const slots = await db.query('SELECT slot_name FROM pg_replication_slots WHERE database = current_database()');
      expect(slots.rows.map((r) => r.slot_name)).to.deep.equal([name]);
      const pubs = await db.query('SELECT pubname FROM pg_publication');
      expect(pubs.rows.map((r) => r.pubname)).to.deep.equal([name]);
    }
  });

  it('status reports only its own database\'s slot; a name taken by another database is PGCE_ERR_SLOT_NAME_TAKEN naming it', async () => {
    const own = await cli(['status', '--json'], env(b));
    expect(own.code, own.all).to.equal(0);
    expect(JSON.parse(own.stdout).slot).to.include({ name: `pg_cloudevents_${b.name}`, active: false });

    const taken = { ...env(b), PG_CLOUDEVENTS_SLOT: `pg_cloudevents_${a.name}` };
    const status = await cli(['status', '--json'], taken);
    expect(status.code, status.all).to.equal(1);
    const report = JSON.parse(status.stdout);
    expect(report.slot).to.deep.equal({ name: `pg_cloudevents_${a.name}`, exists: false });
    expect(report.problems.map((p: { code: string }) => p.code)).to.deep.equal(['PGCE_ERR_SLOT_NAME_TAKEN']);
    expect(report.problems[0].message).to.include(`belongs to database "${a.name}"`).and.include(`PG_CLOUDEVENTS_SLOT=pg_cloudevents_${b.name}`);

    for (const command of ['run', 'setup', 'check']) {
      const r = await cli([command], { ...taken, PORT: String(await freePort()) });
      expect(r.code, `${command}: ${r.all}`).to.equal(1);
      expect(r.stderr).to.include(`replication slot "pg_cloudevents_${a.name}" (PG_CLOUDEVENTS_SLOT) belongs to database "${a.name}"`)
        .and.include('[PGCE_ERR_SLOT_NAME_TAKEN]');
    }
  });

  it('PG_CLOUDEVENTS_SLOT and PG_CLOUDEVENTS_PUBLICATION choose the names; a bad one exits 2 naming the variable', async () => {
    const own = { ...env(a), PG_CLOUDEVENTS_SLOT: `pgce_h10s_own_${RUN}`, PG_CLOUDEVENTS_PUBLICATION: `pgce_h10s_pub_${RUN}` };
    const setup = await cli(['setup'], own);
    expect(setup.code, setup.all).to.equal(0);
    expect(setup.stdout).to.include(`done: create replication slot pgce_h10s_own_${RUN}`).and.include(`done: create publication pgce_h10s_pub_${RUN}`);
    const teardown = await cli(['teardown'], own);
    expect(teardown.code, teardown.all).to.equal(0);

    const bad = await cli(['check'], { ...env(a), PG_CLOUDEVENTS_SLOT: 'Bad-Name' });
    expect(bad.code, bad.all).to.equal(2);
    expect(bad.stderr).to.match(/PG_CLOUDEVENTS_SLOT: must be 1 to 63 characters of a-z, 0-9 and _/);
  });

  it('status, teardown --dry-run and dead-letters list need only DATABASE_URL; run still asks for tables', async () => {
    const only = { DATABASE_URL: b.url };
    const status = await cli(['status', '--json'], only);
    expect(status.code, status.all).to.equal(0);
    expect(JSON.parse(status.stdout)).to.deep.include({ tables: [] });
    const list = await cli(['dead-letters', 'list'], only);
    expect(list.code, list.all).to.equal(0);
    expect(list.stdout).to.include('no dead letters in pgcloudevents.dead_letters');
    const teardown = await cli(['teardown', '--dry-run'], only);
    expect(teardown.code, teardown.all).to.equal(0);
    expect(teardown.stdout).to.include(`SELECT pg_drop_replication_slot('pg_cloudevents_${b.name}')`);
    const run = await cli(['run'], { ...only, CLOUDEVENTS_HANDLER: 'console', PORT: String(await freePort()) });
    expect(run.code, run.all).to.equal(2);
    expect(run.stderr).to.match(/tables: no tables configured/);
  });
});

/**
 * A private cluster: these tests use the slot name `pg_cloudevents` and database `postgres`,
 * which other tests on the shared cluster may use at the same time.
 */
describe('upgrading from the earlier default name pg_cloudevents; a URL without a database (private PostgreSQL)', function () {
  this.timeout(120_000);
  let pg: PrivatePostgres;
  // No database in the URL: PostgreSQL takes the user's name, here postgres.
  let url: string;
  const env = (): Record<string, string> => ({ DATABASE_URL: url, PG_CLOUDEVENTS_TABLES: 'public.items', CLOUDEVENTS_HANDLER: 'console', PGDATABASE: '' });

  before(async () => {
    pg = await startPrivatePostgres({ settings: { wal_level: 'logical' } });
    url = `postgres://postgres@127.0.0.1:${pg.port}`;
    await pg.query('CREATE TABLE items (id int PRIMARY KEY, name text)');
    // What an earlier version's `setup` left: slot and publication named pg_cloudevents.
    await pg.query(`CREATE PUBLICATION pg_cloudevents FOR TABLE items WITH (publish_via_partition_root = true)`);
    await pg.query(`SELECT pg_create_logical_replication_slot('pg_cloudevents', 'pgoutput')`);
  });
  after(async () => pg?.stop());

  it('keeps the earlier slot and publication, delivers what the slot held, and says how to pin or move', async () => {
    // Committed while no run read the earlier slot: it must still be delivered.
    await pg.query(`INSERT INTO items VALUES (1, 'before the upgrade')`);
    const status = await cli(['status', '--json'], env());
    expect(status.code, status.all).to.equal(0);
    const report = JSON.parse(status.stdout);
    expect(report.database).to.equal('postgres');
    expect(report.slot.name).to.equal('pg_cloudevents');
    expect(report.publication).to.include({ name: 'pg_cloudevents', exists: true });
    expect(report.warnings.join('\n')).to.include('replication slot "pg_cloudevents" and publication "pg_cloudevents" of an earlier version are kept')
      .and.include('PG_CLOUDEVENTS_SLOT=pg_cloudevents and PG_CLOUDEVENTS_PUBLICATION=pg_cloudevents');

    const line = await runUntilEvent(env(), 1);
    expect(JSON.parse(line).data.data.name).to.equal('before the upgrade');
    const slots = await pg.query('SELECT slot_name FROM pg_replication_slots ORDER BY 1');
    expect(slots.rows.map((r) => r.slot_name), 'no new slot retains WAL beside the old one').to.deep.equal(['pg_cloudevents']);
  });

  it('another database of the cluster never takes the earlier slot: it gets its own, its name sanitised', async () => {
    await pg.query('CREATE DATABASE "Other-DB"');
    await pg.query('CREATE TABLE items (id int PRIMARY KEY, name text)', [], 'Other-DB');
    const other = { ...env(), DATABASE_URL: pg.url('Other-DB') };
    const setup = await cli(['setup'], other);
    expect(setup.code, setup.all).to.equal(0);
    const name = defaultCaptureName('Other-DB');
    expect(name).to.match(/^pg_cloudevents_other_db_[0-9a-f]{8}$/);
    const slots = await pg.query('SELECT slot_name, database FROM pg_replication_slots ORDER BY 1');
    expect(slots.rows).to.deep.equal([{ slot_name: 'pg_cloudevents', database: 'postgres' }, { slot_name: name, database: 'Other-DB' }]);
    const status = await cli(['status', '--json'], other);
    expect(status.code, status.all).to.equal(0);
    expect(JSON.parse(status.stdout).warnings).to.deep.equal([]);
  });

  it('once the new default exists it is used, with a warning while the earlier slot still retains WAL', async () => {
    const pinned = { ...env(), PG_CLOUDEVENTS_SLOT: 'pg_cloudevents_postgres', PG_CLOUDEVENTS_PUBLICATION: 'pg_cloudevents_postgres' };
    const setup = await cli(['setup'], pinned);
    expect(setup.code, setup.all).to.equal(0);
    const status = await cli(['status', '--json'], env());
    expect(status.code, status.all).to.equal(0);
    const report = JSON.parse(status.stdout);
    expect(report.slot.name).to.equal('pg_cloudevents_postgres');
    expect(report.publication.name).to.equal('pg_cloudevents_postgres');
    expect(report.warnings.join('\n')).to.include('replication slot "pg_cloudevents" (an earlier version\'s default) also exists in database "postgres"')
      .and.include(`SELECT pg_drop_replication_slot('pg_cloudevents')`);
    await pg.query(`SELECT pg_drop_replication_slot('pg_cloudevents')`);
    await waitFor(async () => {
      const r = await cli(['status', '--json'], env());
      return JSON.parse(r.stdout).warnings.length === 0;
    }, { what: 'the warning to go with the earlier slot', timeoutMs: 15_000 });
  });
});
