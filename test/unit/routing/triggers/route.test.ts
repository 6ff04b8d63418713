import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import type { Config, TriggerConfig } from '../../../../src/config/types';
import { DeliveryError } from '../../../../src/errors';
import { createRouter } from '../../../../src/routing';
import { ActionReplay, derivedEventId } from '../../../../src/routing/triggers';
import type { Destination, Sink } from '../../../../src/sinks/types';
import type { Change } from '../../../../src/sources/change';
import { deleteOf, insertOf, updateOf } from '../../events/fixtures';
import { eventOf, orderRow, orders } from './events';

/** The default sink, in memory: what the action destinations end up sending. */
function memorySink() {
  const sent: CloudEvent<unknown>[] = [];
  const sink: Sink = { name: 'mem', send: async (e) => void sent.push(e), close: async () => {}, describe: () => 'mem' };
  return { sink, sent };
}

function rule(over: Partial<TriggerConfig> = {}): TriggerConfig {
  return { name: 'big-sale', active: true, tables: [{ schema: 'shop', name: 'orders' }], on: ['post_save'], actions: [{ cloudevent: {} }], ...over };
}

function routerOf(triggers: TriggerConfig[], enabled = true, onBuild: () => void = () => undefined) {
  const { sink, sent } = memorySink();
  const handler: Destination = { name: 'http', sink, batchSize: 1 };
  const config = { handler: 'http', events: { enabled, format: 'default', typePrefix: 'orm', overrides: {} }, triggers } as unknown as Config;
  const router = createRouter({ config, buildEvent: (c) => (onBuild(), eventOf(c)), destination: () => handler });
  const route = (c: Change) => {
    const out: { destination: Destination; event: CloudEvent<unknown> }[] = [];
    router.route(c, (destination, event) => out.push({ destination, event }));
    return out;
  };
  return { router, route, sent, handler };
}

const names = (deliveries: { destination: Destination }[]) => deliveries.map((d) => d.destination.name);
const insert = () => insertOf(orders, orderRow());
const update = (over: Record<string, unknown>, old: Record<string, unknown> | null = orderRow(), keyOnly = false) =>
  updateOf(orders, orderRow(over), old ?? undefined, keyOnly);

