import { expect } from 'chai';
import type { CloudEvent } from 'cloudevents';
import type { Config } from '../../../src/config/types';
import { createRouter } from '../../../src/routing';
import type { RouteKind, RoutingContext } from '../../../src/routing/contract';
import type { Destination, Sink } from '../../../src/sinks/types';
import type { Change } from '../../../src/sources/change';
import { buildEvent, change } from '../delivery/engine-harness';

function destinationNamed(name: string): Destination {
  const sink = { name, describe: () => name } as unknown as Sink;
  return { name, sink, batchSize: 1 };
}

/** A routing context whose destinations are resolved once per name, as the composition root's are. */
function context(handler: string, build: (c: Change) => CloudEvent<unknown> = buildEvent) {
  const resolved = new Map<string, Destination>();
  const asked: string[] = [];
  const ctx: RoutingContext = {
    config: { handler } as Config,
    buildEvent: build,
    destination(name) {
      asked.push(name);
      if (!resolved.has(name)) resolved.set(name, destinationNamed(name));
      return resolved.get(name)!;
    },
  };
  return { ctx, resolved, asked };
}

function route(router: ReturnType<typeof createRouter>, c: Change) {
  const out: { destination: Destination; event: CloudEvent<unknown> }[] = [];
  router.route(c, (destination, event) => out.push({ destination, event }));
  return out;
}

describe('routing: the default route', () => {
  it('delivers each change once: its default event to the destination named default (the registry resolves it to the handler)', () => {
    const built: { change: Change; event: CloudEvent<unknown> }[] = [];
    const { ctx, resolved } = context('kafka-orders', (c) => {
      const event = buildEvent(c);
      built.push({ change: c, event });
      return event;
    });
    const router = createRouter(ctx);
    const c = change('k', 7, 0x100n, 3);
    const deliveries = route(router, c);
    expect(deliveries).to.have.length(1);
    expect([...resolved.keys()]).to.deep.equal(['default']);
    expect(deliveries[0].destination).to.equal(resolved.get('default'));
    expect(built).to.have.length(1);
    expect(built[0].change).to.equal(c);
    expect(deliveries[0].event).to.equal(built[0].event);
    expect(router.destinations).to.deep.equal([resolved.get('default')]);
  });

  it('resolves the destination once, when the router is built, not per change', () => {
    const { ctx, asked } = context('http');
    const router = createRouter(ctx);
    route(router, change('a', 1, 1n));
    route(router, change('b', 2, 2n));
    expect(asked).to.deep.equal(['default']);
  });

  it('an event that cannot be built throws before anything is delivered', () => {
    const { ctx } = context('http', () => {
      throw new Error('no event');
    });
    const router = createRouter(ctx);
    expect(() => route(router, change('k', 1, 1n))).to.throw('no event');
  });
});

describe('routing: several rule kinds', () => {
  it('routes kind after kind, and lists each destination once', () => {
    const { ctx, resolved } = context('http');
    const audit: RouteKind = ({ destination, buildEvent: build }) => {
      const to = destination('audit');
      // Twice on purpose: a kind may name a destination the default route or another kind names.
      destination('http');
      return [{ route: (c, deliver) => deliver(to, build(c)) }];
    };
    const nothing: RouteKind = () => [];
    const defaultKind: RouteKind = ({ config, destination, buildEvent: build }) => {
      const to = destination(config.handler);
      return [{ route: (c, deliver) => deliver(to, build(c)) }];
    };
    const router = createRouter(ctx, [defaultKind, nothing, audit]);
    const deliveries = route(router, change('k', 1, 1n));
    expect(deliveries.map((d) => d.destination.name)).to.deep.equal(['http', 'audit']);
    expect(router.destinations).to.deep.equal([resolved.get('http'), resolved.get('audit')]);
  });
});
