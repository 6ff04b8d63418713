import type { Destination } from '../sinks/types';
import type { Change } from '../sources/change';
import type { CloudEvent } from 'cloudevents';
import type { Deliver, KindContext, Route, RouteKind, Router, RoutingContext } from './contract';
import { defaultRoute } from './default';
import { triggersRoute } from './triggers';
import { tableTriggersRoute } from './triggers/runtime';
import { workflowsRoute } from './workflows';

/**
 * The routing registry: each kind of rule builds its routes from the configuration. A new kind is
 * one folder (src/routing/<kind>/ exporting a RouteKind; ./contract.ts says what a route must keep)
 * and one line here. Kinds route in this order.
 */
const ROUTE_KINDS: readonly RouteKind[] = [
  defaultRoute,
  triggersRoute,
  tableTriggersRoute,
  workflowsRoute,
];

/** The router of a configuration: every kind's routes, and the destinations they name. */
export function createRouter(context: RoutingContext, kinds: readonly RouteKind[] = ROUTE_KINDS): Router {
  const destinations: Destination[] = [];
  // Several kinds read the same change's default event: it is built once per change (the last
  // change's event is kept), so the default route and every trigger share one object.
  let lastChange: Change | undefined;
  let lastEvent: CloudEvent<unknown> | undefined;
  const resolving: KindContext = {
    ...context,
    buildEvent(change) {
      if (change !== lastChange || lastEvent === undefined) {
        lastEvent = undefined;
        lastEvent = context.buildEvent(change);
        lastChange = change;
      }
      return lastEvent;
    },
    destination(name) {
      const d = context.destination(name);
      if (!destinations.includes(d)) destinations.push(d);
      return d;
    },
    sink: (name) => context.destination(name).sink,
  };
  const routes = kinds.flatMap((kind) => kind(resolving));
  for (const r of routes) {
    if (r.dynamic) continue;
    for (const d of r.destinations ?? []) if (!destinations.includes(d)) destinations.push(d);
  }
  // Routes whose destinations change at runtime are asked again each time (the engine drops a
  // lane made at runtime once its destination is no longer named here and it is idle).
  const dynamic = routes.filter((r) => r.dynamic);
  const current = dynamic.length === 0 ? () => destinations : () => [...destinations, ...dynamic.flatMap((r) => r.destinations ?? [])];
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= closeRoutes(routes));
  // One route (the default alone) is called directly: no loop on the hot path.
  if (routes.length === 1) {
    const only = routes[0];
    return { route: only.route.bind(only), get destinations() { return current(); }, close };
  }
  return {
    get destinations() {
      return current();
    },
    close,
    route(change: Change, deliver: Deliver) {
      for (let i = 0; i < routes.length; i++) routes[i].route(change, deliver);
    },
  };
}

async function closeRoutes(routes: readonly Route[]): Promise<void> {
  const results = await Promise.allSettled(routes.map((r) => r.close?.()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

export type { Deliver, KindContext, Route, RouteKind, Router, RoutingContext } from './contract';