describe('routing: the trigger rule kind', () => {
  it('a matching change is delivered to the default handler and once per action, each action under its own event id', () => {
    let built = 0;
    const { route, router } = routerOf([rule({ actions: [{ cloudevent: {} }, { cloudevent: { type: 'x.y' } }] })], true, () => built++);
    const out = route(insert());
    expect(built, 'the change event is built once for every route').to.equal(1);
    expect(names(out)).to.deep.equal(['http', 'trigger:big-sale/0', 'trigger:big-sale/1']);
    // What a dead letter of the action stores: its own id and type, the change's data (not rendered).
    expect(out[1].event.id).to.equal(derivedEventId(out[0].event.id, 'big-sale', 0));
    expect(out[1].event.type).to.equal('orm.trigger.big-sale');
    expect(out[2].event.type).to.equal('x.y');
    expect(out[1].event.trigger).to.equal('big-sale');
    expect(out[1].event.data).to.equal(out[0].event.data);
    expect(names(router.destinations.map((destination) => ({ destination })))).to.deep.equal(['http', 'trigger:big-sale/0', 'trigger:big-sale/1']);
    expect(router.destinations.every((d) => d.batchSize === 1)).to.equal(true);
  });

  it('sends nothing for an inactive rule, another table, another operation', () => {
    expect(names(routerOf([rule({ active: false })]).route(insert()))).to.deep.equal(['http']);
    expect(names(routerOf([rule({ tables: [{ schema: 'public', name: 'orders' }] })]).route(insert()))).to.deep.equal(['http']);
    expect(names(routerOf([rule({ on: ['post_delete'] })]).route(insert()))).to.deep.equal(['http']);
    expect(names(routerOf([rule({ on: ['update'] })]).route(insert()))).to.deep.equal(['http']);
    expect(names(routerOf([rule({ on: ['post_delete'] })]).route(deleteOf(orders, { id: 7 })))).to.deep.equal(['http', 'trigger:big-sale/0']);
    expect(names(routerOf([rule({ on: ['insert'] })]).route(insert()))).to.deep.equal(['http', 'trigger:big-sale/0']);
  });

  it('columns: an update fires only when one of them changed; inserts always; unknown previous row fires', () => {
    const { route } = routerOf([rule({ columns: ['quantity', 'note'] })]);
    expect(names(route(update({ quantity: 13 })))).to.deep.equal(['http', 'trigger:big-sale/0']);
    expect(names(route(update({ customer_name: 'Bob' })))).to.deep.equal(['http']);
    expect(names(route(insert()))).to.deep.equal(['http', 'trigger:big-sale/0']);
    // REPLICA IDENTITY DEFAULT: no previous row (or its key only): what changed is unknown, so it fires.
    expect(names(route(update({ customer_name: 'Bob' }, null)))).to.deep.equal(['http', 'trigger:big-sale/0']);
    expect(names(route(update({ customer_name: 'Bob' }, { id: 7 }, true)))).to.deep.equal(['http', 'trigger:big-sale/0']);
  });

  it('filters read the default event attributes', () => {
    expect(names(routerOf([rule({ filters: [{ exact: { app: 'shop' } }] })]).route(insert()))).to.deep.equal(['http', 'trigger:big-sale/0']);
    expect(names(routerOf([rule({ filters: [{ exact: { tenant: 'other' } }] })]).route(insert()))).to.deep.equal(['http']);
  });

  it('events.enabled: false delivers only the actions', () => {
    const { route, router } = routerOf([rule()], false);
    expect(names(route(insert()))).to.deep.equal(['trigger:big-sale/0']);
    expect(router.destinations.map((d) => d.name)).to.deep.equal(['trigger:big-sale/0']);
  });

  it('the action sends a derived event: rendered payload, type, trigger extension, the change event attributes, a deterministic id', async () => {
    const { route, sent } = routerOf([rule({
      payload: { q: '{{ quantity }}', label: 'sale {{ id }}', t: '{{ event.type }}' },
      actions: [{ cloudevent: {} }, { cloudevent: { type: 'com.example.sale' } }],
    })]);
    const [original, first, second] = route(insert());
    await first.destination.sink.send(first.event);
    await second.destination.sink.send(second.event);
    await first.destination.sink.send(first.event); // a redelivery
    const [a, b, again] = sent;
    // `event` in templates is the change's event, not the derived one.
    expect(a.data).to.deep.equal({ q: 12, label: 'sale 7', t: 'orm.post_save' });
    expect(a.datacontenttype).to.equal('application/json');
    expect(a.type).to.equal('orm.trigger.big-sale');
    expect(b.type).to.equal('com.example.sale');
    expect(a.trigger).to.equal('big-sale');
    expect(a.id).to.equal(first.event.id);
    for (const name of ['source', 'subject', 'time', 'partitionkey', 'app', 'model', 'tenant', 'sequence']) {
      expect(a[name], name).to.equal((original.event as Record<string, unknown>)[name]);
    }
    expect(a.id).to.equal(derivedEventId(original.event.id, 'big-sale', 0));
    expect(b.id).to.equal(derivedEventId(original.event.id, 'big-sale', 1));
    expect(a.id).to.not.equal(b.id).and.not.equal(original.event.id);
    expect(again.id).to.equal(a.id);
  });

  it('when false: the delivery is done without sending; a render error is a final DeliveryError', async () => {
    const { route, sent } = routerOf([
      rule({ name: 'small', when: 'data.quantity < 5' }),
      rule({ name: 'broken', payload: { x: '{{ nope }}' } }),
    ]);
    const [, small, broken] = route(insert());
    await small.destination.sink.send(small.event);
    expect(sent).to.have.length(0);
    const err = await broken.destination.sink.send(broken.event).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(DeliveryError);
    expect((err as DeliveryError).retriable).to.equal(false);
    expect((err as Error).message).to.match(/^triggers\[1\]\.payload\.x: \{\{ nope \}\}: the row has no column nope/);
    expect(broken.destination.sink.describe()).to.equal('trigger:broken/0 → mem');
  });

  it('builds no event for a change no rule matches on table and operation, with the default route off', () => {
    const config = { handler: 'http', events: { enabled: false, typePrefix: 'orm' }, triggers: [rule({ on: ['delete'] })] } as unknown as Config;
    let built = 0;
    const router = createRouter({ config, buildEvent: (c) => (built++, eventOf(c)), destination: () => ({ name: 'http', sink: memorySink().sink, batchSize: 1 }) });
    router.route(insert(), () => expect.fail('no delivery'));
    expect(built).to.equal(0);
  });

  it('replay: an action event goes through its rule again; a default event (even with a trigger extension) to the sink itself', async () => {
    const triggers = [rule({ payload: { q: '{{ quantity }}' }, actions: [{ cloudevent: {} }, { cloudevent: { type: 'x.y' } }] })];
    const { route } = routerOf(triggers);
    const [original, , second] = route(insert());
    const config = { handler: 'http', events: { typePrefix: 'orm' }, triggers } as unknown as Config;
    const { sink, sent } = memorySink();
    // A stored event, read back: not the object routed in this process.
    const stored = new CloudEvent<unknown>({ ...second.event }, false);
    const replay = new ActionReplay(config);
    const target = replay.sinkFor(stored, sink);
    expect(target).to.not.equal(sink);
    await (target as Sink).send(stored);
    expect(sent[0]).to.include({ id: second.event.id, type: 'x.y', trigger: 'big-sale' });
    expect(sent[0].data).to.deep.equal({ q: 12 });
    expect(replay.sinkFor(stored, sink), 'made once per action').to.equal(target);
    expect(replay.sinkFor(original.event, sink)).to.equal(sink);
    const overridden = new CloudEvent<unknown>({ ...original.event, trigger: 'big-sale' }, false);
    expect(replay.sinkFor(overridden, sink)).to.equal(sink);
    const gone = new ActionReplay({ ...config, triggers: [] } as Config).sinkFor(stored, sink);
    expect((gone as Error).message).to.match(/^the event of trigger big-sale cannot be replayed: no trigger of that name is configured/);
  });
});
