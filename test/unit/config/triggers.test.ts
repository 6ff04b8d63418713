import { expect } from 'chai';
import { loadConfig } from '../../../src/config/load';
import { configError, TempFiles } from './helpers';

const ENV = Object.freeze({ DATABASE_URL: 'postgres://app@127.0.0.1:5432/app' });

describe('config/load: triggers', () => {
  let temp: TempFiles;
  beforeEach(() => (temp = new TempFiles()));
  afterEach(() => temp.cleanup());

  const load = (yaml: string) => loadConfig({ env: { ...ENV }, configPath: temp.write('c.yaml', `tables: [shop.orders, other]\n${yaml}`) });
  const problems = (yaml: string) =>
    configError({ env: { ...ENV }, configPath: temp.write('c.yaml', `tables: [shop.orders, other]\n${yaml}`) }).problems;

  it('resolves a rule: tables like `tables`, active by default, the cloudevent action', () => {
    const config = load(`triggers:
  - name: big-sale
    tables: [shop.orders]
    on: [post_save]
    columns: [quantity]
    filters: [{ exact: { app: shop } }]
    when: "data.quantity > 10"
    payload: { q: "{{ quantity }}" }
    actions: [{ cloudevent: { type: com.example.sale } }, { cloudevent: {} }]
`);
    expect(config.events.enabled).to.equal(true);
    expect(config.triggers).to.deep.equal([{
      name: 'big-sale', active: true, tables: [{ schema: 'shop', name: 'orders' }], on: ['post_save'], columns: ['quantity'],
      filters: [{ exact: { app: 'shop' } }], when: 'data.quantity > 10', payload: { q: '{{ quantity }}' },
      actions: [{ cloudevent: { type: 'com.example.sale' } }, { cloudevent: {} }],
    }]);
  });

  it('an action is exactly one kind: none or two are refused by key path, an unknown key by the schema', () => {
    expect(problems(`triggers:
  - name: a
    tables: [shop.orders]
    on: [insert]
    actions: [{ webhook: { url: "https://hooks.example.com/" }, cloudevent: {} }, { payload: { x: 1 } }]
`)).to.deep.equal([
      'triggers[0].actions[0]: has cloudevent and webhook; an action is of one kind (write one action for each)',
      'triggers[0].actions[1]: must be one of { cloudevent: { type?: … } }, { webhook: { url, method?, headers? } }, ' +
        '{ broker: <a name of brokers>, params?: { … } } (got payload)',
    ]);
    expect(problems(`triggers:
  - name: a
    tables: [shop.orders]
    on: [insert]
    actions: [{ email: x }]
`)[0]).to.match(/^triggers\[0\]\.actions\[0\]\.email: unknown key \(allowed: cloudevent, webhook, broker, /);
  });

  it('names every compile problem by its key path: filters, when, transform, payload, tables, names', () => {
    const found = problems(`triggers:
  - name: a
    tables: [shop.orders, public.missing]
    on: [insert]
    filters: [{ exact: { Type: x } }]
    when: "data.("
    actions: [{ cloudevent: { type: "" } }]
  - name: a
    tables: [shop.orders]
    on: [update]
    payload: { x: "{{ }}" }
    transform: "data"
    actions: [{ cloudevent: {} }]
`);
    expect(found).to.have.length(7);
    expect(found[0]).to.equal('triggers[0].tables[1]: public.missing is not captured; add it to tables (or PG_CLOUDEVENTS_TABLES)');
    expect(found[1]).to.equal('triggers[0].actions[0].cloudevent.type: must be a non-empty string');
    expect(found[2]).to.match(/^triggers\[0\]\.filters\[0\]\.exact/);
    expect(found[3]).to.match(/^triggers\[0\]\.when: JSONata syntax error/);
    expect(found[4]).to.equal('triggers[1].name: "a" is already the name of triggers[0]; names must be unique');
    expect(found[5]).to.equal('triggers[1]: payload and transform are exclusive (transform computes the payload); keep one');
    expect(found[6]).to.match(/^triggers\[1\]\.payload\.x: /);
  });

  it('the schema checks the shape: on, name, required keys', () => {
    const found = problems(`triggers:
  - name: Big Sale
    tables: [shop.orders]
    on: [saved]
    actions: []
`);
    expect(found.some((p) => p.startsWith('triggers[0].name'))).to.equal(true);
    expect(found.some((p) => p.startsWith('triggers[0].on[0]'))).to.equal(true);
    expect(found.some((p) => p.startsWith('triggers[0].actions'))).to.equal(true);
  });

  it('events.enabled: false needs an active trigger, or the triggers table', () => {
    expect(problems('events: { enabled: false }\ntriggersTable: { enabled: false }\n')).to.deep.equal([
      'events.enabled: false delivers no default events, and no active trigger is configured (nor triggersTable enabled), so nothing would be delivered',
    ]);
    // Rules may come from the table at runtime.
    expect(load('events: { enabled: false }\n').triggersTable).to.deep.equal({ enabled: true, reloadIntervalMs: 30_000 });
    const config = load(`events: { enabled: false }
triggers: [{ name: t, tables: [other], on: [delete], actions: [{ cloudevent: {} }] }]
`);
    expect(config.events.enabled).to.equal(false);
    expect(config.triggers![0].tables).to.deep.equal([{ schema: 'public', name: 'other' }]);
  });
  it('types: a rule over application events, without tables or on', () => {
    const config = load(`triggers:
  - name: welcome
    types: [com.example.signup, com.example.upgrade]
    when: "data.plan = 'pro'"
    payload: { plan: "{{ plan }}" }
    actions: [{ cloudevent: {} }]
`);
    expect(config.triggers).to.deep.equal([{
      name: 'welcome', active: true, tables: [], on: [], types: ['com.example.signup', 'com.example.upgrade'],
      when: "data.plan = 'pro'", payload: { plan: '{{ plan }}' }, actions: [{ cloudevent: {} }],
    }]);
  });

  it('types and tables are exclusive; one is required; on and columns do not go with types; on goes with tables', () => {
    const rule = (select: string) => problems(`triggers:
  - name: a
${select}
    actions: [{ cloudevent: {} }]
`);
    expect(rule('    tables: [shop.orders]\n    on: [insert]\n    types: [t]')).to.deep.equal([
      'triggers[0]: tables and types are exclusive (a rule reads either table changes or application events); keep one, or write two rules',
    ]);
    expect(rule('    active: true')).to.deep.equal(['triggers[0]: required: tables (with on) for table changes, or types for application events']);
    expect(rule('    types: [t]\n    on: [insert]\n    columns: [x]')).to.deep.equal([
      'triggers[0].on: does not apply to application events (types); remove it',
      'triggers[0].columns: does not apply to application events (types); remove it',
    ]);
    expect(rule('    tables: [shop.orders]')).to.deep.equal(['triggers[0].on: required with tables']);
    expect(rule('    types: []')).to.deep.equal(['triggers[0].types: must NOT have fewer than 1 items']);
  });
});
