/** Default-format events of an `orders` table, built by the real format, for the trigger tests. */
import type { CloudEvent } from 'cloudevents';
import { defaultFormat } from '../../../../src/events/default';
import { djangoFormat } from '../../../../src/events/django';
import { RawJson } from '../../../../src/events/json-text';
import type { Change, TableChange } from '../../../../src/sources/change';
import { deleteOf, insertOf, OID, relation, tableOf, truncateOf, updateOf } from '../../events/fixtures';

export const orders = relation('shop', 'orders', [
  { name: 'id', typeOid: OID.int4, typeMod: -1, isKey: true },
  { name: 'customer_id', typeOid: OID.int4, typeMod: -1, isKey: false },
  { name: 'customer_name', typeOid: OID.text, typeMod: -1, isKey: false },
  { name: 'quantity', typeOid: OID.int4, typeMod: -1, isKey: false },
  { name: 'price', typeOid: OID.numeric, typeMod: -1, isKey: false },
  { name: 'meta', typeOid: OID.jsonb, typeMod: -1, isKey: false },
  { name: 'event', typeOid: OID.text, typeMod: -1, isKey: false },
  { name: 'note', typeOid: OID.text, typeMod: -1, isKey: false },
]);

/** A row as the logical source decodes it: jsonb numbers beyond a JS number kept exact. */
export function orderRow(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 7,
    customer_id: 3,
    customer_name: 'Ada',
    quantity: 12,
    price: '19.90',
    meta: { tags: ['gift', 'rush'], serial: new RawJson('12345678901234567890'), ratio: new RawJson('1.50') },
    event: 'launch',
    note: null,
    ...over,
  };
}

export function eventOf(change: Change, format = defaultFormat): CloudEvent<unknown> {
  return format.build(change as TableChange, { source: '/pg-cloudevents/shop', typePrefix: 'orm', overrides: { tenant: 'acme' }, table: tableOf(orders) });
}

export const inserted = (over: Record<string, unknown> = {}) => eventOf(insertOf(orders, orderRow(over)));
export const updated = (over: Record<string, unknown> = {}, old: Record<string, unknown> = orderRow()) =>
  eventOf(updateOf(orders, orderRow(over), old, false));
export const deleted = () => eventOf(deleteOf(orders, { id: 7 }));
export const truncated = () => eventOf(truncateOf(orders));
export const djangoInserted = () => eventOf(insertOf(orders, orderRow()), djangoFormat);
