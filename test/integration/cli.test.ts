import { expect } from 'chai';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createTestDatabase, waitFor } from './harness/postgres';
import { spawnCli } from './harness/process';
import { writeTempFile } from './support';

type Db = Awaited<ReturnType<typeof createTestDatabase>>;

/** A node stack frame: people get messages, not stack traces. */
const STACK_FRAME = /^\s+at .+:\d+:\d+\)?$/m;

async function cli(args: string[], env: Record<string, string>) {
  const p = spawnCli(args, { LOG_LEVEL: 'warn', ...env });
  const { code } = await p.exit();
  return { code, stdout: p.stdout(), stderr: p.stderr(), all: p.stdout() + p.stderr() };
}

describe('commands: setup, teardown, check, status, tail and bad configuration (real PostgreSQL)', function () {
  this.timeout(60_000);
  let db: Db;
  let env: Record<string, string>;

  before(async () => {
    db = await createTestDatabase('pgce_cli');
    await db.query('CREATE TABLE items (id int PRIMARY KEY, name text)');
    await db.query('CREATE TABLE no_key (name text)');
    env = {
      DATABASE_URL: db.url,
      PG_CLOUDEVENTS_TABLES: 'public.items',
      CLOUDEVENTS_HANDLER: 'console',
      PG_CLOUDEVENTS_CONFIG: writeTempFile('c.yaml', 'capture: { slot: pgce_cli, publication: pgce_cli }\n'),
    };
  });
  after(async () => db?.drop());

  describe('bad configuration: non-zero exit and a message naming the key', () => {
    const cases: [string, Record<string, string>, string | null, RegExp][] = [
      ['an unknown value for delivery.backoffPolicy', {}, 'delivery: { backoffPolicy: quadratic }\n', /delivery\.backoffPolicy/],
      ['a misspelt key', {}, 'sink: { urll: "http://x" }\n', /sink.*urll/],
      ['a bad duration', {}, 'delivery: { backoffDelay: "5 seconds" }\n', /delivery\.backoffDelay/],
      ['a bad slot name', {}, 'capture: { slot: "Bad-Name" }\n', /capture\.slot/],
      ['PORT that is not a port', { PORT: 'eighty' }, null, /PORT/],
      ['K_SINK that is not a URL', { K_SINK: 'not a url', CLOUDEVENTS_HANDLER: 'http' }, null, /K_SINK/],
      ['K_CE_OVERRIDES that is not JSON', { K_CE_OVERRIDES: '{extensions:' }, null, /K_CE_OVERRIDES/],
      ['K_CE_OVERRIDES replacing id', { K_CE_OVERRIDES: '{"extensions":{"id":"x"}}' }, null, /K_CE_OVERRIDES.*id/s],
      ['no DATABASE_URL', { DATABASE_URL: '' }, null, /DATABASE_URL/],
      ['no tables', { PG_CLOUDEVENTS_TABLES: '' }, null, /tables/],
      ['LOG_LEVEL that is not a level', { LOG_LEVEL: 'verbose' }, null,
        /LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent \(got "verbose"\)/],
      ['K_SOURCE that is not a URI-reference', { K_SOURCE: 'not a uri' }, null, /K_SOURCE: must be a URI-reference/],
      ['a file source that is not a URI-reference', {}, 'source: "not a uri"\n', /source: must be a URI-reference/],
      ['K_CA_CERTS with garbage between the markers', { K_CA_CERTS: '-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----' }, null,
        /K_CA_CERTS: certificate block 1 of 1 is not a valid X\.509 certificate/],
      // Only this problem: not also a contradicting "DATABASE_URL: not set".
      ['DATABASE_URL that is not a URL, said once', { DATABASE_URL: 'notaurl' }, null,
        /^pg-cloudevents \w+: invalid configuration:\n {2}- DATABASE_URL: must be a postgres:\/\/ or postgresql:\/\/ URL[^\n]*\[PGCE_ERR_CONFIG_INVALID\]\n$/],
    ];
    for (const [what, extraEnv, file, pattern] of cases) {
      it(`rejects ${what}`, async () => {
        const e: Record<string, string> = { ...env, ...extraEnv };
        if (file !== null) e.PG_CLOUDEVENTS_CONFIG = writeTempFile('bad.yaml', file);
        for (const command of ['check', 'run']) {
          const r = await cli([command], e);
          expect(r.code, `${command}: ${r.all}`).to.equal(2);
          expect(r.stderr).to.match(pattern);
          expect(r.stderr, 'a message, not a stack trace').not.to.match(STACK_FRAME);
        }
      });
    }

    it('rejects a configuration file that does not exist, naming the path', async () => {
      const r = await cli(['check'], { ...env, PG_CLOUDEVENTS_CONFIG: '/nonexistent/pgce.yaml' });
      expect(r.code).to.equal(2);
      expect(r.stderr).to.include('/nonexistent/pgce.yaml');
    });

    it('names an unknown table and exits non-zero before capturing', async () => {
      for (const command of ['check', 'run', 'setup']) {
        const r = await cli([command], { ...env, PG_CLOUDEVENTS_TABLES: 'public.items,public.nope' });
        expect(r.code, r.all).to.equal(1);
        expect(r.stderr).to.include('public.nope');
        expect(r.stderr).to.include('PGCE_ERR_UNKNOWN_TABLE');
      }
    });

    it('refuses a table without a replica identity (PostgreSQL would reject its updates)', async () => {
      const r = await cli(['check'], { ...env, PG_CLOUDEVENTS_TABLES: 'public.no_key' });
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/public\.no_key.*replica identity/i);
    });

    it('never prints the database password', async () => {
      const url = new URL(db.url);
      url.username = 'nobody';
      url.password = 'hunter2-secret';
      url.port = '1';
      const r = await cli(['check'], { ...env, DATABASE_URL: url.toString() });
      expect(r.code).to.equal(1);
      expect(r.stderr).to.include('PGCE_ERR_DB_CONNECT');
      expect(r.all).to.not.include('hunter2-secret');
    });
  });

  it('check passes and names what it verified; warnings are text on stderr, not JSON log lines', async () => {
    const r = await cli(['check'], { ...env, K_CE_OVERRIDES: '{"id":"x","extensions":{"team":"data"}}' });
    expect(r.code, r.all).to.equal(0);
    expect(r.stdout).to.include('table public.items');
    expect(r.stderr).to.match(/^warning: .*public\.items.*REPLICA IDENTITY FULL/m);
    expect(r.stderr).to.match(/^warning: K_CE_OVERRIDES: ignored "id": only "extensions" is defined/m);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('{')), 'no JSON log line').to.deep.equal([]);
  });

  it('run keeps JSON log lines; a busy PORT is PGCE_ERR_LISTEN naming the port and PORT (exit 1, no stack)', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '0.0.0.0', resolve));
    try {
      const port = (holder.address() as AddressInfo).port;
      const r = await cli(['run'], { ...env, PORT: String(port), K_CE_OVERRIDES: '{"id":"x"}' });
      expect(r.code, r.all).to.equal(1);
      const warning = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
        .find((record) => String(record.msg).startsWith('K_CE_OVERRIDES: ignored "id"'));
      expect(warning, r.stderr).to.include({ level: 'warn', component: 'run' });
      expect(r.stderr).to.include(
        `pg-cloudevents run: health/metrics server: port ${port} is already in use (0.0.0.0:${port}): ` +
        'stop what listens there, or set PORT to a free port [PGCE_ERR_LISTEN]');
      expect(r.stderr).not.to.match(STACK_FRAME);
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
  });

  it('setup --dry-run prints the SQL and changes nothing; setup is idempotent; teardown removes it', async () => {
    // Before any set-up: the schema's migrations are all pending, which check names as a warning.
    const before = await cli(['check'], env);
    expect(before.code, before.all).to.equal(0);
    expect(before.stdout).to.include('todo schema pgcloudevents (7 migration(s) pending: applied by setup or run)');
    expect(before.stderr).to.include(
      'warning: schema pgcloudevents is behind: migrations 000001_dead_letters, 000002_dead_letters_exact_events, ' +
      '000003_capture_slots, 000004_dead_letters_destination, 000005_trigger_rules, 000006_backfills, 000007_journal pending (pg-cloudevents setup, or run at start, applies them)');
    const dry = await cli(['setup', '--dry-run'], env);
    expect(dry.code, dry.all).to.equal(0);
    expect(dry.stdout).to.match(/^-- migrate schema pgcloudevents: 000001_dead_letters\n-- migrate schema pgcloudevents: 000002_dead_letters_exact_events\n-- migrate schema pgcloudevents: 000003_capture_slots\n-- migrate schema pgcloudevents: 000004_dead_letters_destination\n-- migrate schema pgcloudevents: 000005_trigger_rules\n-- migrate schema pgcloudevents: 000006_backfills\n-- migrate schema pgcloudevents: 000007_journal\n/);
    expect((await db.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'pgcloudevents'`)).rowCount, 'dry run').to.equal(0);
    expect(dry.stdout).to.include('CREATE PUBLICATION "pgce_cli" FOR TABLE "public"."items"');
    expect(dry.stdout).to.include(`pg_create_logical_replication_slot('pgce_cli', 'pgoutput')`);
    const none = await db.query(`SELECT 1 FROM pg_publication WHERE pubname = 'pgce_cli'`);
    expect(none.rowCount).to.equal(0);

    const made = await cli(['setup'], env);
    expect(made.code, made.all).to.equal(0);
    expect(made.stderr, 'setup warns as text').to.match(/^warning: .*public\.items.*REPLICA IDENTITY FULL/m);
    expect(made.stderr).not.to.match(/^\{/m);
    const pub = await db.query(`SELECT tablename FROM pg_publication_tables WHERE pubname = 'pgce_cli'`);
    expect(pub.rows).to.deep.equal([{ tablename: 'items' }]);
    const slot = await db.query(`SELECT plugin FROM pg_replication_slots WHERE slot_name = 'pgce_cli'`);
    expect(slot.rows).to.deep.equal([{ plugin: 'pgoutput' }]);
    expect(made.stdout).to.include('done: migrate schema pgcloudevents: 000005_trigger_rules');
    expect((await db.query('SELECT name FROM pgcloudevents.knex_migrations ORDER BY id')).rows.map((r) => r.name)).to.deep.equal([
      '000001_dead_letters', '000002_dead_letters_exact_events', '000003_capture_slots', '000004_dead_letters_destination',
      '000005_trigger_rules', '000006_backfills', '000007_journal',
    ]);
    const again = await cli(['setup'], env);
    expect(again.code).to.equal(0);
    expect(again.stdout).to.include('nothing to do: schema pgcloudevents is current');
    expect((await cli(['check'], env)).stdout).to.include('ok   schema pgcloudevents (current)');

    const status = await cli(['status', '--json'], env);
    expect(status.code, status.all).to.equal(0);
    const report = JSON.parse(status.stdout);
    expect(report.mode).to.equal('logical');
    expect(report.slot.name).to.equal('pgce_cli');
    expect(report.slot.lastAcknowledgedLsn).to.match(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(report.slot.lagBytes).to.be.a('number');
    expect(report.warnings.join('\n')).not.to.include('is behind');

    // A trigger rule kept in the table is a user's own: teardown keeps the table (and the schema), and says so.
    await db.query(`INSERT INTO pgcloudevents.triggers (name, rule) VALUES ('kept', '{}')`);
    const keeps = await cli(['teardown', '--dry-run'], env);
    expect(keeps.code, keeps.all).to.equal(0);
    expect(keeps.stderr).to.include('trigger rules table pgcloudevents.triggers holds 1 rule(s) and is kept');
    expect(keeps.stdout).not.to.include('DROP TABLE IF EXISTS "pgcloudevents"."triggers"');
    expect(keeps.stdout).not.to.include('DROP SCHEMA');
    await db.query('DELETE FROM pgcloudevents.triggers');

    const down = await cli(['teardown'], env);
    expect(down.code, down.all).to.equal(0);
    expect((await db.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = 'pgce_cli'`)).rowCount).to.equal(0);
    expect((await db.query(`SELECT 1 FROM pg_publication WHERE pubname = 'pgce_cli'`)).rowCount).to.equal(0);
    expect((await db.query('SELECT count(*)::int AS n FROM items')).rows[0].n, 'teardown never touches data').to.equal(0);
    // Everything in the schema was empty: it goes, with knex's record of the migrations.
    expect((await db.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'pgcloudevents'`)).rowCount).to.equal(0);
  });

  it('tail prints the events of new changes and leaves the real slot untouched', async () => {
    expect((await cli(['setup'], env)).code).to.equal(0);
    const before = await db.query(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = 'pgce_cli'`);
    const tail = spawnCli(['tail'], { ...env, LOG_LEVEL: 'warn' });
    await tail.waitForLine(/tailing/, 20_000);
    await db.query(`INSERT INTO items VALUES (5, 'tailed')`);
    const line = await tail.waitForLine(/"subject":"DCE:public\.items\/5"/, 20_000);
    const event = JSON.parse(line);
    expect(event.type).to.equal('orm.post_save');
    expect(event.data.data).to.deep.equal({ id: 5, name: 'tailed' });
    tail.kill('SIGINT');
    expect((await tail.exit()).code).to.equal(0);
    const after = await db.query(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = 'pgce_cli'`);
    expect(after.rows[0].lsn).to.equal(before.rows[0].lsn);
    await waitFor(async () => (await db.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name LIKE 'pgce_tail_%'`)).rowCount === 0,
      { timeoutMs: 10_000, intervalMs: 100, what: 'the temporary tail slot to disappear' });
  });
});
