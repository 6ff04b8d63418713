/**
 * Relations through foreign keys in trigger payloads, at the resolver (src/routing/triggers/relations.ts),
 * against a real PostgreSQL: naming, depth, exact values, batching and caching per transaction,
 * dangling and NULL foreign keys, database errors. The end-to-end run is in relations-run.test.ts.
 */
import { expect } from 'chai';
import type { CloudEvent } from 'cloudevents';
import { randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import { DeliveryError, ErrorCodes } from '../../src/errors';
import { defaultFormat } from '../../src/events/default';
import { djangoFormat } from '../../src/events/django';
import type { EventFormat } from '../../src/events/format';
import { RawJson, stringifyJson } from '../../src/events/json-text';
import { createPool } from '../../src/pg/db';
import { triggerContext } from '../../src/routing/triggers/context';
import { compilePayload, PayloadError } from '../../src/routing/triggers/payload';
import { FOREIGN_KEYS_SQL, RelationResolver, textQuery, type TextQuery } from '../../src/routing/triggers/relations';
import type { InsertChange, RelationInfo, Row } from '../../src/sources/change';
import { REPLICATION_SESSION_OPTIONS } from '../../src/sources/logical/stream';
import { rejected } from '../unit/routing/triggers/errors';
import { createTestDatabase, type TestDatabase } from './harness/postgres';

const TABLES = ['orders', 'parcels'].map((name) => ({ schema: 'public', name, app: 'public', model: name }));

/** A captured table's insert event, built by the real format; `lsn` is its transaction. */
function eventOf(table: string, row: Row, { lsn = 0x1000n, ordinal = 0, format = defaultFormat as EventFormat } = {}): CloudEvent<unknown> {
  const relation: RelationInfo = {
    id: 1, schema: 'public', table, replicaIdentity: 'default', keyColumns: ['id'],
    columns: Object.keys(row).map((name) => ({ name, typeOid: 23, typeMod: -1, isKey: name === 'id' })),
  };
  const change: InsertChange = { kind: 'insert', relation, new: row, missingColumns: [], commitLsn: lsn, commitTime: new Date(0), xid: 1, ordinal };
  return format.build(change, { source: '/t', typePrefix: 'orm', overrides: {}, table: { table: `public.${table}`, schema: 'public', name: table, app: 'public', model: table } });
}

/** What an action's sink does: prepare the relations its placeholders read, then render. */
async function render(resolver: RelationResolver, template: unknown, event: CloudEvent<unknown>): Promise<unknown> {
  const compiled = compilePayload(template, 'triggers[0].payload');
  const relation = await resolver.prepare(event, triggerContext(event).row, compiled.placeholders);
  return compiled.render(triggerContext(event, { relation }));
}

describe('trigger relations: the resolver against a real PostgreSQL', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let pool: Pool;
  /** Every statement the resolvers sent. */
  let sent: string[];
  let query: TextQuery;
  const resolver = (depth = 2, format: 'default' | 'django' = 'default') => new RelationResolver({ query, depth, format, tables: TABLES });
  const rowReads = (table: string) => sent.filter((sql) => sql.includes(`FROM "public"."${table}" AS r`)).length;

  before(async () => {
    db = await createTestDatabase(`pgce_hhr_rel_${randomBytes(4).toString('hex')}`);
    // Another time zone than the events' UTC: the resolver's sessions must print as the replication session does.
    await db.query(`ALTER DATABASE ${db.name} SET timezone TO 'Europe/Paris'`);
    await db.query(`
      CREATE TABLE countries (id int PRIMARY KEY, name text NOT NULL);
      CREATE TABLE addresses (id int PRIMARY KEY, city text, zip numeric, geo jsonb, checked_at timestamptz,
        country_id int REFERENCES countries);
      CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, address_id int REFERENCES addresses);
      CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers, quantity int);
      CREATE TABLE regions (id int, zone_id int, name text, PRIMARY KEY (id, zone_id));
      CREATE TABLE parcels (id int PRIMARY KEY, region_id int, zone_id int, FOREIGN KEY (region_id, zone_id) REFERENCES regions);
      INSERT INTO countries VALUES (1, 'France');
      INSERT INTO addresses VALUES (10, 'Paris', 12345678901234567890.12, '{"lat": 48.85661400000000000001}', '2024-02-29 11:14:15.5+00', 1),
                                   (11, 'Lyon', 69001, null, null, 1);
      INSERT INTO customers VALUES (1, 'Ada', 10), (2, 'Grace', 11), (3, 'Edsger', 10), (4, 'Barbara', null);
    `);
    pool = createPool(db.url, 2, REPLICATION_SESSION_OPTIONS);
    const base = textQuery(pool);
    query = (sql, values) => {
      sent.push(sql);
      return base(sql, values);
    };
  });
  beforeEach(() => (sent = []));
  after(async () => {
    await pool?.end();
    await db?.drop();
  });

  it('customer_id makes the relation customer; customer.address.city follows two foreign keys', async () => {
    const order = eventOf('orders', { id: 1, customer_id: 1, quantity: 2 });
    expect(await render(resolver(), { to: '{{ customer.name }}', city: '{{ customer.address.city }}', text: 'for {{ customer.name }}' }, order))
      .to.deep.equal({ to: 'Ada', city: 'Paris', text: 'for Ada' });
  });

  it('related values have the types and exact digits an event of that table carries, whatever the server time zone', async () => {
    const out = await render(resolver(), {
      zip: '{{ customer.address.zip }}', geo: '{{ customer.address.geo }}', lat: '{{ customer.address.geo.lat }}',
      checked: '{{ customer.address.checked_at }}', id: '{{ customer.id }}', customer: '{{ customer }}',
    }, eventOf('orders', { id: 1, customer_id: 1, quantity: 2 })) as Record<string, unknown>;
    // numeric as a string, as in events; jsonb numbers exact (RawJson), not rounded by a double.
    expect(out.zip).to.equal('12345678901234567890.12');
    expect(out.lat).to.be.instanceOf(RawJson);
    expect(out.id).to.equal(1);
    expect(out.checked).to.equal('2024-02-29T11:14:15.5Z');
    // {{ customer }} is the row's columns only, though the template also reads customer.address.
    expect(stringifyJson(out)).to.equal(
      '{"zip":"12345678901234567890.12","geo":{"lat":48.85661400000000000001},"lat":48.85661400000000000001,' +
        '"checked":"2024-02-29T11:14:15.5Z","id":1,"customer":{"id":1,"name":"Ada","address_id":10}}',
    );
  });

  it('the django format: related values as str(), as its events carry them; its None foreign key is no row', async () => {
    const out = await render(resolver(2, 'django'), { zip: '{{ customer.address.zip }}', id: '{{ customer.id }}' },
      eventOf('orders', { id: 1, customer_id: 1, quantity: 2 }, { format: djangoFormat }));
    expect(out).to.deep.equal({ zip: '12345678901234567890.12', id: '1' });
    expect(await render(resolver(2, 'django'), '{{ customer }}', eventOf('orders', { id: 1, customer_id: null, quantity: 2 }, { format: djangoFormat })))
      .to.equal(null);
  });

  it('a path beyond limits.relationDepth is a final error naming the placeholder and the setting', async () => {
    const order = eventOf('orders', { id: 1, customer_id: 1, quantity: 2 });
    const err = await rejected(render(resolver(2), { country: '{{ customer.address.country.name }}' }, order));
    expect(err).to.be.instanceOf(PayloadError);
    expect((err as PayloadError).retriable).to.equal(false);
    expect(err.message).to.equal('triggers[0].payload.country: {{ customer.address.country.name }}: customer.address.country would follow 3 ' +
      'foreign keys (public.addresses.country_id → public.countries), beyond limits.relationDepth (2)');
    expect(await render(resolver(3), '{{ customer.address.country.name }}', order)).to.equal('France');
    expect((await rejected(render(resolver(1), '{{ customer.address.city }}', order))).message).to.include('beyond limits.relationDepth (1)');
    // A column of a related row is a column, at any depth: customer.address_id is one foreign key.
    expect(await render(resolver(1), '{{ customer.address_id }}', order)).to.equal(10);
  });

  it('20 orders of one transaction, 3 customers: one statement per related table, then cache hits; a new transaction reads again', async () => {
    const template = { name: '{{ customer.name }}', city: '{{ customer.address.city }}' };
    const r = resolver();
    const orders = (lsn: bigint) => Array.from({ length: 20 }, (_, i) => eventOf('orders', { id: i, customer_id: 1 + (i % 3), quantity: i }, { lsn, ordinal: i }));
    const first = await Promise.all(orders(0x2000n).map((e) => render(r, template, e)));
    expect(first.map((p) => (p as { name: string }).name)).to.deep.equal(Array.from({ length: 20 }, (_, i) => ['Ada', 'Grace', 'Edsger'][i % 3]));
    expect(first[1]).to.deep.equal({ name: 'Grace', city: 'Lyon' });
    expect(rowReads('customers'), 'statements reading customers').to.equal(1);
    expect(rowReads('addresses'), 'statements reading addresses').to.equal(1);
    const catalogReads = sent.filter((sql) => sql === FOREIGN_KEYS_SQL).length;

    // The same transaction again (a retry, another rule): all from the cache.
    await Promise.all(orders(0x2000n).map((e) => render(r, template, e)));
    expect(rowReads('customers') + rowReads('addresses')).to.equal(2);

    // Read at delivery: a later transaction sees the rename, through one new statement per table.
    await db.query("UPDATE customers SET name = 'Ada L.' WHERE id = 1");
    try {
      const later = await Promise.all(orders(0x3000n).map((e) => render(r, template, e)));
      expect(later[0]).to.deep.equal({ name: 'Ada L.', city: 'Paris' });
      expect(rowReads('customers')).to.equal(2);
      expect(rowReads('addresses')).to.equal(2);
      expect(sent.filter((sql) => sql === FOREIGN_KEYS_SQL).length, 'foreign keys are read once per table').to.equal(catalogReads);
    } finally {
      await db.query("UPDATE customers SET name = 'Ada' WHERE id = 1");
    }
  });

  it('a foreign key to a row that is gone is a final error naming the placeholder, the table and the key', async () => {
    await db.query("INSERT INTO customers VALUES (5, 'Gone', null)");
    const order = eventOf('orders', { id: 9, customer_id: 5, quantity: 1 }, { lsn: 0x4000n });
    await db.query('DELETE FROM customers WHERE id = 5');
    const err = await rejected(render(resolver(), { to: '{{ customer.name }}' }, order));
    expect(err).to.be.instanceOf(PayloadError);
    expect((err as PayloadError).retriable).to.equal(false);
    expect(err.message).to.match(/^triggers\[0\]\.payload\.to: \{\{ customer\.name \}\}: customer: no row of public\.customers has id = 5 \(public\.orders\.customer_id\); related rows are read when the action is delivered/);
  });

  it('a NULL foreign key: the relation is null, a path through it a final error', async () => {
    const order = eventOf('orders', { id: 1, customer_id: null, quantity: 2 });
    expect(await render(resolver(), { c: '{{ customer }}' }, order)).to.deep.equal({ c: null });
    expect((await rejected(render(resolver(), '{{ customer.name }}', order))).message).to.include('{{ customer.name }}: customer is null, not an object');
    // One level down: Barbara has no address.
    const barbara = eventOf('orders', { id: 1, customer_id: 4, quantity: 2 });
    expect(await render(resolver(), '{{ customer.address }}', barbara)).to.equal(null);
    expect((await rejected(render(resolver(), '{{ customer.address.city }}', barbara))).message).to.include('customer.address is null, not an object');
  });

  it('unknown relations and composite foreign keys are final errors that say why', async () => {
    const unknown = await rejected(render(resolver(), '{{ customer.nickname }}', eventOf('orders', { id: 1, customer_id: 1, quantity: 2 })));
    expect(unknown.message).to.include('{{ customer.nickname }}: customer has no nickname (its keys: id, name, address_id)');
    const noColumn = await rejected(render(resolver(), '{{ vendor.name }}', eventOf('orders', { id: 1, customer_id: 1, quantity: 2 })));
    expect(noColumn.message).to.include('{{ vendor.name }}: the row has no column vendor');
    const composite = await rejected(render(resolver(), '{{ region.name }}', eventOf('parcels', { id: 1, region_id: 1, zone_id: 1 })));
    expect(composite).to.be.instanceOf(PayloadError);
    expect(composite.message).to.include('{{ region.name }}: region_id is part of the composite foreign key parcels_region_id_zone_id_fkey (region_id, zone_id); only single-column foreign keys are relations');
  });

  it('database errors: retriable while the database is unavailable, final (with the grant to add) without SELECT', async () => {
    const closed = createPool('postgres://postgres@127.0.0.1:1/none', 1, REPLICATION_SESSION_OPTIONS);
    try {
      const down = new RelationResolver({ query: textQuery(closed), depth: 2, format: 'default', tables: TABLES });
      const err = await rejected(render(down, '{{ customer.name }}', eventOf('orders', { id: 1, customer_id: 1, quantity: 2 })));
      expect(err).to.be.instanceOf(DeliveryError);
      expect((err as DeliveryError).retriable).to.equal(true);
      expect((err as DeliveryError).code).to.equal(ErrorCodes.RELATION);
      expect(err.message).to.include('triggers[0].payload: {{ customer.name }}: reading the foreign keys of public.orders failed');
    } finally {
      await closed.end();
    }

    const role = `pgce_hhr_${randomBytes(4).toString('hex')}`;
    await db.query(`CREATE ROLE ${role} LOGIN; GRANT SELECT ON orders, addresses TO ${role}`);
    const url = new URL(db.url);
    url.username = role;
    const limited = createPool(url.toString(), 1, REPLICATION_SESSION_OPTIONS);
    try {
      const r = new RelationResolver({ query: textQuery(limited), depth: 2, format: 'default', tables: TABLES });
      const err = await rejected(render(r, '{{ customer.name }}', eventOf('orders', { id: 1, customer_id: 1, quantity: 2 }, { lsn: 0x5000n })));
      expect((err as DeliveryError).retriable).to.equal(false);
      expect((err as DeliveryError).code).to.equal(ErrorCodes.RELATION);
      expect(err.message).to.include('reading public.customers failed: permission denied for table customers (the role needs SELECT on public.customers');
    } finally {
      await limited.end();
      await db.query(`REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${role}; DROP ROLE ${role}`);
    }
  });
});
