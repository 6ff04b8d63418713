/**
 * The triggers table's rules as a route (README "Rules at runtime"). Each change meets the rule
 * set in force at its commit LSN (src/trigger-rules/schedule.ts), not the newest one: a change
 * committed before a rule was read keeps the rules it was committed under, however late it is
 * routed. Each set is compiled once, into a route like the file's rules (`rulesRoute`).
 *
 * An action keeps one destination per name (`trigger:<rule>/<n>`) across the versions of its
 * rule, so a replaced rule's deliveries stay in one lane and in order per row; each delivery is
 * sent by the version that routed it (its `when`, payload and target). A destination appears when
 * a change first routes to it (the engine makes its lane then) and leaves `destinations` when no
 * kept rule set names it (the engine forgets the lane once it delivered what it had).
 */
import type { CloudEvent } from 'cloudevents';
import type { Destination, SendResult, Sink } from '../../sinks/types';
import type { Change } from '../../sources/change';
import type { RuleSchedule, RuleSet } from '../../trigger-rules/schedule';
import { ruleKeyPath } from '../../trigger-rules/validate';
import type { Deliver, KindContext, Route, RouteKind } from '../contract';
import { actionDestinationName, rulesRoute } from './index';
import { compileRule } from './rules';
import { errorMessage } from '../../errors';
import { logger } from '../../logger';

const log = logger('triggers');

export const tableTriggersRoute: RouteKind = (context) => (context.tableRules ? [new TableRulesRoute(context.tableRules, context)] : []);

class TableRulesRoute implements Route {
  readonly dynamic = true;
  /** Each rule set compiled once (null: no active rule in it); closed when retired, or with the route. */
  private readonly compiled = new Map<RuleSet, Route | null>();
  private readonly stable = new Map<string, Destination>();
  /** The action sink of the version that routed a delivery event. */
  private readonly versions = new WeakMap<CloudEvent<unknown>, Sink>();
  private outer: Deliver | undefined;
  private readonly forward: Deliver = (destination, event) => {
    let stable = this.stable.get(destination.name);
    if (stable === undefined) {
      stable = { name: destination.name, sink: new VersionedSink(destination.name, this.versions, destination.sink), batchSize: 1, policy: destination.policy };
      this.stable.set(destination.name, stable);
    }
    (stable.sink as VersionedSink).latest = destination.sink;
    this.versions.set(event, destination.sink);
    this.outer!(stable, event);
  };

  constructor(private readonly schedule: RuleSchedule, private readonly context: KindContext) {
    // A version's targets (webhook agents, broker connections) close once it routed its last change
    // and all of that was delivered; the newest version stays until the route closes.
    schedule.onRetired = (set) => {
      const route = this.compiled.get(set);
      this.compiled.delete(set);
      void route?.close?.().catch((err) => log.warn({ version: set.version, err: errorMessage(err) }, 'could not close a retired trigger rule set\'s actions'));
    };
  }

  async close(): Promise<void> {
    this.schedule.onRetired = undefined;
    const routes = [...this.compiled.values()];
    this.compiled.clear();
    const results = await Promise.allSettled(routes.map((r) => r?.close?.()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** The destinations of every kept rule set that a change has routed to. */
  get destinations(): Destination[] {
    const out: Destination[] = [];
    const names = new Set<string>();
    for (const set of this.schedule.kept) {
      for (const { name, rule } of set.rules.valid) {
        if (!rule.active) continue;
        for (let i = 0; i < rule.actions.length; i++) names.add(actionDestinationName(name, i));
      }
    }
    for (const name of names) {
      const d = this.stable.get(name);
      if (d !== undefined) out.push(d);
    }
    return out;
  }

  route(change: Change, deliver: Deliver): void {
    const set = this.schedule.at(change.commitLsn);
    if (set === undefined || set.rules.valid.length === 0) return;
    let route = this.compiled.get(set);
    if (route === undefined) {
      route = this.compile(set);
      this.compiled.set(set, route);
    }
    if (route === null) return;
    this.outer = deliver;
    try {
      route.route(change, this.forward);
    } finally {
      this.outer = undefined;
    }
  }

  private compile(set: RuleSet): Route | null {
    const { typePrefix } = this.context.config.events;
    // Checked when read (parseTriggerRule compiles them too), so this does not throw.
    const rules = set.rules.valid.map(({ name, rule }, i) => compileRule(rule, i, typePrefix, ruleKeyPath(name))).filter((r) => r.active);
    return rules.length === 0 ? null : rulesRoute(rules, this.context, { trusted: false });
  }
}

/** One action name's sink across rule versions: each event goes to the version that routed it. */
class VersionedSink implements Sink {
  constructor(
    readonly name: string,
    private readonly versions: WeakMap<CloudEvent<unknown>, Sink>,
    /** The newest version's action sink (an event routed in another process has no version here). */
    public latest: Sink,
  ) {}

  send(event: CloudEvent<unknown>): Promise<SendResult | void> {
    return (this.versions.get(event) ?? this.latest).send(event);
  }

  /** The versions' sinks wrap the default sink, which the sinks registry closes. */
  async close(): Promise<void> {}

  describe(): string {
    return this.latest.describe();
  }
}
