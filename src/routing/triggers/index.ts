/**
 * The trigger rule kind (README, "Triggers"): a change that matches a rule is delivered once per
 * action, each to the action's own destination (`trigger:<rule>/<n>`), so the delivery engine
 * orders, retries and dead-letters every action on its own, and acknowledges the change only once
 * all of them are delivered or dead-lettered.
 *
 * Matching on table, operation, columns and filters is synchronous (routing runs on the engine's
 * hot path); `when` and the payload are JSONata/templates that may be asynchronous, so the action's
 * destination evaluates them when it sends: `when` false is a delivery done without sending, an
 * evaluation or render error a final DeliveryError (dead-lettered with the action's destination).
 */
import type { CloudEvent } from 'cloudevents';
import type { Config } from '../../config/types';
import { createEvent } from '../../events/format';
import type { Destination, SendResult, Sink } from '../../sinks/types';
import type { KindContext, Route, RouteKind } from '../contract';
import { triggerContext } from './context';
import type { RelationResolver } from './relations';
import { compileRule, matchesChange, type CompiledRule } from './rules';

/** The destination name of action `index` (0-based) of `rule`: what logs, metrics and dead letters show. */
export function actionDestinationName(rule: string, index: number): string {
  return `trigger:${rule}/${index}`;
}

/**
 * The derived event's id: the change event's id, the rule and the action, so a redelivery of the
 * same change (after a restart) carries the same id and receivers can deduplicate.
 */
export function derivedEventId(eventId: string, rule: string, index: number): string {
  return `${eventId}/trigger/${rule}/${index}`;
}

/**
 * The event an action's delivery carries through the engine: the derived event's identity (its
 * own id, type and `trigger` extension, the change event's source, subject, time and other
 * extensions) with the change event's `data`, not rendered yet. So a dead letter of the action
 * is a row of its own (the dead-letter table keeps one row per event id), named as the action's,
 * and never mistaken for the change's default event.
 */
export function actionEvent(event: CloudEvent<unknown>, rule: string, index: number, type: string): CloudEvent<unknown> {
  const attributes: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(event)) {
    if (name !== 'data_base64' && value !== undefined) attributes[name] = value;
  }
  attributes.id = derivedEventId(event.id, rule, index);
  attributes.type = type;
  attributes.trigger = rule;
  const shell = createEvent(attributes) as CloudEvent<unknown>;
  changeEvents.set(shell, event);
  return shell;
}

/** An action's delivery event → the change's event it came from (what `event.*` reads in templates). */
const changeEvents = new WeakMap<CloudEvent<unknown>, CloudEvent<unknown>>();

/** What the action sends: its delivery event with `data` the rendered payload (a string as text/plain). */
export function derivedEvent(shell: CloudEvent<unknown>, payload: unknown): CloudEvent<unknown> {
  const attributes: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(shell)) {
    if (name !== 'data' && name !== 'data_base64' && value !== undefined) attributes[name] = value;
  }
  attributes.datacontenttype = typeof payload === 'string' ? 'text/plain' : 'application/json';
  attributes.data = payload;
  return createEvent(attributes) as CloudEvent<unknown>;
}

/**
 * One action's sink: it receives the change's default event, evaluates the rule and sends the
 * derived event to the default sink (`inner`, which the sinks registry owns and closes). One
 * attempt per call, as every sink: a retriable failure of the inner sink is retried by the engine,
 * which evaluates again (the result is the same: evaluation reads only the event).
 */
class ActionSink implements Sink {
  readonly name: string;
  constructor(
    private readonly rule: CompiledRule,
    index: number,
    private readonly inner: Sink,
    private readonly relations?: RelationResolver,
  ) {
    this.name = actionDestinationName(rule.name, index);
  }

  async send(event: CloudEvent<unknown>): Promise<SendResult | void> {
    // The change's event when routed in this process; else (a stored delivery event) the event itself.
    const change = changeEvents.get(event) ?? event;
    let context = triggerContext(change);
    if (this.rule.when !== undefined && !(await this.rule.when.evaluate(context))) return { skipped: true };
    // Relations ({{ customer.name }}) are read now, at delivery, then rendered from what was read.
    const relation = await this.relations?.prepare(change, context.row, this.rule.placeholders);
    if (relation !== undefined) context = triggerContext(change, { relation });
    const payload = await this.rule.payload(context);
    return this.inner.send(derivedEvent(event, payload));
  }

  /** Nothing of its own to close: the inner sink is the default destination's. */
  async close(): Promise<void> {}

  describe(): string {
    return `${this.name} → ${this.inner.describe()}`;
  }
}

/**
 * The rules of `config.triggers`, as one route. Action destinations send one event at a time
 * (batchSize 1): `when` may drop any event of a batch, and a render error must fail its own
 * delivery only, not a whole batch.
 */
export const triggersRoute: RouteKind = (context) => {
  const { config } = context;
  const rules = (config.triggers ?? []).map((r, i) => compileRule(r, i, config.events.typePrefix)).filter((r) => r.active);
  if (rules.length === 0) return [];
  return [rulesRoute(rules, context)];
};

/**
 * One route over compiled, active `rules`, each action a destination of its own. The file's rules
 * are one; each rule set read from the triggers table is another (./runtime.ts).
 */
export function rulesRoute(rules: readonly CompiledRule[], { config, buildEvent, sink, relations }: KindContext): Route {
  const inner = sink(config.handler);
  const byRule = rules.map((rule) => rule.actions.map((action, index) => ({
    type: action.type,
    index,
    destination: {
      name: actionDestinationName(rule.name, index),
      sink: new ActionSink(rule, index, inner, relations),
      batchSize: 1,
    } as Destination,
  })));
  const route: Route = {
    destinations: byRule.flat().map((a) => a.destination),
    route(change, deliver) {
      let event: CloudEvent<unknown> | undefined;
      for (let r = 0; r < rules.length; r++) {
        const rule = rules[r];
        if (!matchesChange(rule, change)) continue;
        event ??= buildEvent(change);
        if (!rule.filter(event)) continue;
        for (const a of byRule[r]) deliver(a.destination, actionEvent(event, rule.name, a.index, a.type));
      }
    },
  };
  return route;
}

/**
 * Where `dead-letters replay` sends a stored event: an action's delivery event (it carries the
 * `trigger` extension) goes through its rule again (`when`, then the payload, rendered from the
 * stored event, whose `event.*` attributes are the derived event's) to `inner`, the default sink;
 * any other event to `inner` itself. An Error when the rule is no longer configured.
 */
export function replaySink(event: CloudEvent<unknown>, config: Config, inner: Sink, relations?: RelationResolver): Sink | Error {
  const name = event.trigger;
  // Both marks: a `trigger` extension alone may be a K_CE_OVERRIDES value on a default event.
  const action = typeof name === 'string' ? new RegExp(`/trigger/${escapeRegExp(name)}/(\\d+)$`).exec(event.id) : null;
  if (action === null) return inner;
  const rules = config.triggers ?? [];
  const at = rules.findIndex((r) => r.name === name);
  if (at < 0) {
    return new Error(`the event of trigger ${name} cannot be replayed: no trigger of that name is configured (configure it again, or purge the row)`);
  }
  const rule = compileRule(rules[at], at, config.events.typePrefix);
  return new ActionSink(rule, Number(action[1]), inner, relations);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
