/**
 * Application events routed by type (README "Application events"): `run` against real PostgreSQL
 * with a real CloudEvents receiver; a trigger rule over `types` sends its derived event, its
 * payload rendered from the application event's data, and a rolled-back emit fires nothing.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { acknowledgedEverything, createTestDatabase } from './harness/postgres';
import { spawnCli } from './harness/process';
import { startReceiver } from './harness/receiver';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

/** Helper tag ht: every database, slot and schema of this file carries it. */
const unique = () => `pgce_ht_${randomBytes(4).toString('hex')}`;

describe('application events routed by type: trigger rules (real PostgreSQL 15, real HTTP receiver)', function () {
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
    } finally {
      cli.kill('SIGTERM');
      expect((await cli.exit()).code).to.equal(0);
      await receiver.close();
      await db.drop();
    }
  });
});
