import type { CloudEvent } from 'cloudevents';
import type { Config } from '../config/types';
import type { Destination, Sink } from '../sinks/types';
import type { Change } from '../sources/change';
import type { RuleSchedule } from '../trigger-rules/schedule';
import type { RelationResolver } from './triggers/relations';
import type { WorkflowStore } from '../workflows/store';

/**
 * Routing: the stage between shaping (src/events) and delivery (src/delivery), where a change
 * becomes zero or more deliveries, each a destination and an event. The delivery engine orders,
 * retries, dead-letters and measures each delivery on its own, per (destination, partition key),
 * and acknowledges the change once all its deliveries are delivered or dead-lettered.
 */

/** Takes one delivery of the change being routed. */
export type Deliver = (destination: Destination, event: CloudEvent<unknown>) => void;

/**
 * One routing rule, compiled: hands the deliveries of `change` to `deliver`, synchronously, zero or
 * more times. It runs once per change on the engine's hot path, so it allocates nothing beyond the
 * events it builds. It throws when an event cannot be built (the change is then dead-lettered as
 * undecodable), and then before its first `deliver` call, so a change is never half routed.
 */
export interface Route {
  route(change: Change, deliver: Deliver): void;
  /**
   * Destinations of the route's own making (not resolved by name), each a lane of the engine: a
   * trigger action's destination wraps the default sink but is ordered, retried and dead-lettered
   * on its own.
   */
  readonly destinations?: readonly Destination[];
  /**
   * True when `destinations` changes at runtime (the triggers table's rules): the router reads it
   * again each time, and the engine makes a lane for a destination when it first sees it.
   */
  readonly dynamic?: boolean;
  /** Closes what the route opened of its own (its destinations' sinks; never a sink resolved by name). */
  close?(): Promise<void>;
}

/** Every rule of the configuration as one Route, and the destinations they deliver to. */
export interface Router extends Route {
  /** Each destination a delivery may name: the engine prepares a lane for each. */
  readonly destinations: readonly Destination[];
  /** Closes every route's own sinks (all are tried; the first failure is thrown). Idempotent. */
  close?(): Promise<void>;
}

/** What a rule kind builds its routes from. */
export interface RoutingContext {
  config: Config;
  /** The change's default event (src/events), in the configured format. */
  buildEvent(change: Change): CloudEvent<unknown>;
  /** A destination by handler name, resolved through the sinks registry (once per name). */
  destination(name: string): Destination;
  /** The triggers table's rule sets in force by commit LSN (README "Rules at runtime"); absent: none. */
  tableRules?: RuleSchedule;
  /** Reads what trigger payloads reach through foreign keys; absent: relations are off. */
  relations?: RelationResolver;
  /** Each configured workflow's state in Redis, by workflow name (src/workflow-runs); needed when workflows are configured. */
  workflows?: ReadonlyMap<string, WorkflowStore>;
}

/** What a kind is given: the routing context, plus sinks a kind wraps in destinations of its own. */
export interface KindContext extends RoutingContext {
  /**
   * The sink of the handler `name`, without making its destination a lane (the same sink object
   * `destination(name)` holds: opened once, closed by the sinks registry).
   */
  sink(name: string): Sink;
}

/** A kind of routing rule: reads its part of the configuration and returns its routes (maybe none). */
export type RouteKind = (context: KindContext) => Route[];
