import { expect } from 'chai';
import { decodeValue } from '../../../src/pg/values';
import { TypeRegistry } from '../../../src/pg/types-registry';
import { defaultFormat } from '../../../src/events/default';
import { djangoFormat } from '../../../src/events/django';
import type { EventContext } from '../../../src/events/format';
import { pyStr } from '../../../src/events/pystr';
import { insertOf, OID, relation, tableOf, updateOf } from './fixtures';

// Numbers a JavaScript number would round, inside json/jsonb columns (README, "The event").
const BIG = '12345678901234567890';
const LONG = '0.1000000000000000055511151231257827';
const registry = new TypeRegistry();
const jsonb = (text: string) => decodeValue(text, OID.jsonb, registry);

const c = (name: string, typeOid: number, isKey = false) => ({ name, typeOid, typeMod: -1, isKey });
const docs = relation('public', 'docs', [c('id', OID.int4, true), c('body', OID.jsonb)], 'full');
const byJson = relation('public', 'by_json', [c('k', OID.jsonb, true), c('note', OID.text)]);
const ctx = (format: typeof defaultFormat, rel = docs): EventContext =>
  ({ source: '/pg-cloudevents/app', typePrefix: format.defaultTypePrefix, overrides: {}, table: tableOf(rel) });

describe('events: numbers inside json/jsonb keep their exact digits', () => {
  it('update_fields sees a change in digits a JS number cannot tell apart', () => {
    const before = { id: 1, body: jsonb(`{"n": ${BIG}}`), };
    const after = { id: 1, body: jsonb('{"n": 12345678901234567891}') };
    const event = defaultFormat.build(updateOf(docs, after, before), ctx(defaultFormat));
    expect(event.data!.signal_kwargs.update_fields).to.deep.equal(['body']);
    const same = defaultFormat.build(updateOf(docs, after, { id: 1, body: jsonb('{"n": 12345678901234567891}') }), ctx(defaultFormat));
    expect(same.data!.signal_kwargs.update_fields).to.deep.equal([]);
  });

  it('a jsonb primary key is written with its digits in subject and partitionkey', () => {
    const event = defaultFormat.build(insertOf(byJson, { k: jsonb(`{"n": ${BIG}}`), note: 'x' }), ctx(defaultFormat, byJson));
    expect(event.subject).to.equal(`DCE:public.by_json/{"n":${BIG}}`);
    expect((event as unknown as Record<string, unknown>).partitionkey).to.equal(`public.by_json/{"n":${BIG}}`);
  });

  it('django format: str() of the JSONField shows the digits the database holds', () => {
    expect(pyStr(jsonb(`{"big": ${BIG}, "d": ${LONG}, "l": [1.50, -1]}`), OID.jsonb))
      .to.equal(`{'big': ${BIG}, 'd': ${LONG}, 'l': [1.50, -1]}`);
    expect(pyStr(jsonb(BIG), OID.jsonb)).to.equal(BIG);
    const event = djangoFormat.build(insertOf(docs, { id: 7, body: jsonb(`[${BIG}]`) }), ctx(djangoFormat));
    expect(event.data!.data).to.deep.equal({ id: '7', body: `[${BIG}]` });
  });
});
