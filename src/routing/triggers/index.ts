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
 * What an action sends through is its kind's (./actions: cloudevent, webhook, broker).
 */
import type { CloudEvent } from 'cloudevents';
import type { Config, TriggerConfig } from '../../config/types';
import { ruleKeyPath } from '../../trigger-rules/validate';
import type { Destination, SendResult, Sink } from '../../sinks/types';
import type { KindContext, Route, RouteKind } from '../contract';
import type { ActionRuntime, ActionTarget } from './actions';
import { triggerContext } from './context';
import { actionDestinationName, actionEvent, changeEvents } from './derived';
import { RateLimiter } from './rate-limit';
import type { RelationResolver } from './relations';
import { compileRule, matchesChange, type CompiledAction, type CompiledRule } from './rules';

export { actionDestinationName, actionEvent, derivedEvent, derivedEventId } from './derived';

/**
 * One action's sink: it receives the action's delivery event, evaluates the rule's `when`, reads
 * the payload's relations, renders the payload (the action's own, else the rule's), waits its turn
 * under `rateLimit`, and sends through the action kind's target. One attempt per call, as every sink: a retriable failure
 * is retried by the engine, which evaluates again (the result is the same: evaluation reads only
 * the event).
 */
class ActionSink implements Sink {
  readonly name: string;
  private readonly limiter?: RateLimiter;

  constructor(
    private readonly rule: CompiledRule,
    private readonly index: number,
    private readonly target: ActionTarget,
    private readonly relations?: RelationResolver,
  ) {
    this.name = actionDestinationName(rule.name, index);
    const { rateLimit } = rule.actions[index].config;
    if (rateLimit) this.limiter = new RateLimiter(rateLimit);
  }

  async send(event: CloudEvent<unknown>): Promise<SendResult | void> {
    // The change's event when routed in this process; else (a stored delivery event) the event itself.
    const change = changeEvents.get(event) ?? event;
    // A rule over `types` reads application events only: their data is the application's, not a row.
    const appEvent = this.rule.types !== undefined;
    let context = triggerContext(change, { appEvent });
    if (this.rule.when !== undefined && !(await this.rule.when.evaluate(context))) return { skipped: true };
    const action = this.rule.actions[this.index];
    // Relations ({{ customer.name }}) are read now, at delivery, then rendered from what was read; an application event has none.
    const relation = appEvent ? undefined : await this.relations?.prepare(change, context.row, action.placeholders ?? this.rule.placeholders);
    if (relation !== undefined) context = triggerContext(change, { relation });
    const payload = await (action.payload ?? this.rule.payload)(context);
    // Every attempt counts against the limit: a retry is a request too.
    await this.limiter?.take();
    return this.target.send(payload, event);
  }

  async close(): Promise<void> {
    this.limiter?.close();
    await this.target.close();
  }

  describe(): string {
    return `${this.name} → ${this.target.describe()}`;
  }
}

/** The runtime of rule `rule`'s action `index`; the default sink is asked for only by actions that use it. */
function runtimeOf(rule: CompiledRule, index: number, config: Config, defaultSink: () => Sink, trusted: boolean): ActionRuntime {
  return { config, trusted, where: `${rule.at}.actions[${index}]`, defaultSink };
}

/** Builds an action's target: its kind's, unless the caller records instead of sending (`triggers test`). */
export type TargetFactory = (action: CompiledAction, runtime: ActionRuntime) => ActionTarget;

const kindTarget: TargetFactory = (action, runtime) => action.kind.target(action.config, runtime);

function actionSink(rule: CompiledRule, index: number, runtime: ActionRuntime, relations?: RelationResolver, target = kindTarget): ActionSink {
  return new ActionSink(rule, index, target(rule.actions[index], runtime), relations);
}

export interface RulesRouteOptions {
  /** false: rules from the triggers table (or the admin API), whose targets pass the allow-lists again. */
  trusted: boolean;
  /** What each action sends through; default its kind's target. */
  target?: TargetFactory;
}

/** The rules of `config.triggers` (the configuration file's: trusted), as one route. */
export const triggersRoute: RouteKind = (context) => {
  const { config } = context;
  const rules = (config.triggers ?? []).map((r, i) => compileRule(r, i, config.events.typePrefix)).filter((r) => r.active);
  if (rules.length === 0) return [];
  return [rulesRoute(rules, context, { trusted: true })];
};

