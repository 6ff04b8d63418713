import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { Client } from 'pg';
import { adminUrl, createTestDatabase, waitFor, type TestDatabase } from './harness/postgres';
import { REPO_ROOT, spawnCli } from './harness/process';
import { freePort, writeTempFile } from './support';

const run = promisify(execFile);

/**
 * docs/least-privilege.sql, for real: the role it creates (not a superuser) can run `setup`,
 * `check`, `run` (events delivered, heartbeats written) and `teardown`. Role and database names
 * are unique per run; both are dropped afterwards.
 */
describe('least privilege (real PostgreSQL): docs/least-privilege.sql gives a non-superuser role all that setup and run need', function () {
  this.timeout(90_000);

  const suffix = randomBytes(3).toString('hex');
  const role = `pgce_lp_role_${suffix}`;
  const name = `pgce_lp_${suffix}`;
  const password = `pw-${randomBytes(8).toString('hex')}`;
  let db: TestDatabase;
  let roleUrl: string;

  const asRole = async <T>(fn: (c: Client) => Promise<T>): Promise<T> => {
    const c = new Client({ connectionString: roleUrl });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };

  before(async () => {
    db = await createTestDatabase(name);
    await db.query('CREATE TABLE public.orders (id int PRIMARY KEY, total numeric)');
    await db.query('CREATE TABLE public.secrets (id int PRIMARY KEY)');
    await run('psql', [
      db.url, '-X', '-q', '-v', `role=${role}`, '-v', `password=${password}`,
      '-v', 'tables=public.orders', '-v', `publication=${name}`,
      '-f', path.join(REPO_ROOT, 'docs', 'least-privilege.sql'),
    ]);
    const url = new URL(db.url);
    url.username = role;
    url.password = password;
    roleUrl = url.toString();
  });

  after(async () => {
    await db?.drop();
    const admin = new Client({ connectionString: adminUrl() });
    await admin.connect();
    try {
      await admin.query(`DROP ROLE IF EXISTS "${role}"`);
    } finally {
      await admin.end();
    }
  });

  it('the role is not a superuser, and reads only the tables granted to it', async () => {
    await asRole(async (c) => {
      const { rows } = await c.query('SELECT rolsuper, rolreplication, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user');
      expect(rows).to.deep.equal([{ rolsuper: false, rolreplication: true, rolcreatedb: false, rolcreaterole: false }]);
      const refused = await c.query('SELECT * FROM public.secrets').catch((err: Error) => err);
      expect(String(refused)).to.match(/permission denied for table secrets/);
    });
  });

  it('setup, check, run (an event delivered, heartbeats written) and teardown work as that role', async () => {
    const env = {
      DATABASE_URL: roleUrl,
      CLOUDEVENTS_HANDLER: 'console',
      LOG_LEVEL: 'info',
      PG_CLOUDEVENTS_TABLES: 'public.orders',
      PG_CLOUDEVENTS_CONFIG: writeTempFile('lp.yaml',
        `capture: { slot: ${name}, publication: ${name}, statusInterval: PT0.2S, heartbeatInterval: PT0.2S }\n`),
    };
    const setup = spawnCli(['setup'], env);
    expect((await setup.exit()).code, setup.stdout() + setup.stderr()).to.equal(0);
    // The administrator's publication was complete: setup created the slot and its own schema only.
    expect(setup.stdout()).to.not.match(/publication/);
    expect(setup.stdout()).to.match(new RegExp(`done: create replication slot ${name}`));
    const owner = await db.query(`SELECT nspowner::regrole::text AS owner FROM pg_namespace WHERE nspname = 'pgcloudevents'`);
    expect(owner.rows).to.deep.equal([{ owner: role }]);

    const check = spawnCli(['check'], env);
    expect((await check.exit()).code, check.stdout() + check.stderr()).to.equal(0);

    const port = await freePort();
    const cli = spawnCli(['run'], { ...env, PORT: String(port) });
    await cli.waitForLine(/capturing/, 30_000);
    await db.query('INSERT INTO public.orders VALUES (7, 19.99)');
    const line = await cli.waitForLine(/"subject":"DCE:public\.orders\/7"/, 20_000);
    expect(JSON.parse(line).data.data).to.deep.equal({ id: 7, total: '19.99' });
    // Heartbeats (pg_logical_emit_message) work as this role: the counter moves.
    await waitFor(async () => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return Number(/^pgce_heartbeats_total (\d+)/m.exec(text)?.[1] ?? 0) >= 1 || undefined;
    }, { timeoutMs: 20_000, intervalMs: 100, what: 'a heartbeat written by the least-privilege role' });
    cli.kill('SIGTERM');
    expect((await cli.exit()).code).to.equal(0);
    expect(cli.stderr()).to.not.match(/permission denied|heartbeat failed/i);

    const teardown = spawnCli(['teardown'], env);
    expect((await teardown.exit()).code, teardown.stdout() + teardown.stderr()).to.equal(0);
    expect((await db.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [name])).rowCount).to.equal(0);
    expect((await db.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [name])).rowCount).to.equal(0);
  });
});
