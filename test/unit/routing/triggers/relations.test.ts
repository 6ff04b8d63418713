import { expect } from 'chai';
import type { Config } from '../../../../src/config/types';
import { DeliveryError, ErrorCodes } from '../../../../src/errors';
import { triggerContext } from '../../../../src/routing/triggers/context';
import { Lru } from '../../../../src/routing/triggers/lru';
import { compilePayload, PayloadError } from '../../../../src/routing/triggers/payload';
import {
  createRelationResolver, FOREIGN_KEYS_SQL, RelationResolver, relationName, transactionOf, type TextQuery, type TextResult,
} from '../../../../src/routing/triggers/relations';
import { inserted } from './events';
import { rejected } from './errors';

/**
 * A stand-in database: shop.orders.customer_id → shop.customers(id), customers.region_id →
 * shop.regions(id), and a composite key on orders (warehouse_id, bin). Rows by table.
 */
function fakeDatabase(rows: Record<string, (string | null)[][]> = {}, fail?: Error): { query: TextQuery; sent: string[] } {
  const sent: string[] = [];
  const fk = (table: string, name: string, columns: string[], ref: string, refColumns: string[]) =>
    ['shop', table, name, JSON.stringify(columns), 'shop', ref, JSON.stringify(refColumns)];
  const query: TextQuery = async (sql, values) => {
    sent.push(sql);
    if (fail) throw fail;
    if (sql === FOREIGN_KEYS_SQL) {
      const wanted = (values[0] as string[]).join(' ');
      const all = [
        fk('orders', 'orders_customer_id_fkey', ['customer_id'], 'customers', ['id']),
        fk('orders', 'orders_stock_fkey', ['warehouse_id', 'bin'], 'stock', ['warehouse_id', 'bin']),
        fk('customers', 'customers_region_id_fkey', ['region_id'], 'regions', ['id']),
      ];
      return { fields: [], rows: all.filter((r) => wanted.includes(`"${r[1]}"`)) };
    }
    const table = /FROM "shop"\."(\w+)"/.exec(sql)![1];
    const keys = values[0] as string[];
    const fields: TextResult['fields'] = table === 'customers'
      ? [{ name: 'id', dataTypeID: 23 }, { name: 'name', dataTypeID: 25 }, { name: 'region_id', dataTypeID: 23 }]
      : [{ name: 'id', dataTypeID: 23 }, { name: 'label', dataTypeID: 25 }];
    return { fields, rows: (rows[table] ?? []).filter((r) => keys.includes(r[0]!)) };
  };
  return { query, sent };
}

const ROWS = { customers: [['3', 'Ada', '8']], regions: [['8', 'North']] };

function resolverOf(query: TextQuery, depth = 2): RelationResolver {
  return new RelationResolver({ query, depth, format: 'default', tables: [{ schema: 'shop', name: 'orders', app: 'shop', model: 'orders' }] });
}

async function render(resolver: RelationResolver, template: unknown, event = inserted()): Promise<unknown> {
  const compiled = compilePayload(template, 'triggers[0].payload');
  const relation = await resolver.prepare(event, triggerContext(event).row, compiled.placeholders);
  return compiled.render(triggerContext(event, { relation }));
}

