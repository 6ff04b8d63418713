/**
 * Application events routed by type (README "Application events"): `run` against real PostgreSQL
 * with a real CloudEvents receiver; a trigger rule over `types` sends its derived event, its
 * payload rendered from the application event's data, and a rolled-back emit fires nothing; a
 * workflow (real Redis) with one input from a row and one from an application event runs its task
 * once both happened, in either order.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { acknowledgedEverything, createTestDatabase } from './harness/postgres';
import { spawnCli } from './harness/process';
import { startReceiver } from './harness/receiver';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';
import { deleteKeysUnder } from './harness/redis';

/** Helper tag ht: every database, slot, schema and Redis key of this file carries it. */
const unique = () => `pgce_ht_${randomBytes(4).toString('hex')}`;
const REDIS_URL = 'redis://127.0.0.1:6379';

/** Deletes every key under `prefix` (SCAN, never KEYS); only this file's names. */
async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  if (!prefix.startsWith('pgce_ht_')) throw new Error(`refusing to delete keys outside this helper's names: ${prefix}`);
  await deleteKeysUnder(redis, prefix);
}

describe('application events routed by type: trigger rules and workflow inputs (real PostgreSQL 15, Redis, HTTP receiver)', function () {
  this.timeout(120_000);

  it('a committed emit reaches the default sink and the rule over its type, payload from its data; a rolled-back one fires nothing', async () => {
    const name = unique();
    const db = await createTestDatabase(name);
    const receiver = await startReceiver();
    await db.query('CREATE TABLE accounts (id int PRIMARY KEY, plan text NOT NULL)');
    const config = writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: ${name}, publication: ${name}, statusInterval: PT0.2S }
deadLetters: { schema: ${name}_dl, table: failed }
tables: [ accounts ]
triggers:
  - name: welcome
    types: [com.example.signup]
    when: "data.plan = 'pro'"
    payload: { user: "{{ event.subject }}", plan: "{{ plan }}", email: "{{ profile.email }}" }
    actions: [{ cloudevent: { type: com.example.welcome } }]
  - name: accounts
    tables: [accounts]
    on: [insert]
    actions: [{ cloudevent: { type: com.example.account } }]
`);
    const cli = spawnCli(['run'], { DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(await freePort()) });
    const emit = `${name}_dl.emit`;
    try {
      await cli.waitForLine(/capturing/, 30_000);
      await db.query(`BEGIN; SELECT ${emit}('com.example.signup', 'user/9', '{"plan":"pro","profile":{"email":"gone@example.com"}}'); ROLLBACK`);
      await db.query(`BEGIN;
        INSERT INTO accounts VALUES (42, 'pro');
        SELECT ${emit}('com.example.signup', 'user/42', '{"plan":"pro","profile":{"email":"ada@example.com"}}');
        SELECT ${emit}('com.example.signup', 'user/43', '{"plan":"free","profile":{"email":"bob@example.com"}}');
        SELECT ${emit}('com.example.other', 'user/42', '{"plan":"pro"}');
        COMMIT`);
      await acknowledgedEverything(db, name);

      const types = receiver.accepted.map((e) => e.type).sort();
      // The rolled-back emit and the free plan (when false) fire nothing; the other type no rule.
      expect(types).to.deep.equal(['com.example.account', 'com.example.other', 'com.example.signup', 'com.example.signup', 'com.example.welcome', 'orm.post_save']);
      const signup = receiver.accepted.find((e) => e.type === 'com.example.signup' && e.subject === 'user/42')!;
      const welcome = receiver.accepted.find((e) => e.type === 'com.example.welcome')!;
      expect(welcome.id).to.equal(`${signup.id}/trigger/welcome/0`);
      expect(welcome.subject).to.equal('user/42');
      expect(welcome.trigger).to.equal('welcome');
      expect(welcome.data).to.deep.equal({ user: 'user/42', plan: 'pro', email: 'ada@example.com' });
      expect(receiver.accepted.some((e) => JSON.stringify(e.data ?? null).includes('gone@example.com')), 'rolled back').to.equal(false);
      const { rows } = await db.query(`SELECT count(*)::int AS n FROM ${name}_dl.failed`);
      expect(rows[0].n).to.equal(0);

      // `triggers test` over an application event: renders what run rendered, sends nothing.
      const before = receiver.requests.length;
      const env = { DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: config, LOG_LEVEL: 'warn' };
      const dry = spawnCli(['triggers', 'test', 'welcome', '--type', 'com.example.signup', '--subject', 'user/7', '--data', '{"plan":"pro","profile":{"email":"eve@example.com"}}'], env);
      expect((await dry.exit()).code, dry.stderr()).to.equal(0);
      expect(dry.stdout()).to.include('rule welcome (file), application event com.example.signup');
      expect(dry.stdout()).to.include('data: {"user":"user/7","plan":"pro","email":"eve@example.com"}');
      const other = spawnCli(['triggers', 'test', 'welcome', '--type', 'com.example.other', '--data', '{}'], env);
      expect((await other.exit()).code, other.stderr()).to.equal(0);
      expect(other.stdout()).to.include('does not fire: the rule does not match application event com.example.other (types: com.example.signup)');
      const mixed = spawnCli(['triggers', 'test', 'welcome', '--type', 'com.example.signup', '--table', 'accounts'], env);
      expect((await mixed.exit()).code).to.equal(2);
      expect(mixed.stderr()).to.include('--type tests an application event: leave out --table');
      expect(receiver.requests.length, 'triggers test sends nothing').to.equal(before);
    } finally {
      cli.kill('SIGTERM');
      expect((await cli.exit()).code).to.equal(0);
      await receiver.close();
      await db.drop();
    }
  });

  it('a workflow input by type: the task runs once the row and the application event both happened, in either order', async () => {
    const name = unique();
    const prefix = `${name}:`;
    const db = await createTestDatabase(name);
    const receiver = await startReceiver();
    const redis = new Redis(REDIS_URL);
    await db.query('CREATE TABLE accounts (id int PRIMARY KEY, plan text NOT NULL)');
    const config = writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: ${name}, publication: ${name}, statusInterval: PT0.2S }
deadLetters: { schema: ${name}_dl, table: failed }
events: { enabled: false }
tables: [ accounts ]
redis: { url: "${REDIS_URL}", prefix: "${prefix}", reclaimAfter: PT1S, heartbeatInterval: PT0.2S }
workflows:
  - name: onboarding
    session: "$exists(data.account) ? data.account : data.id"
    events:
      account: { table: accounts, on: [insert] }
      verified: { type: com.example.verified, when: "data.ok = true" }
    tasks:
      t_welcome:
        after: [account, verified]
        run: { cloudevent: { type: com.example.onboarded } }
`);
    const cli = spawnCli(['run'], { DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(await freePort()) });
    const emit = `${name}_dl.emit`;
    try {
      await cli.waitForLine(/capturing/, 30_000);
      // Account 1: the row, then (after it is in Redis) the event; account 2: the event first.
      await db.query("INSERT INTO accounts VALUES (1, 'pro')");
      await db.query(`SELECT ${emit}('com.example.verified', 'account/2', '{"account":2,"ok":true}')`);
      // ok false: not the input (when), so account 3 never runs.
      await db.query(`SELECT ${emit}('com.example.verified', 'account/3', '{"account":3,"ok":false}')`);
      await db.query("INSERT INTO accounts VALUES (3, 'free')");
      await acknowledgedEverything(db, name);
      expect(receiver.accepted.filter((e) => e.type === 'com.example.onboarded'), 'one input each: nothing runs').to.deep.equal([]);
      await db.query(`SELECT ${emit}('com.example.verified', 'account/1', '{"account":1,"ok":true}')`);
      await db.query("INSERT INTO accounts VALUES (2, 'free')");
      await receiver.waitFor((events) => events.filter((e) => e.type === 'com.example.onboarded').length >= 2, 30_000);
      await acknowledgedEverything(db, name);
      const done = receiver.accepted.filter((e) => e.type === 'com.example.onboarded');
      expect(done.map((e) => e.subject).sort()).to.deep.equal(['onboarding/1/t_welcome#0', 'onboarding/2/t_welcome#0']);
      const one = done.find((e) => e.subject === 'onboarding/1/t_welcome#0')!;
      // The inputs: the row, and the application event's data.
      expect(one.data).to.deep.equal({ account: { id: 1, plan: 'pro' }, verified: { account: 1, ok: true } });
    } finally {
      cli.kill('SIGTERM');
      expect((await cli.exit()).code).to.equal(0);
      await receiver.close();
      await deleteKeys(redis, prefix);
      await redis.quit();
      await db.drop();
    }
  });
});
