import { expect } from 'chai';
import type { CloudEvent } from 'cloudevents';
import { randomBytes } from 'node:crypto';
import { acknowledgedEverything, createTestDatabase } from './harness/postgres';
import { spawnCli } from './harness/process';
import { startReceiver, type Receiver } from './harness/receiver';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

/** Unique per run: several worktrees share the server, and slot names are cluster-wide. */
const suffix = () => randomBytes(4).toString('hex');

const ofType = (receiver: Receiver, type: string) => receiver.accepted.filter((e) => e.type === type);
const rowId = (e: CloudEvent<unknown>) => (e.data as { data: { id: number } }).data.id;

describe('triggers: the cloudevent action end to end (real PostgreSQL, real HTTP receiver)', function () {
  this.timeout(120_000);

  it('fans a change out to the default event and derived events; columns, when, a render error dead-lettered and replayed', async () => {
    const name = `pgce_trg_${suffix()}`;
    const db = await createTestDatabase(name);
    const receiver = await startReceiver();
    await db.query('CREATE TABLE sales (id int PRIMARY KEY, qty int NOT NULL, note text)');
    // The whole previous row, so `columns` knows what an update changed.
    await db.query('ALTER TABLE sales REPLICA IDENTITY FULL');
    const configText = `${FAST_DELIVERY_YAML}
capture: { slot: ${name}, publication: ${name}, statusInterval: PT0.2S }
deadLetters: { schema: ${name}_dl, table: failed }
tables: [ sales ]
triggers:
  - name: big-sale
    tables: [public.sales]
    on: [post_save]
    columns: [qty]
    when: "data.qty > 10"
    payload: { id: "{{ id }}", quantity: "{{ qty }}", label: "sale {{ id }}", kind: "{{ event.type }}" }
    actions:
      - cloudevent: { type: com.example.sale.big }
  - name: broken
    tables: [sales]
    on: [insert]
    payload: { x: "{{ nope }}" }
    actions:
      - cloudevent: {}
`;
    const config = writeTempFile('c.yaml', configText);
    const cli = spawnCli(['run'], { DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(await freePort()) });
    try {
      await cli.waitForLine(/capturing/, 30_000);
      await db.query('INSERT INTO sales VALUES (1, 12, null)'); // fires big-sale (and broken)
      await db.query('INSERT INTO sales VALUES (2, 3, null)'); // when false (broken still fires)
      await db.query("UPDATE sales SET note = 'x' WHERE id = 1"); // qty unchanged: no big-sale
      await db.query('UPDATE sales SET qty = 20 WHERE id = 1'); // fires big-sale
      await acknowledgedEverything(db, name);

      const defaults = receiver.accepted.filter((e) => e.type === 'orm.post_save');
      expect(defaults.map(rowId), 'every change has its default event').to.have.members([1, 2, 1, 1]);
      const derived = ofType(receiver, 'com.example.sale.big');
      expect(derived.map((e) => e.data)).to.deep.equal([
        { id: 1, quantity: 12, label: 'sale 1', kind: 'orm.post_save' },
        { id: 1, quantity: 20, label: 'sale 1', kind: 'orm.post_save' },
      ]);
      const [first] = derived;
      const original = defaults.find((e) => rowId(e) === 1)!;
      expect(first.trigger).to.equal('big-sale');
      expect(first.source).to.equal(original.source);
      expect(first.subject).to.equal(original.subject);
      expect(first.partitionkey).to.equal(original.partitionkey);
      expect(first.id).to.equal(`${original.id}/trigger/big-sale/0`);
      expect(receiver.accepted.filter((e) => e.trigger === 'broken')).to.have.length(0);

      // The render errors: dead-lettered under the action's own event, the rest delivered, the slot past them.
      const { rows } = await db.query(`SELECT event_id, type, error FROM ${name}_dl.failed ORDER BY id`);
      expect(rows).to.have.length(2);
      for (const row of rows) {
        expect(row.event_id).to.match(/\/trigger\/broken\/0$/);
        expect(row.type).to.equal('orm.trigger.broken');
        expect(row.error).to.include('triggers[1].payload.x: {{ nope }}: the row has no column nope');
      }
      expect(cli.stdout() + cli.stderr()).to.include('trigger:broken/0');

      // Fixed in the configuration, replay renders them through the rule again, to the default sink.
      const fixed = writeTempFile('fixed.yaml', configText.replace('{ x: "{{ nope }}" }', '{ x: "{{ qty }}" }'));
      const replay = spawnCli(['dead-letters', 'replay', '--all'], { DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: fixed, LOG_LEVEL: 'warn' });
      expect((await replay.exit()).code, replay.stderr()).to.equal(0);
      const replayed = ofType(receiver, 'orm.trigger.broken');
      expect(replayed.map((e) => e.data)).to.have.deep.members([{ x: 12 }, { x: 3 }]);
      expect(replayed.map((e) => e.id)).to.have.members(rows.map((r) => r.event_id));
      expect((await db.query(`SELECT 1 FROM ${name}_dl.failed`)).rowCount, 'replayed rows are removed').to.equal(0);
    } finally {
      cli.kill('SIGTERM');
      expect((await cli.exit()).code).to.equal(0);
      await receiver.close();
      await db.drop();
    }
  });

  it('events.enabled: false delivers only the derived events', async () => {
    const name = `pgce_trg_${suffix()}`;
    const db = await createTestDatabase(name);
    const receiver = await startReceiver();
    await db.query('CREATE TABLE sales (id int PRIMARY KEY, qty int NOT NULL)');
    const config = writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: ${name}, publication: ${name}, statusInterval: PT0.2S }
deadLetters: { schema: ${name}_dl, table: failed }
tables: [ sales ]
events: { enabled: false }
triggers:
  - name: created
    tables: [sales]
    on: [insert]
    actions: [{ cloudevent: {} }]
`);
    const cli = spawnCli(['run'], { DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(await freePort()) });
    try {
      await cli.waitForLine(/capturing/, 30_000);
      await db.query('INSERT INTO sales VALUES (1, 5)');
      await db.query('UPDATE sales SET qty = 6');
      await acknowledgedEverything(db, name);
      expect(receiver.accepted.map((e) => e.type)).to.deep.equal(['orm.trigger.created']);
      // No payload: the change's data, as the default event carries it.
      expect(receiver.accepted[0].data).to.deep.include({ data: { id: 1, qty: 5 } });
    } finally {
      cli.kill('SIGTERM');
      expect((await cli.exit()).code).to.equal(0);
      await receiver.close();
      await db.drop();
    }
  });
});
