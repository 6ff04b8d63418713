import Redis from 'ioredis';
import { expect } from 'chai';
import type { CloudEvent } from 'cloudevents';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../src/config/load';
import { ConfigError, ErrorCodes, PgceError } from '../../src/errors';
import { logger } from '../../src/logger';
import { knexOn } from '../../src/pg/schema/knex';
import { migrateSchema } from '../../src/pg/schema/migrate';
import { LISTENER_APPLICATION_NAME, RuleStore, RuleWriteError } from '../../src/trigger-rules';
import { Pool } from 'pg';
import { acknowledgedEverything, createTestDatabase, type TestDatabase, waitFor } from './harness/postgres';
import { spawnCli, type CliProcess } from './harness/process';
import { startWebhookReceiver } from './harness/webhook-receiver';
import { startReceiver, type Receiver } from './harness/receiver';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

/** Unique per run (tag hd): several worktrees share the server, and slot names are cluster-wide. */
const suffix = () => `hd_${randomBytes(3).toString('hex')}`;
const TOKEN = 'test-admin-token-0123456789abcdef';

const ofType = (receiver: Receiver, type: string) => receiver.accepted.filter((e) => e.type === type);
const rowOf = (e: CloudEvent<unknown>) => (e.data as { id?: number; data?: { id: number } }).id ?? (e.data as { data: { id: number } }).data.id;

interface TableStatus {
  listening: boolean;
  tableExists: boolean | null;
  version: number | null;
  appliesFrom: string | null;
  rules: string[];
  invalid: { name: string; problems: string[] }[];
}

async function tableStatus(port: number): Promise<TableStatus> {
  const res = await fetch(`http://127.0.0.1:${port}/status`);
  return ((await res.json()) as { triggers: { table: TableStatus } }).triggers.table;
}

/** Waits until this process's newest table rule set is newer than `after` and passes `check`. */
async function ruleSet(port: number, after: number, check: (s: TableStatus) => boolean = () => true): Promise<TableStatus> {
  return waitFor(async () => {
    const s = await tableStatus(port);
    return (s.version ?? 0) > after && check(s) ? s : undefined;
  }, { timeoutMs: 20_000, intervalMs: 50, what: `a rule set newer than version ${after}` });
}

/** A cloudevent rule over sales inserts, as a row holds it. */
const rule = (name: string, type: string, extra: Record<string, unknown> = {}) => ({
  name, tables: ['public.sales'], on: ['insert'], payload: { id: '{{ id }}' }, actions: [{ cloudevent: { type } }], ...extra,
});

async function insertRule(db: TestDatabase, schema: string, value: Record<string, unknown>, name = value.name as string): Promise<void> {
  await db.query(`INSERT INTO ${schema}.triggers (name, rule) VALUES ($1, $2::jsonb)`, [name, JSON.stringify(value)]);
}