/**
 * One route over compiled, active `rules`, each action a destination of its own. The file's rules
 * are one; each rule set read from the triggers table is another (./runtime.ts). Action
 * destinations send one event at a time (batchSize 1): `when` may drop any event of a batch, and a
 * render error must fail its own delivery only, not a whole batch. The targets are made when the
 * route is built (a broker that cannot send a bare payload is refused then) and closed with it.
 */
export function rulesRoute(rules: readonly CompiledRule[], context: KindContext, options: RulesRouteOptions): Route {
  const { config, buildEvent, sink, relations } = context;
  let inner: Sink | undefined;
  const defaultSink = () => (inner ??= sink(config.handler));
  const made: ActionSink[] = [];
  const byRule = rules.map((rule) => rule.actions.map((action, index) => {
    const made1 = actionSink(rule, index, runtimeOf(rule, index, config, defaultSink, options.trusted), relations, options.target);
    made.push(made1);
    return {
      type: action.type,
      index,
      destination: { name: actionDestinationName(rule.name, index), sink: made1, batchSize: 1 } as Destination,
    };
  }));
  return {
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
    async close() {
      await closeEach(made);
    },
  };
}

/**
 * Where `dead-letters replay` sends a stored event: an action's delivery event (it carries the
 * `trigger` extension and the action's id) goes through its rule again, with today's
 * configuration (`when`, then the payload, rendered from the stored event, whose `event.*`
 * attributes are the derived event's), through its kind's target: the default sink (`inner`) for
 * a cloudevent action, its webhook or broker otherwise; any other event to `inner` itself. An Error
 * when the rule or the action is no longer configured. Targets are made once per action and
 * closed by `close`.
 */
export class ActionReplay {
  private readonly sinks = new Map<string, ActionSink>();

  /**
   * `relations`: what payloads reach through foreign keys, read again now (as at delivery).
   * `tableRules`: the triggers table's valid rules (README "Rules at runtime"), untrusted: a file
   * rule of the same name wins (the table refuses such a row anyway).
   */
  constructor(
    private readonly config: Config,
    private readonly relations?: RelationResolver,
    private readonly tableRules: readonly TriggerConfig[] = [],
  ) {}

  sinkFor(event: CloudEvent<unknown>, inner: Sink): Sink | Error {
    const name = event.trigger;
    // Both marks: a `trigger` extension alone may be a K_CE_OVERRIDES value on a default event.
    const action = typeof name === 'string' ? new RegExp(`/trigger/${escapeRegExp(name)}/(\\d+)$`).exec(event.id) : null;
    if (action === null) return inner;
    const index = Number(action[1]);
    const key = `${name}/${index}`;
    const known = this.sinks.get(key);
    if (known) return known;
    const fileRules = this.config.triggers ?? [];
    const at = fileRules.findIndex((r) => r.name === name);
    const tableRule = at < 0 ? this.tableRules.find((r) => r.name === name) : undefined;
    if (at < 0 && tableRule === undefined) {
      return new Error(`the event of trigger ${name} cannot be replayed: no trigger of that name is configured (configure it again, or purge the row)`);
    }
    const trusted = tableRule === undefined;
    const rule = trusted
      ? compileRule(fileRules[at], at, this.config.events.typePrefix)
      : compileRule(tableRule!, 0, this.config.events.typePrefix, ruleKeyPath(name));
    if (index >= rule.actions.length) {
      return new Error(`the event of trigger ${name} cannot be replayed: the trigger has no action ${index} any more (configure it again, or purge the row)`);
    }
    let made: ActionSink;
    try {
      made = actionSink(rule, index, runtimeOf(rule, index, this.config, () => inner, trusted), this.relations);
    } catch (err) {
      return err as Error;
    }
    this.sinks.set(key, made);
    return made;
  }

  async close(): Promise<void> {
    const sinks = [...this.sinks.values()];
    this.sinks.clear();
    await closeEach(sinks);
  }
}

/** Closes every sink (all are tried); the first failure is thrown. */
async function closeEach(sinks: readonly Sink[]): Promise<void> {
  const results = await Promise.allSettled(sinks.map((s) => s.close()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
