import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { acknowledgedEverything, createTestDatabase } from './harness/postgres';
import { spawnCli } from './harness/process';
import { startReceiver } from './harness/receiver';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

/** Unique per run (`he`: this feature's tag): several worktrees share the server, slot names are cluster-wide. */
const suffix = () => randomBytes(4).toString('hex');

describe('application events: pgcloudevents.emit() in the application transaction (real PostgreSQL 15, real HTTP receiver)', function () {
  this.timeout(120_000);

  it('delivers what committed, in order with the rows, dead-letters a malformed message, ignores other prefixes; the function refuses a bad type', async () => {
    const name = `pgce_he_${suffix()}`;
    const db = await createTestDatabase(name);
    const receiver = await startReceiver();
    await db.query('CREATE TABLE accounts (id int PRIMARY KEY, plan text NOT NULL)');
    const config = writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: ${name}, publication: ${name}, statusInterval: PT0.2S }
deadLetters: { schema: ${name}_dl, table: failed }
events: { messagePrefix: ${name}.app }
tables: [ accounts ]
`);
    const cli = spawnCli(['run'], { DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(await freePort()) });
    const emit = `${name}_dl.emit`;
    try {
      await cli.waitForLine(/capturing/, 30_000);
      // Rolled back: neither the row nor the event exists.
      await db.query(`BEGIN; INSERT INTO accounts VALUES (9, 'x'); SELECT ${emit}('com.example.rolledback', 'user/9', '{}'); ROLLBACK`);
      // One transaction: row insert, application event, row update, in that order.
      await db.query(`BEGIN;
        INSERT INTO accounts VALUES (42, 'free');
        SELECT ${emit}('com.example.signup', 'user/42', '{"plan":"pro","credit":12345678901234567890.50}', '{"tenant":"acme","tier":2}');
        UPDATE accounts SET plan = 'pro' WHERE id = 42;
        COMMIT`);
      // Written by hand with the prefix: not JSON of an event. Then another prefix, then a good event.
      await db.query(`SELECT pg_logical_emit_message(true, '${name}.app', 'not json')`);
      await db.query(`SELECT pg_logical_emit_message(true, 'someone.else', '{"type":"com.example.other"}')`);
      await db.query(`SELECT ${emit}('com.example.after', NULL, '{"ok":true}')`);
      await acknowledgedEverything(db, name);

      // Different partition keys (row, subject) are delivered in parallel: their order is the id's.
      const got = [...receiver.accepted].sort((a, b) => (a.id < b.id ? -1 : 1));
      expect(got.map((e) => e.type)).to.deep.equal(['orm.post_save', 'com.example.signup', 'orm.post_save', 'com.example.after']);
      const [insert, signup, update, after] = got;
      // Ids from the position: the same commit LSN, ordinals 0, 1, 2.
      const lsn = insert.id.split('-')[0];
      expect([insert.id, signup.id, update.id]).to.deep.equal([`${lsn}-00000000`, `${lsn}-00000001`, `${lsn}-00000002`]);
      expect(signup.source).to.equal(insert.source);
      expect(signup.subject).to.equal('user/42');
      expect(signup.time).to.equal(insert.time);
      expect(signup.tenant).to.equal('acme');
      expect(String(signup.tier), 'an integer extension (a header in binary mode)').to.equal('2');
      expect(signup.partitionkey).to.equal('user/42');
      // The exact number survives (the receiver parses JSON lossily; the body kept the digits).
      expect(receiver.requests.find((r) => r.body.includes('credit'))?.body).to.include('12345678901234567890.50');
      expect(signup.data).to.have.property('plan', 'pro');
      expect(after.subject).to.equal(undefined);
      expect(after.data).to.deep.equal({ ok: true });
      expect(after.partitionkey, 'no subject: the type orders it').to.equal('com.example.after');

      const { rows } = await db.query(`SELECT event_id, error, raw_change AS raw FROM ${name}_dl.failed`);
      expect(rows).to.have.length(1);
      expect(rows[0].error).to.include('PGCE_ERR_APP_EVENT').and.include('not JSON');
      expect(JSON.stringify(rows[0].raw)).to.include('not json');

      // The function refuses a bad type in the application's own transaction.
      const refused = await db.query(`SELECT ${emit}('', 's', '{}')`).then(() => undefined, (err: Error) => err);
      expect(refused?.message).to.include('type must be a non-empty text');
      const badExt = await db.query(`SELECT ${emit}('t', 's', '{}', '{"Bad-Name":1}')`).then(() => undefined, (err: Error) => err);
      expect(badExt?.message).to.include('extension name "Bad-Name"');
    } finally {
      cli.kill('SIGTERM');
      expect((await cli.exit()).code).to.equal(0);
      await receiver.close();
    }
    try {
      // setup again: nothing to do for the function (idempotent); teardown drops it.
      const env = { DATABASE_URL: db.url, PG_CLOUDEVENTS_CONFIG: config, LOG_LEVEL: 'warn' };
      const setup = spawnCli(['setup'], env);
      expect((await setup.exit()).code, setup.stderr()).to.equal(0);
      expect(setup.stdout()).to.not.include('function');
      await db.query(`DELETE FROM ${name}_dl.failed`);
      const teardown = spawnCli(['teardown'], env);
      expect((await teardown.exit()).code, teardown.stderr()).to.equal(0);
      const { rows } = await db.query(`SELECT to_regprocedure('${emit}(text,text,jsonb,jsonb)') AS f`);
      expect(rows[0].f).to.equal(null);
    } finally {
      await db.drop();
    }
  });
});