interface Running {
  name: string;
  db: TestDatabase;
  receiver: Receiver;
  cli: CliProcess;
  port: number;
  schema: string;
  /** The environment `run` got (for other commands on the same database). */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/** A database with table sales, a receiver, and `run` with `yaml` added to the configuration (in capture mode `mode`). */
async function startRun(yaml: string, env: Record<string, string> = {}, deliveryYaml = '', mode: 'logical' | 'trigger' = 'logical'): Promise<Running> {
  const name = `pgce_${suffix()}`;
  const db = await createTestDatabase(name);
  const receiver = await startReceiver();
  await db.query('CREATE TABLE sales (id int PRIMARY KEY, qty int NOT NULL DEFAULT 1, note text)');
  const schema = `${name}_s`;
  const config = writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}${deliveryYaml}
capture: { slot: ${name}, publication: ${name}, statusInterval: PT0.2S, mode: ${mode} }
deadLetters: { schema: ${schema}, table: failed }
tables: [ sales ]
${yaml}`);
  const port = await freePort();
  const runEnv = { DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(port), ...env };
  const cli = spawnCli(['run'], runEnv);
  await cli.waitForLine(/capturing/, 30_000);
  return {
    name, db, receiver, cli, port, schema, env: runEnv,
    stop: async () => {
      cli.kill('SIGTERM');
      const { code } = await cli.exit();
      await receiver.close();
      await db.drop();
      expect(code, cli.stderr().slice(-2000)).to.equal(0);
    },
  };
}

const listeners = async (db: TestDatabase) => (await db.query(
  'SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2', [db.name, LISTENER_APPLICATION_NAME],
)).rows.map((r) => r.pid as number);

describe('trigger rules table: rules at runtime (real PostgreSQL, real receiver)', function () {
  this.timeout(180_000);

  it('the store: create, get, list, replace (updated_at), delete; conflicts, a name mismatch and a missing table are typed errors', async () => {
    const name = `pgce_${suffix()}`;
    const db = await createTestDatabase(name);
    const pool = new Pool({ connectionString: db.url, max: 2 });
    try {
      const missing = new RuleStore(knexOn(pool), { schema: `${name}_s`, triggerRules: 'triggers' });
      const gone = await missing.list().catch((err) => err);
      expect(gone).to.be.instanceOf(PgceError);
      expect((gone as PgceError).code).to.equal(ErrorCodes.UNKNOWN_TABLE);
      expect((gone as Error).message).to.include('pg-cloudevents setup');

      await migrateSchema({ databaseUrl: db.url, deadLetters: { schema: `${name}_s`, table: 'dead' } }, logger('test'));
      const store = new RuleStore(knexOn(pool), { schema: `${name}_s`, triggerRules: 'triggers' });
      const created = await store.create('a', rule('a', 't.a'));
      expect(created.name).to.equal('a');
      expect(created.rule).to.deep.equal(rule('a', 't.a'));
      const again = await store.create('a', rule('a', 't.a')).catch((err) => err);
      expect(again).to.be.instanceOf(RuleWriteError);
      expect((again as RuleWriteError).reason).to.equal('exists');
      const mismatch = await store.create('b', rule('c', 't.c')).catch((err) => err);
      expect((mismatch as RuleWriteError).reason).to.equal('name');
      expect((mismatch as Error).message).to.equal('name: the row\'s name "b" must equal the rule\'s name (got "c")');
      expect(await store.get('b')).to.equal(undefined);

      const replaced = await store.replace('a', rule('a', 't.a2'));
      expect(replaced.created).to.equal(false);
      expect(replaced.updatedAt.getTime()).to.be.at.least(created.updatedAt.getTime());
      expect((await store.get('a'))!.rule).to.deep.equal(rule('a', 't.a2'));
      expect((await store.replace('b', rule('b', 't.b'))).created).to.equal(true);
      expect((await store.list()).map((r) => r.name)).to.deep.equal(['a', 'b']);
      const snapshot = await store.snapshot();
      expect(snapshot.rows.map((r) => r.name)).to.deep.equal(['a', 'b']);
      expect(snapshot.position > 0n).to.equal(true);

      await store.delete('a');
      const none = await store.delete('a').catch((err) => err);
      expect((none as RuleWriteError).reason).to.equal('missing');
      expect((await store.list()).map((r) => r.name)).to.deep.equal(['b']);
    } finally {
      await pool.end();
      await db.drop();
    }
  });

  it('a row inserted, updated and deleted takes effect without a restart (NOTIFY); an invalid row is reported and ignored', async () => {
    // The periodic re-read is an hour away: only the notifications can apply the changes.
    const run = await startRun('triggersTable: { reloadInterval: PT1H }\n');
    const { db, receiver, port, schema } = run;
    try {
      const start = await tableStatus(port);
      expect(start).to.include({ listening: true, tableExists: true });
      expect(start.rules).to.deep.equal([]);

      await insertRule(db, schema, rule('added', 'com.example.added'));
      let s = await ruleSet(port, start.version!, (x) => x.rules.includes('added'));
      await db.query('INSERT INTO sales (id) VALUES (1)');
      await receiver.waitFor((events) => events.some((e) => e.type === 'com.example.added'));
      expect(ofType(receiver, 'com.example.added').map((e) => e.data)).to.deep.equal([{ id: 1 }]);
      expect(ofType(receiver, 'com.example.added')[0].id).to.match(/\/trigger\/added\/0$/);

      // Updated: the new type from the next change on.
      await db.query(`UPDATE ${schema}.triggers SET rule = $1::jsonb, updated_at = now() WHERE name = 'added'`, [JSON.stringify(rule('added', 'com.example.changed'))]);
      s = await ruleSet(port, s.version!);
      await db.query('INSERT INTO sales (id) VALUES (2)');
      await receiver.waitFor((events) => events.some((e) => e.type === 'com.example.changed'));
      expect(ofType(receiver, 'com.example.changed').map(rowOf)).to.deep.equal([2]);

      // An invalid row beside a valid one: reported (status, metric, log), ignored; the other applies.
      await insertRule(db, schema, rule('broken', 'x', { when: 'data.qty >', tables: ['public.nowhere'] }));
      await insertRule(db, schema, rule('other', 'com.example.other'));
      s = await ruleSet(port, s.version!, (x) => x.rules.includes('other') && x.invalid.length === 1);
      expect(s.invalid[0].name).to.equal('broken');
      expect(s.invalid[0].problems.some((p) => p.startsWith('triggers[name=broken].tables[0]: public.nowhere is not captured'))).to.equal(true);
      expect(s.invalid[0].problems.some((p) => p.startsWith('triggers[name=broken].when: '))).to.equal(true);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).to.include('pgce_trigger_rules{origin="table",state="invalid"} 1');
      expect(metrics).to.include('pgce_trigger_rules{origin="table",state="active"} 2');
      await run.cli.waitForLine(/trigger rule \\"broken\\" in .* is invalid and ignored/);

      // Deleted: the rule stops; the change still has its default event.
      await db.query(`DELETE FROM ${schema}.triggers WHERE name = 'added'`);
      s = await ruleSet(port, s.version!, (x) => !x.rules.includes('added'));
      await db.query('INSERT INTO sales (id) VALUES (3)');
      await receiver.waitFor((events) => events.some((e) => e.type === 'com.example.other' && rowOf(e) === 3));
      await acknowledgedEverything(db, run.name);
      expect(ofType(receiver, 'com.example.changed').map(rowOf)).to.deep.equal([2]);
      expect(receiver.accepted.filter((e) => e.type === 'orm.post_save').map(rowOf)).to.have.members([1, 2, 3]);
      expect(receiver.errors).to.deep.equal([]);

      // A table rule's render error is dead-lettered; fixed in the table, replay renders it again.
      await insertRule(db, schema, rule('bad-render', 'com.example.rendered', { payload: { x: '{{ nope }}' } }));
      s = await ruleSet(port, s.version!, (x) => x.rules.includes('bad-render'));
      await db.query('INSERT INTO sales (id, qty) VALUES (4, 44)');
      await acknowledgedEverything(db, run.name);
      const { rows: dead } = await db.query(`SELECT error FROM ${schema}.failed WHERE destination = 'trigger:bad-render/0'`);
      expect(dead).to.have.length(1);
      expect(dead[0].error).to.include('triggers[name=bad-render].payload.x: {{ nope }}: the row has no column nope');
      await db.query(`UPDATE ${schema}.triggers SET rule = $1::jsonb WHERE name = 'bad-render'`, [JSON.stringify(rule('bad-render', 'com.example.rendered', { payload: { x: '{{ qty }}' } }))]);
      const replay = spawnCli(['dead-letters', 'replay', '--all'], { ...run.env, LOG_LEVEL: 'warn' });
      expect((await replay.exit()).code, replay.stderr()).to.equal(0);
      expect(ofType(receiver, 'com.example.rendered').map((e) => e.data)).to.deep.equal([{ x: 44 }]);
    } finally {
      await run.stop();
    }
  });

  it('a lost notification: the periodic re-read applies the rule; a terminated listener reconnects without leaking a connection', async () => {
    const run = await startRun('triggersTable: { reloadInterval: PT1S }\n');
    const { db, receiver, port, schema } = run;
    try {
      // No ADMIN_TOKEN: there is no admin API.
      const api = await fetch(`http://127.0.0.1:${port}/api/triggers`, { headers: { Authorization: `Bearer ${TOKEN}` } });
      expect(api.status).to.equal(404);

