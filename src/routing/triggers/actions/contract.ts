/**
 * The action-kind seam (docs/triggers.md, "Action kinds"): a kind is one module here exporting an
 * ActionKind, and one line in ./index.ts. The kind checks its part of an action when the rule is
 * loaded (by key path, against the allow-lists), and builds what the action sends through when a
 * run (or a replay) starts. Evaluating `when`, rendering the payload and the rate limit are the
 * same for every kind (../index.ts, ActionSink).
 */
import type { CloudEvent } from 'cloudevents';
import type { BrokerConfig, Config, LimitsConfig, TriggerActionConfig } from '../../../config/types';
import type { SendResult, Sink } from '../../../sinks/types';
import type { AllowList } from '../allow';

/** What checking an action needs from the rest of the configuration. */
export interface ActionParseContext {
  allow?: AllowList;
  /** false: a rule from the database or an admin API, which must pass the allow-lists. */
  trusted: boolean;
  /** The configured brokers, which a broker action names; absent: none. */
  brokers?: Readonly<Record<string, BrokerConfig>>;
  limits?: LimitsConfig;
}

/** What building an action's target needs, once per run or replay. */
export interface ActionRuntime {
  config: Config;
  trusted: boolean;
  /** The action's key path (`triggers[0].actions[1]`), for messages. */
  where: string;
  /** The default destination's sink (the configured handler), opened on first use. */
  defaultSink(): Sink;
  /**
   * Keep what the receiver answered (SendResult.body: a webhook's JSON object answer): a workflow
   * task's result. Absent: answers are read and dropped.
   */
  keepAnswer?: boolean;
}

/**
 * What an action sends through: the rendered payload and the action's delivery event (its id,
 * type and the change's attributes) in, one attempt out, as a sink's `send` (DeliveryError on
 * failure, SendResult for the per-status metrics).
 */
export interface ActionTarget {
  send(payload: unknown, delivery: CloudEvent<unknown>): Promise<SendResult | void>;
  /** Closes what the target opened of its own (never the default sink). */
  close(): Promise<void>;
  /** Where it sends, without secrets (dynamic values unresolved). */
  describe(): string;
}

export interface ActionKind<C extends TriggerActionConfig = TriggerActionConfig> {
  /** The key that names the kind in an action (`webhook:`), and in messages. */
  readonly key: string;
  /** The shape, for the message when an action names no kind. */
  readonly usage: string;
  /**
   * Checks an action whose kind key is this kind's (`raw` as written, `where` its key path):
   * problems (by key path, allow-list refusals included) go to `problems`; the result is the
   * resolved action, or undefined when there were problems.
   */
  parse(raw: Record<string, unknown>, where: string, context: ActionParseContext, problems: string[]): C | undefined;
  /** The `type` of the action's delivery event (what dead letters, logs and a CloudEvent show). */
  type(action: C, rule: string, typePrefix: string): string;
  /** Builds the target; throws ConfigError for what only shows when it is built. */
  target(action: C, runtime: ActionRuntime): ActionTarget;
}
