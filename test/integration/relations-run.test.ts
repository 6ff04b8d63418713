/**
 * Relations through foreign keys end to end: `run` with a trigger whose payload reads
 * {{ customer.name }} delivers the customer as it is at delivery (not as at the order's commit),
 * with the values a customers event carries; a NULL foreign key dead-letters that action only.
 * And docs/least-privilege.sql grants SELECT on the related tables it is given.
 */
import { expect } from 'chai';
import type { CloudEvent } from 'cloudevents';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { acknowledgedEverything, adminUrl, createTestDatabase } from './harness/postgres';
import { REPO_ROOT, spawnCli } from './harness/process';
import { startReceiver } from './harness/receiver';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

const suffix = () => randomBytes(4).toString('hex');

type Row = Record<string, unknown>;
const rowOf = (e: CloudEvent<unknown>) => (e.data as { data: Row }).data;

describe('trigger relations end to end (real PostgreSQL, real HTTP receiver)', function () {
  this.timeout(120_000);

  it('an order\'s derived event carries its customer read at delivery time, typed as a customers event; a NULL customer is dead-lettered', async () => {
    const name = `pgce_hhr_run_${suffix()}`;
    const db = await createTestDatabase(name);
    const receiver = await startReceiver();
    await db.query(`
      CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, balance numeric, since timestamptz);
      CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers, quantity int NOT NULL);
    `);
    const config = writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: ${name}, publication: ${name}, statusInterval: PT0.2S }
deadLetters: { schema: ${name}_dl, table: failed }
tables: [ orders, customers ]
triggers:
  - name: order-placed
    tables: [orders]
    on: [insert]
    payload: { order: "{{ id }}", to: "{{ customer.name }}", customer: "{{ customer }}", text: "order {{ id }} for {{ customer.name }}" }
    actions:
      - cloudevent: { type: com.example.order.placed }
`);
    const env = { DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: config };
    const setup = spawnCli(['setup'], { ...env, LOG_LEVEL: 'warn' });
    expect((await setup.exit()).code, setup.stderr()).to.equal(0);
    // Committed before run starts: the order's action is delivered after the customer was renamed.
    await db.query("INSERT INTO customers VALUES (1, 'Ada', 12345678901234567890.12, '2024-02-29 11:14:15.5+00')");
    await db.query('INSERT INTO orders VALUES (1, 1, 2)');
    await db.query("UPDATE customers SET name = 'Ada L.' WHERE id = 1");
    const cli = spawnCli(['run'], { ...env, PORT: String(await freePort()) });
    try {
      await cli.waitForLine(/capturing/, 30_000);
      await db.query('INSERT INTO orders VALUES (2, null, 1)');
      await acknowledgedEverything(db, name);

      const placed = receiver.accepted.filter((e) => e.type === 'com.example.order.placed');
      expect(placed).to.have.length(1);
      const renamed = receiver.accepted.find((e) => e.type === 'orm.post_save' && e.model === 'customers' && rowOf(e).name === 'Ada L.');
      expect(renamed, 'the customers update event').to.not.equal(undefined);
      // The order's commit saw Ada; the action read the row when it was delivered: Ada L.,
      // with every value as the customers event carries it (numeric digits, UTC timestamp).
      expect(placed[0].data).to.deep.equal({ order: 1, to: 'Ada L.', customer: rowOf(renamed!), text: 'order 1 for Ada L.' });
      expect(rowOf(renamed!)).to.deep.equal({ id: 1, name: 'Ada L.', balance: '12345678901234567890.12', since: '2024-02-29T11:14:15.5Z' });

      // The order without a customer: its action dead-lettered with the reason, the rest delivered.
      const { rows } = await db.query(`SELECT event_id, error FROM ${name}_dl.failed`);
      expect(rows).to.have.length(1);
      expect(rows[0].event_id).to.match(/\/trigger\/order-placed\/0$/);
      expect(rows[0].error).to.include('triggers[0].payload.to: {{ customer.name }}: customer is null, not an object');
      expect(receiver.accepted.filter((e) => e.type === 'orm.post_save' && e.model === 'orders').map((e) => rowOf(e).id)).to.have.members([1, 2]);
    } finally {
      cli.kill('SIGTERM');
      expect((await cli.exit()).code).to.equal(0);
      await receiver.close();
      await db.drop();
    }
  });

  it('docs/least-privilege.sql grants SELECT on the related tables given as `related`, and runs without it', async () => {
    const tag = suffix();
    const db = await createTestDatabase(`pgce_hhr_lp_${tag}`);
    const roles = [`pgce_hhr_role_${tag}`, `pgce_hhr_norel_${tag}`];
    try {
      await db.query(`
        CREATE TABLE customers (id int PRIMARY KEY, name text);
        CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers);
      `);
      const script = path.join(REPO_ROOT, 'docs', 'least-privilege.sql');
      const common = ['-X', '-q', '-v', 'password=x', '-v', 'tables=public.orders', '-f', script];
      await promisify(execFile)('psql', [db.url, '-v', `role=${roles[0]}`, '-v', `publication=${db.name}_a`, '-v', 'related=public.customers', ...common]);
      await promisify(execFile)('psql', [db.url, '-v', `role=${roles[1]}`, '-v', `publication=${db.name}_b`, ...common]);
      const can = async (role: string) => (await db.query("SELECT has_table_privilege($1, 'public.customers', 'SELECT') AS ok", [role])).rows[0].ok;
      expect(await can(roles[0]), 'with related').to.equal(true);
      expect(await can(roles[1]), 'without related').to.equal(false);
    } finally {
      await db.drop();
      const admin = new Client({ connectionString: adminUrl() });
      await admin.connect();
      try {
        for (const role of roles) await admin.query(`DROP ROLE IF EXISTS "${role}"`);
      } finally {
        await admin.end();
      }
    }
  });
});
