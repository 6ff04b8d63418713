import { expect } from 'chai';
import type { CloudEvent } from 'cloudevents';
import type { Config, TriggerConfig } from '../../../../src/config/types';
import { DeliveryError } from '../../../../src/errors';
import { buildAppEvent } from '../../../../src/events/app-event';
import { RawJson } from '../../../../src/events/json-text';
import { createRouter } from '../../../../src/routing';
import { derivedEventId } from '../../../../src/routing/triggers';
import { triggerContext } from '../../../../src/routing/triggers/context';
import { compileTransform } from '../../../../src/routing/triggers/expressions';
import type { Destination, Sink } from '../../../../src/sinks/types';
import type { Change, MessageChange } from '../../../../src/sources/change';
import { insertOf } from '../../events/fixtures';
import { eventOf, orderRow, orders } from './events';

const signup = (data: unknown = { plan: 'pro', user: { id: 42, email: 'ada@example.com' }, n: new RawJson('12345678901234567890') }, type = 'com.example.signup'): MessageChange => ({
  kind: 'message', prefix: 'pgcloudevents', event: { type, subject: 'user/42', data, extensions: { tenant: 'acme' } },
  commitLsn: 0x16b3748n, commitTime: new Date('2024-05-01T10:00:00.000Z'), xid: 7, ordinal: 2,
});

const build = (c: Change): CloudEvent<unknown> =>
  c.kind === 'message' ? buildAppEvent(c, { source: '/pg-cloudevents/shop', overrides: {} }) : eventOf(c);

function routerOf(triggers: TriggerConfig[]) {
  const sent: CloudEvent<unknown>[] = [];
  const sink: Sink = { name: 'mem', send: async (e) => void sent.push(e), close: async () => {}, describe: () => 'mem' };
  const handler: Destination = { name: 'http', sink, batchSize: 1 };
  const config = { handler: 'http', events: { enabled: true, format: 'default', typePrefix: 'orm', overrides: {} }, triggers } as unknown as Config;
  const router = createRouter({ config, buildEvent: build, destination: () => handler });
  const route = (c: Change) => {
    const out: { destination: Destination; event: CloudEvent<unknown> }[] = [];
    router.route(c, (destination, event) => out.push({ destination, event }));
    return out;
  };
  return { route, sent };
}

const typeRule = (over: Partial<TriggerConfig> = {}): TriggerConfig =>
  ({ name: 'welcome', active: true, tables: [], on: [], types: ['com.example.signup'], actions: [{ cloudevent: {} }], ...over });
const names = (out: { destination: Destination }[]) => out.map((d) => d.destination.name);

describe('routing: trigger rules over application events (types)', () => {
  it('a rule over types matches its types only; a table rule never matches an application event, nor a type rule a row', () => {
    const tableRule: TriggerConfig = { name: 'orders', active: true, tables: [{ schema: 'shop', name: 'orders' }], on: ['post_save'], actions: [{ cloudevent: {} }] };
    const { route } = routerOf([typeRule(), tableRule]);
    expect(names(route(signup()))).to.deep.equal(['http', 'trigger:welcome/0']);
    expect(names(route(signup({}, 'com.example.other')))).to.deep.equal(['http']);
    expect(names(route(insertOf(orders, orderRow())))).to.deep.equal(['http', 'trigger:orders/0']);
    expect(names(routerOf([typeRule({ active: false })]).route(signup()))).to.deep.equal(['http']);
  });

  it('filters read the application event attributes and extensions', () => {
    expect(names(routerOf([typeRule({ filters: [{ exact: { tenant: 'acme', subject: 'user/42' } }] })]).route(signup()))).to.deep.equal(['http', 'trigger:welcome/0']);
    expect(names(routerOf([typeRule({ filters: [{ exact: { tenant: 'other' } }] })]).route(signup()))).to.deep.equal(['http']);
  });

  it('renders the payload from the data: members at the top level, data and event roots; when reads data; the id scheme holds', async () => {
    const { route, sent } = routerOf([
      typeRule({
        payload: { plan: '{{ plan }}', email: '{{ user.email }}', whole: '{{ data.plan }}', n: '{{ n }}', type: '{{ event.type }}', subject: '{{ event.subject }}', tenant: '{{ event.tenant }}' },
        actions: [{ cloudevent: { type: 'com.example.welcome' } }],
      }),
      typeRule({ name: 'free-only', when: "data.plan = 'free'" }),
    ]);
    const [original, welcome, freeOnly] = route(signup());
    await welcome.destination.sink.send(welcome.event);
    await freeOnly.destination.sink.send(freeOnly.event);
    expect(sent).to.have.length(1);
    const [a] = sent;
    expect(a.type).to.equal('com.example.welcome');
    expect(a.id).to.equal(derivedEventId(original.event.id, 'welcome', 0));
    expect(a.subject).to.equal('user/42');
    expect(a.data).to.deep.equal({
      plan: 'pro', email: 'ada@example.com', whole: 'pro', n: new RawJson('12345678901234567890'),
      type: 'com.example.signup', subject: 'user/42', tenant: 'acme',
    });
  });

  it('without a payload the data goes as it is; a missing member is a final error naming members and roots', async () => {
    const { route, sent } = routerOf([typeRule(), typeRule({ name: 'broken', payload: { x: '{{ customer.name }}' } })]);
    const [, plain, broken] = route(signup({ plan: 'pro' }));
    await plain.destination.sink.send(plain.event);
    expect(sent[0].data).to.deep.equal({ plan: 'pro' });
    const err = await broken.destination.sink.send(broken.event).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(DeliveryError);
    expect((err as DeliveryError).retriable).to.equal(false);
    expect((err as Error).message).to.equal(
      "triggers[1].payload.x: {{ customer.name }}: the application event's data has no member customer (members: plan; roots: data, event)");
  });

  it('data that is not an object: reached as {{ data }}; JSONata sees data and event', async () => {
    const context = triggerContext(build(signup([1, 2, 3])), { appEvent: true });
    expect(context.root('data')).to.deep.equal([1, 2, 3]);
    expect(context.names()).to.deep.equal({ columns: [], roots: ['data', 'event'] });
    const sum = compileTransform('{"sum": $sum(data), "type": event.type, "instance": instance}', 't');
    expect(await sum.evaluate(context)).to.deep.equal({ sum: 6, type: 'com.example.signup' });
  });
});
