import { expect } from 'chai';
import type { CloudEvent } from 'cloudevents';
import type { Config } from '../../../../src/config/types';
import { DeliveryError, ErrorCodes } from '../../../../src/errors';
import { createRouter } from '../../../../src/routing';
import { workflowReplayRefusal } from '../../../../src/routing/workflows';
import type { Destination, Sink } from '../../../../src/sinks/types';
import type { Change, MessageChange } from '../../../../src/sources/change';
import { buildAppEvent } from '../../../../src/events/app-event';
import { parseWorkflowsConfig } from '../../../../src/workflows/config';
import type { InputEvent, WorkflowStore } from '../../../../src/workflows/store';
import { deleteOf, insertOf, truncateOf, updateOf } from '../../events/fixtures';
import { eventOf, orderRow, orders } from '../triggers/events';
import { runContext } from '../../../../src/workflow-runs/context';
import { compilePayload } from '../../../../src/routing/triggers/payload';

/** A store that records what was fired, or fails as told. */
function fakeStore(fail?: () => Error) {
  const fired: { session: string; event: InputEvent }[] = [];
  const store = {
    async fire(session: string, event: InputEvent) {
      if (fail) throw fail();
      fired.push({ session, event });
      return { applied: true, scheduled: [] };
    },
  } as unknown as WorkflowStore;
  return { store, fired };
}

const signup = (data: unknown): MessageChange => ({
  kind: 'message', prefix: 'pgcloudevents', event: { type: 'com.example.signup', subject: 'user/3', data, extensions: {} },
  commitLsn: 0x16b3748n, commitTime: new Date('2024-05-01T10:00:00.000Z'), xid: 7, ordinal: 1,
});

const build = (c: Change): CloudEvent<unknown> =>
  c.kind === 'message' ? buildAppEvent(c, { source: '/pg-cloudevents/shop', overrides: {} }) : eventOf(c);

function routerOf(session = 'data.customer_id', fail?: () => Error) {
  const { workflows } = parseWorkflowsConfig({
    redis: { url: 'redis://127.0.0.1:6379' },
    workflows: [{
      name: 'orders-flow',
      session,
      events: {
        big: { table: 'shop.orders', on: ['post_save'], when: 'data.quantity > 10' },
        any: { table: 'shop.orders', on: ['insert', 'delete'] },
        signup: { type: 'com.example.signup', when: "data.plan = 'pro'" },
      },
      tasks: { t_a: { after: ['big', 'any'], run: { cloudevent: {} } } },
    }],
  }, {});
  const { store, fired } = fakeStore(fail);
  const sink: Sink = { name: 'mem', send: async () => {}, close: async () => {}, describe: () => 'mem' };
  const handler: Destination = { name: 'http', sink, batchSize: 1 };
  const config = {
    handler: 'http', events: { enabled: false, format: 'default', typePrefix: 'orm', overrides: {} }, workflows, delivery: { timeoutMs: 1000 },
  } as unknown as Config;
  const router = createRouter({ config, buildEvent: build, destination: () => handler, workflows: new Map([['orders-flow', store]]) });
  const route = (c: Change) => {
    const out: { destination: Destination; event: CloudEvent<unknown> }[] = [];
    router.route(c, (destination, event) => out.push({ destination, event }));
    return out;
  };
  return { router, route, fired };
}