describe('trigger relations (resolver logic, a stand-in database)', () => {
  it('names a relation after its column without _id, as Django names a foreign key field', () => {
    expect(relationName('customer_id')).to.equal('customer');
    expect(relationName('billing_address_id')).to.equal('billing_address');
    for (const column of ['owner', 'id', '_id', 'customer_ID', 'Über_id', '9x_id']) expect(relationName(column), column).to.equal(undefined);
  });

  it('follows foreign keys to the depth allowed, and no further', async () => {
    const { query } = fakeDatabase(ROWS);
    expect(await render(resolverOf(query), { name: '{{ customer.name }}', region: '{{ customer.region.label }}' })).to.deep.equal({ name: 'Ada', region: 'North' });
    const err = await rejected(render(resolverOf(query, 1), { r: '{{ customer.region.label }}' }));
    expect(err).to.be.instanceOf(PayloadError);
    expect(err.message).to.equal('triggers[0].payload.r: {{ customer.region.label }}: customer.region would follow 2 foreign keys ' +
      '(shop.customers.region_id → shop.regions), beyond limits.relationDepth (1)');
    expect((err as PayloadError).detail).to.deep.equal({ placeholder: 'customer.region.label', key: 'triggers[0].payload.r' });
  });

  it('asks nothing when no placeholder names a relation (columns and roots are the row\'s)', async () => {
    const { query, sent } = fakeDatabase(ROWS);
    expect(await render(resolverOf(query), { id: '{{ id }}', c: '{{ customer_id }}', t: '{{ event.type }}' })).to.deep.equal({ id: 7, c: 3, t: 'orm.post_save' });
    expect(sent).to.deep.equal([]);
  });

  it('a missing related row, a composite foreign key: final errors naming the placeholder', async () => {
    const gone = await rejected(render(resolverOf(fakeDatabase({}).query), '{{ customer.name }}'));
    expect(gone).to.be.instanceOf(PayloadError);
    expect(gone.message).to.match(/^triggers\[0\]\.payload: \{\{ customer\.name \}\}: customer: no row of shop\.customers has id = 3 \(shop\.orders\.customer_id\)/);
    const composite = await rejected(render(resolverOf(fakeDatabase(ROWS).query), '{{ warehouse.name }}', inserted({ warehouse_id: 1, bin: 'A' })));
    expect(composite.message).to.include('warehouse_id is part of the composite foreign key orders_stock_fkey (warehouse_id, bin)');
  });

  it('a NULL foreign key is a null relation', async () => {
    expect(await render(resolverOf(fakeDatabase(ROWS).query), { c: '{{ customer }}' }, inserted({ customer_id: null }))).to.deep.equal({ c: null });
  });

  it('a failed read is a DeliveryError with PGCE_ERR_RELATION: retriable for a lost connection, final for a missing privilege', async () => {
    const lost = Object.assign(new Error('Connection terminated unexpectedly'), {});
    const err = await rejected(render(resolverOf(fakeDatabase(ROWS, lost).query), '{{ customer.name }}'));
    expect(err).to.be.instanceOf(DeliveryError);
    expect((err as DeliveryError).code).to.equal(ErrorCodes.RELATION);
    expect((err as DeliveryError).retriable).to.equal(true);
    const denied = Object.assign(new Error('permission denied for table orders'), { code: '42501' });
    const final = await rejected(render(resolverOf(fakeDatabase(ROWS, denied).query), '{{ customer.name }}'));
    expect((final as DeliveryError).retriable).to.equal(false);
    expect(final.message).to.include('(the role needs SELECT on shop.orders: docs/least-privilege.sql)');
  });

  it('a failed catalog read is forgotten: the next delivery reads the foreign keys again', async () => {
    let fail = true;
    const { query: ok } = fakeDatabase(ROWS);
    const query: TextQuery = (sql, values) => (fail ? Promise.reject(Object.assign(new Error('the database system is starting up'), { code: '57P03' })) : ok(sql, values));
    const resolver = resolverOf(query);
    expect(((await rejected(render(resolver, '{{ customer.name }}'))) as DeliveryError).retriable).to.equal(true);
    fail = false;
    expect(await render(resolver, '{{ customer.name }}')).to.equal('Ada');
  });

  it('the transaction of an event is its commit LSN, for the change\'s id and an action\'s', () => {
    const event = inserted();
    expect(event.id).to.match(/^[0-9A-F]{16}-\d{8}$/);
    expect(transactionOf(event)).to.equal(event.id.slice(0, 16));
    expect(transactionOf({ ...event, id: `${event.id}/trigger/x/0` } as typeof event)).to.equal(event.id.slice(0, 16));
    expect(transactionOf({ ...event, id: 'something-else' } as typeof event)).to.equal('something-else');
  });

  it('is built only when relations are on and some rule has a payload template', () => {
    const config = (relationDepth: number, payload?: unknown) => ({
      tables: [], events: { format: 'default' }, limits: { relationDepth },
      triggers: [{ name: 'r', tables: [{ schema: 'shop', name: 'orders' }], payload }],
    }) as unknown as Config;
    const query: TextQuery = async () => ({ fields: [], rows: [] });
    expect(createRelationResolver(config(2, { a: '{{ customer.name }}' }), query)).to.be.instanceOf(RelationResolver);
    expect(createRelationResolver(config(0, { a: '{{ customer.name }}' }), query)).to.equal(undefined);
    expect(createRelationResolver(config(2), query)).to.equal(undefined);
  });
});

describe('trigger relations: Lru', () => {
  it('keeps at most its capacity, forgetting the least recently used first', () => {
    const lru = new Lru<string, number>(2);
    lru.set('a', 1).set('b', 2);
    expect(lru.get('a')).to.equal(1); // a is now the newest
    lru.set('c', 3);
    expect(lru.get('b')).to.equal(undefined);
    expect([lru.get('a'), lru.get('c'), lru.size]).to.deep.equal([1, 3, 2]);
    expect(() => new Lru(0)).to.throw(RangeError);
  });
});