      const start = await tableStatus(port);
      // session_replication_role = replica skips the table's trigger: no NOTIFY for this write.
      await db.query('BEGIN');
      await db.query('SET LOCAL session_replication_role = replica');
      await insertRule(db, schema, rule('polled', 'com.example.polled'));
      await db.query('COMMIT');
      let s = await ruleSet(port, start.version!, (x) => x.rules.includes('polled'));
      await db.query('INSERT INTO sales (id) VALUES (1)');
      await receiver.waitFor((events) => events.some((e) => e.type === 'com.example.polled'));

      const [before] = await listeners(db);
      expect(before, 'one listener session').to.be.a('number');
      await db.query('SELECT pg_terminate_backend($1)', [before]);
      const after = await waitFor(async () => {
        const pids = await listeners(db);
        return pids.length === 1 && pids[0] !== before ? pids : undefined;
      }, { timeoutMs: 20_000, intervalMs: 100, what: 'the listener to reconnect' });
      await waitFor(async () => (await tableStatus(port)).listening, { timeoutMs: 10_000, what: 'listening again' });
      await insertRule(db, schema, rule('later', 'com.example.later'));
      s = await ruleSet(port, s.version!, (x) => x.rules.includes('later'));
      await db.query('INSERT INTO sales (id) VALUES (2)');
      await receiver.waitFor((events) => events.some((e) => e.type === 'com.example.later'));
      expect((await listeners(db)), 'no leaked listener').to.deep.equal(after);
      expect(run.cli.stderr()).to.include('trigger rules listener: connection lost; reconnecting');
    } finally {
      await run.stop();
    }
  });

  // In trigger mode a change's position is its journal row's id, and so is the activation point.
  for (const mode of ['logical', 'trigger'] as const) {
    it(`the activation point (${mode} mode): a change committed before the rule was read is not sent to it even when routed after; one committed after is`, async () => {
      // Reading pauses once 64 KiB of events wait: one big row, held by the receiver, pauses the stream.
      const run = await startRun('triggersTable: { reloadInterval: PT1H }\n', {}, '  maxBufferBytes: 65536\n', mode);
      const { db, receiver, port, schema } = run;
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      receiver.respondWith((_req, n) => (n === 1 ? { status: 202, after: gate } : undefined));
      try {
        const start = await tableStatus(port);
        await db.query(`INSERT INTO sales (id, note) VALUES (1, repeat('x', 100000))`);
        await waitFor(async () => receiver.requests.length >= 1 || receiver.events.length >= 1, { timeoutMs: 20_000, what: 'the big row to reach the receiver' });
        // Committed now; the stream is paused, so it is routed only after the gate opens.
        await db.query('INSERT INTO sales (id) VALUES (2)');
        const committedBefore = mode === 'logical'
          ? (await db.query('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0].lsn as string
          : (await db.query(`SELECT id::text FROM ${schema}.journal WHERE new_row->>'id' = '2'`)).rows[0].id as string;
        await insertRule(db, schema, rule('fresh', 'com.example.fresh'));
        const s = await ruleSet(port, start.version!, (x) => x.rules.includes('fresh'));
        const later = mode === 'logical'
          ? (await db.query('SELECT $1::pg_lsn > $2::pg_lsn AS later', [s.appliesFrom, committedBefore])).rows[0].later
          : BigInt(s.appliesFrom!) > BigInt(committedBefore);
        expect(later, `appliesFrom ${s.appliesFrom} after ${committedBefore}`).to.equal(true);
        await db.query('INSERT INTO sales (id) VALUES (3)');
        open();
        if (mode === 'logical') await acknowledgedEverything(db, run.name);
        else await waitFor(async () => (await db.query(`SELECT count(*)::int AS n FROM ${schema}.journal`)).rows[0].n === 0 || undefined, { timeoutMs: 30_000, what: 'the journal drained' });
        expect(receiver.accepted.filter((e) => e.type === 'orm.post_save').map(rowOf)).to.have.members([1, 2, 3]);
        expect(ofType(receiver, 'com.example.fresh').map(rowOf), 'only the change committed after the read').to.deep.equal([3]);
      } finally {
        open();
        await run.stop();
      }
    });
  }

  it('the admin API: off without ADMIN_TOKEN, 401 without or with a wrong token, CRUD through the table, schema errors by key path, file rules read-only', async () => {
    const run = await startRun(`triggersTable: { reloadInterval: PT1H }
triggers:
  - name: from-file
    tables: [sales]
    on: [delete]
    actions: [{ cloudevent: {} }]
`, { ADMIN_TOKEN: TOKEN });
    const { db, receiver, port } = run;
    const api = (path: string, init: RequestInit = {}, token: string | null = TOKEN) => fetch(`http://127.0.0.1:${port}/api${path}`, {
      ...init,
      headers: { 'content-type': 'application/json', ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...(init.headers ?? {}) },
    });
    const send = (method: string, path: string, body: unknown) => api(path, { method, body: JSON.stringify(body) });
    try {
      const anonymous = await api('/triggers', {}, null);
      expect(anonymous.status).to.equal(401);
      expect(anonymous.headers.get('www-authenticate')).to.match(/^Bearer /);
      const wrong = await api('/triggers', {}, `${TOKEN}x`);
      expect(wrong.status).to.equal(401);
      expect(wrong.headers.get('www-authenticate')).to.include('invalid_token');
      const unauthorized = await api('/triggers', { method: 'POST', body: JSON.stringify(rule('nope', 'x')) }, null);
      expect(unauthorized.status).to.equal(401);
      expect((await api('/triggers/nope')).status, 'no write without the token').to.equal(404);

      // Created: takes effect without a restart.
      const start = await tableStatus(port);
      const created = await send('POST', '/triggers', rule('via-api', 'com.example.api'));
      expect(created.status).to.equal(201);
      expect(await created.json()).to.deep.include({ name: 'via-api', origin: 'table', valid: true, active: true });
      expect((await send('POST', '/triggers', rule('via-api', 'com.example.api'))).status, 'exists').to.equal(409);
      let s = await ruleSet(port, start.version!, (x) => x.rules.includes('via-api'));
      await db.query('INSERT INTO sales (id) VALUES (1)');
      await receiver.waitFor((events) => events.some((e) => e.type === 'com.example.api'));

      // Replaced (PUT, the name from the path).
      const { name: _omitted, ...body } = rule('via-api', 'com.example.api2');
      const replaced = await send('PUT', '/triggers/via-api', body);
      expect(replaced.status).to.equal(200);
      s = await ruleSet(port, s.version!);
      await db.query('INSERT INTO sales (id) VALUES (2)');
      await receiver.waitFor((events) => events.some((e) => e.type === 'com.example.api2'));

      // Schema errors: the file's messages, by key path.
      const bad = { name: 'bad', tables: ['sales'], on: ['saved'], when: 'data.qty >', actions: [{ cloudevent: { type: '' } }], extra: 1 };
      const refused = await send('POST', '/triggers', bad);
      expect(refused.status).to.equal(400);
      const { errors } = (await refused.json()) as { errors: string[] };
      const fileProblems = await fileConfigProblems(bad);
      expect(errors).to.deep.equal(fileProblems.map((p) => p.replace(/^triggers\[0\]/, 'triggers[name=bad]')));
      expect(errors.some((e) => e.startsWith('triggers[name=bad].on[0]: must be one of'))).to.equal(true);
      const mismatch = await send('PUT', '/triggers/one', rule('two', 'x'));
      expect(mismatch.status).to.equal(400);
      expect(((await mismatch.json()) as { errors: string[] }).errors).to.deep.equal(['triggers[name=one].name: must equal the row\'s name "one" (got "two")']);
      const notJson = await api('/triggers', { method: 'POST', body: '{"name": ' });
      expect(notJson.status).to.equal(400);
      // Rules from the API are untrusted: an action that needs the allow-lists is refused.
      const webhook = await send('POST', '/triggers', { ...rule('hook', 'x'), actions: [{ webhook: { url: 'http://127.0.0.1:1/' } }] });
      expect(webhook.status).to.equal(400);
      expect(((await webhook.json()) as { errors: string[] }).errors[0]).to.match(/^triggers\[name=hook\]\.actions\[0\]/);

      // File rules: listed, read-only.
      const list = (await (await api('/triggers')).json()) as { triggers: { name: string; origin: string }[] };
      expect(list.triggers.map((t) => [t.name, t.origin])).to.deep.equal([['from-file', 'file'], ['via-api', 'table']]);
      expect((await api('/triggers/from-file')).status).to.equal(200);
      for (const [method, path] of [['DELETE', '/triggers/from-file'], ['PUT', '/triggers/from-file']]) {
        const res = await send(method, path, rule('from-file', 'x'));
        expect(res.status, `${method} ${path}`).to.equal(409);
        expect(((await res.json()) as { error: string }).error).to.include('configuration file');
      }
      expect((await send('POST', '/triggers', rule('from-file', 'x'))).status).to.equal(409);

      // Deleted: stops; a second delete is 404.
      expect((await api('/triggers/via-api', { method: 'DELETE' })).status).to.equal(204);
      expect((await api('/triggers/via-api', { method: 'DELETE' })).status).to.equal(404);
      expect((await api('/triggers/via-api')).status).to.equal(404);
      await ruleSet(port, s.version!, (x) => !x.rules.includes('via-api'));
      await db.query('INSERT INTO sales (id) VALUES (3)');
      await acknowledgedEverything(db, run.name);
      expect(receiver.accepted.filter((e) => e.type.startsWith('com.example.api')).map(rowOf)).to.deep.equal([1, 2]);
      expect(run.cli.stdout() + run.cli.stderr(), 'the token is never logged').not.to.include(TOKEN);
    } finally {
      await run.stop();
    }
  });
});