describe('routing: the workflow route kind', () => {
  it('a selected change is one delivery to workflow:<name> under its own id; other operations are not', () => {
    const { route, router } = routerOf();
    const [one, ...more] = route(insertOf(orders, orderRow()));
    expect(more).to.deep.equal([]);
    expect(one.destination.name).to.equal('workflow:orders-flow');
    expect(one.event.id).to.match(/\/workflow\/orders-flow$/);
    expect(one.event.workflow).to.equal('orders-flow');
    expect(router.destinations.map((d) => d.name)).to.deep.equal(['workflow:orders-flow']);
    expect(route(truncateOf(orders)), 'no input selects a truncate').to.deep.equal([]);
  });

  it('sends each matched input whose when holds, in the file order, keyed by the change event id and the input, valued by the row', async () => {
    const { route, fired } = routerOf();
    const [d] = route(insertOf(orders, orderRow({ quantity: 12 })));
    expect(await d.destination.sink.send(d.event)).to.equal(undefined);
    const changeId = d.event.id.replace(/\/workflow\/orders-flow$/, '');
    expect(fired.map((f) => [f.session, f.event.input, f.event.eventId])).to.deep.equal([['3', 'big', `${changeId}/big`], ['3', 'any', `${changeId}/any`]]);
    expect(fired[0].event.data).to.deep.include({ id: 7, quantity: 12 });
  });

  it('a when that is false leaves the other inputs; none left is a skipped delivery', async () => {
    const { route, fired } = routerOf();
    const [small] = route(insertOf(orders, orderRow({ quantity: 1 })));
    await small.destination.sink.send(small.event);
    expect(fired.map((f) => f.event.input)).to.deep.equal(['any']);
    const [update] = route(updateOf(orders, orderRow({ quantity: 1 }), orderRow(), false));
    expect(await update.destination.sink.send(update.event)).to.deep.equal({ skipped: true });
    const [del] = route(deleteOf(orders, { id: 7, customer_id: 3 }));
    await del.destination.sink.send(del.event);
    expect(fired.at(-1)?.event.data, 'a delete: the old row').to.deep.include({ id: 7 });
  });

  it('a session with no value is final, naming the workflow and the expression', async () => {
    const { route } = routerOf('data.nope');
    const [d] = route(insertOf(orders, orderRow()));
    const err = await d.destination.sink.send(d.event).then(() => undefined, (e: unknown) => e as DeliveryError);
    expect(err).to.be.instanceOf(DeliveryError);
    expect(err!.retriable).to.equal(false);
    expect(err!.code).to.equal(ErrorCodes.WORKFLOW_SESSION);
    expect(err!.message).to.include('workflow orders-flow: its session "data.nope" has no value for this change');
    const [obj] = routerOf('data.meta').route(insertOf(orders, orderRow()));
    const notText = await obj.destination.sink.send(obj.event).then(() => undefined, (e: unknown) => e as DeliveryError);
    expect(notText!.message).to.match(/not a non-empty string or a number/);
  });

  it('Redis failing is retriable (the change stays unacknowledged)', async () => {
    const { route } = routerOf('data.customer_id', () => new Error('connect ECONNREFUSED 127.0.0.1:1'));
    const [d] = route(insertOf(orders, orderRow()));
    const err = await d.destination.sink.send(d.event).then(() => undefined, (e: unknown) => e as DeliveryError);
    expect(err!.retriable).to.equal(true);
    expect(err!.code).to.equal(ErrorCodes.WORKFLOW_REDIS);
    expect(err!.message).to.include('ECONNREFUSED');
  });

  it('dead-letters replay refuses a workflow row (run or input), naming the way out; other events pass', () => {
    expect(workflowReplayRefusal({ id: 'workflow:wf/1/t_a#0@1', workflow: 'wf', subject: 'wf/1/t_a#0' })?.message).to.include('workflows replay');
    expect(workflowReplayRefusal({ id: 'x/workflow/wf', workflow: 'wf' })?.message).to.include('change the row again');
    expect(workflowReplayRefusal({ id: 'x' })).to.equal(undefined);
  });

  it("a run's payload template reads inputs, session and instance", () => {
    const template = compilePayload({ order: '{{ session }}', name: '{{ instance }}', amount: '{{ inputs.paid.amount }}', all: '{{ inputs }}' }, 'p');
    const payload = { paid: { amount: 12 } };
    expect(template.render(runContext({ payload, session: '42', instance: 't_ship#0' }))).to.deep.equal({ order: '42', name: 't_ship#0', amount: 12, all: payload });
    expect(() => template.render(runContext({ payload: {}, session: '42', instance: 't_ship#0' }))).to.throw(/inputs has no paid/);
  });

  it('an input by type: an application event of that type, its when and the session over its data, valued by its data', async () => {
    const { route, fired } = routerOf();
    const [d, ...more] = route(signup({ customer_id: 3, plan: 'pro' }));
    expect(more).to.deep.equal([]);
    expect(d.destination.name).to.equal('workflow:orders-flow');
    expect(await d.destination.sink.send(d.event)).to.equal(undefined);
    const changeId = d.event.id.replace(/\/workflow\/orders-flow$/, '');
    expect(fired.map((f) => [f.session, f.event.input, f.event.eventId, f.event.data]))
      .to.deep.equal([['3', 'signup', `${changeId}/signup`, { customer_id: 3, plan: 'pro' }]]);
    const [free] = route(signup({ customer_id: 3, plan: 'free' }));
    expect(await free.destination.sink.send(free.event)).to.deep.equal({ skipped: true });
    const other = signup({ customer_id: 3, plan: 'pro' });
    other.event.type = 'com.example.other';
    expect(route(other)).to.deep.equal([]);
  });
});
