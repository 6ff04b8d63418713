import type { Destination } from '../sinks/types';
import type { Change } from '../sources/change';
import type { Deliver, RouteKind, Router, RoutingContext } from './contract';
import { defaultRoute } from './default';

/**
 * The routing registry: each kind of rule builds its routes from the configuration. A new kind is
 * one folder (src/routing/<kind>/ exporting a RouteKind; ./contract.ts says what a route must keep)
 * and one line here. Kinds route in this order.
 */
const ROUTE_KINDS: readonly RouteKind[] = [
  defaultRoute,
];

/** The router of a configuration: every kind's routes, and the destinations they name. */
export function createRouter(context: RoutingContext, kinds: readonly RouteKind[] = ROUTE_KINDS): Router {
  const destinations: Destination[] = [];
  const resolving: RoutingContext = {
    ...context,
    destination(name) {
      const d = context.destination(name);
      if (!destinations.includes(d)) destinations.push(d);
      return d;
    },
  };
  const routes = kinds.flatMap((kind) => kind(resolving));
  // One route (the default alone) is called directly: no loop on the hot path.
  if (routes.length === 1) return { route: routes[0].route.bind(routes[0]), destinations };
  return {
    destinations,
    route(change: Change, deliver: Deliver) {
      for (let i = 0; i < routes.length; i++) routes[i].route(change, deliver);
    },
  };
}

export type { Deliver, Route, RouteKind, Router, RoutingContext } from './contract';