/** The problems the configuration file reports for `rule` as its only trigger. */
async function fileConfigProblems(rule: unknown): Promise<string[]> {
  const file = writeTempFile('bad.yaml', `tables: [sales]\ntriggers: ${JSON.stringify([rule])}\n`);
  try {
    loadConfig({ env: { DATABASE_URL: 'postgres://x@127.0.0.1/x' }, configPath: file });
  } catch (err) {
    return (err as ConfigError).problems;
  }
  return [];
}

describe('pg-cloudevents triggers list|test (real PostgreSQL)', function () {
  this.timeout(120_000);

  it('lists file and table rules (invalid rows with their problems), and tests a rule over a row without sending anything', async () => {
    const name = `pgce_${suffix()}`;
    const db = await createTestDatabase(name);
    const receiver = await startReceiver();
    const schema = `${name}_s`;
    try {
      await db.query('CREATE TABLE customers (id int PRIMARY KEY, name text)');
      await db.query("INSERT INTO customers VALUES (5, 'Ada')");
      await db.query('CREATE TABLE sales (id int PRIMARY KEY, qty int NOT NULL DEFAULT 1, note text, customer_id int REFERENCES customers)');
      await migrateSchema({ databaseUrl: db.url, deadLetters: { schema, table: 'dead' } }, logger('test'));
      const config = writeTempFile('c.yaml', `tables: [ sales ]
deadLetters: { schema: ${schema}, table: dead }
triggers:
  - name: from-file
    tables: [sales]
    on: [delete]
    actions: [{ cloudevent: {} }]
`);
      await insertRule(db, schema, rule('from-table', 'com.example.big', { when: 'data.qty > 10', payload: { id: '{{ id }}', label: 'sale {{ id }}' } }));
      await insertRule(db, schema, rule('broken', 'x', { tables: ['public.nowhere'] }));
      await insertRule(db, schema, rule('with-customer', 'com.example.customer', { payload: { who: '{{ customer.name }}' } }));
      const env = { DATABASE_URL: db.url, PG_CLOUDEVENTS_CONFIG: config, K_SINK: receiver.url, LOG_LEVEL: 'warn' };
      const cli = async (...args: string[]) => {
        const p = spawnCli(['triggers', ...args], env);
        return { ...(await p.exit()), stdout: p.stdout(), stderr: p.stderr() };
      };

      const listed = await cli('list');
      expect(listed.code, listed.stderr).to.equal(0);
      expect(listed.stdout).to.include('from-file  (file)  active');
      expect(listed.stdout).to.include('trigger:from-file/0: cloudevent → the default sink');
      expect(listed.stdout).to.include('from-table  (table)  active');
      expect(listed.stdout).to.include('trigger:from-table/0: cloudevent com.example.big → the default sink');
      expect(listed.stdout).to.include('broken  (table)  INVALID, ignored');
      expect(listed.stdout).to.include('problem: triggers[name=broken].tables[0]: public.nowhere is not captured');
      const asJson = JSON.parse((await cli('list', '--json')).stdout) as { name: string; origin: string; valid: boolean; destinations?: string[] }[];
      expect(asJson.map((r) => [r.name, r.origin, r.valid])).to.deep.equal([['from-file', 'file', true], ['broken', 'table', false], ['from-table', 'table', true], ['with-customer', 'table', true]]);
      expect(asJson[2].destinations).to.deep.equal(['trigger:from-table/0']);

      const fires = await cli('test', 'from-table', '--table', 'sales', '--row', '{"id": 7, "qty": 12}');
      expect(fires.code, fires.stderr).to.equal(0);
      expect(fires.stdout).to.include('trigger:from-table/0: would send a CloudEvent to http');
      expect(fires.stdout).to.include('"type":"com.example.big"');
      expect(fires.stdout).to.include('data: {"id":7,"label":"sale 7"}');
      expect(fires.stdout).to.include('nothing was sent');
      const quiet = await cli('test', 'from-table', '--table', 'sales', '--row', '{"id": 8, "qty": 1}', '--json');
      expect(quiet.code, quiet.stderr).to.equal(0);
      const report = JSON.parse(quiet.stdout) as { fires: boolean; actions: { destination: string; fires: boolean; reason: string; sends: unknown[] }[] };
      expect(report.fires).to.equal(true);
      expect(report.actions).to.deep.equal([{ destination: 'trigger:from-table/0', fires: false, reason: 'when is false: nothing is sent (the delivery counts as done)', sends: [] }]);
      const otherOp = await cli('test', 'from-file', '--table', 'sales', '--row', '{"id": 9}');
      expect(otherOp.stdout).to.include('does not fire: the rule does not match insert on public.sales');
      const deleted = await cli('test', 'from-file', '--table', 'sales', '--row', '{"id": 9}', '--op', 'delete');
      expect(deleted.stdout).to.include('trigger:from-file/0: would send a CloudEvent');
      // A table rule's template follows a foreign key, read as run reads it.
      const related = await cli('test', 'with-customer', '--table', 'sales', '--row', '{"id": 10, "qty": 1, "customer_id": 5}');
      expect(related.code, related.stderr).to.equal(0);
      expect(related.stdout).to.include('data: {"who":"Ada"}');
      expect(receiver.requests, 'test sends nothing').to.deep.equal([]);

      // Webhook and broker actions are recorded, not made: the receiver and Redis get nothing.
      const hooks = await startWebhookReceiver();
      const stream = `${name}_stream`;
      const withActions = writeTempFile('actions.yaml', `tables: [ sales ]
deadLetters: { schema: ${schema}, table: dead }
allow: { webhookUrls: ['http://127\\.0\\.0\\.1:${hooks.port}/.*'] }
brokers:
  queue: { type: redis, conn: { url: "redis://127.0.0.1:6379" }, params: { stream: "${stream}" } }
triggers:
  - name: outward
    tables: [sales]
    on: [insert]
    payload: { id: "{{ id }}" }
    actions:
      - webhook: { url: "${hooks.url}/sales" }
      - broker: queue
`);
      try {
        const dry = spawnCli(['triggers', 'test', 'outward', '--table', 'sales', '--row', '{"id": 11, "qty": 2}'], { ...env, PG_CLOUDEVENTS_CONFIG: withActions });
        expect((await dry.exit()).code, dry.stderr()).to.equal(0);
        expect(dry.stdout()).to.include(`trigger:outward/0: would send a application/json message to webhook POST ${hooks.url}/sales`);
        expect(dry.stdout()).to.include('trigger:outward/1: would send a application/json message to broker queue');
        expect(dry.stdout()).to.include('{"id":11}');
        expect(hooks.requests, 'the webhook was not called').to.deep.equal([]);
        expect(await redisStreamLength(stream), 'nothing was written to Redis').to.equal(0);
      } finally {
        await hooks.close();
      }

      const badRow = await cli('test', 'from-table', '--table', 'sales', '--row', '{"id": ');
      expect(badRow.code).to.equal(2);
      expect(badRow.stderr).to.include("option '--row <json>' argument '{\"id\": ' is invalid. must be a JSON object");
      const unknown = await cli('test', 'nope', '--table', 'sales', '--row', '{}');
      expect(unknown.code).to.equal(1);
      expect(unknown.stderr).to.include('no trigger rule "nope"');
      const invalid = await cli('test', 'broken', '--table', 'sales', '--row', '{}');
      expect(invalid.code).to.equal(1);
      expect(invalid.stderr).to.include('public.nowhere is not captured');
    } finally {
      await receiver.close();
      await db.drop();
    }
  });
});

/** Entries in a Redis stream (0 when it does not exist). */
async function redisStreamLength(stream: string): Promise<number> {
  const redis = new Redis('redis://127.0.0.1:6379');
  try {
    return await redis.xlen(stream);
  } finally {
    redis.disconnect();
  }
}
