/**
 * `broker: <name>`: a message to a broker of `brokers` (README, "Triggers"), with the action's
 * `params` merged over the broker's own and checked by the broker type's params schema. The
 * sink is the broker type's (src/sinks/<type>), made for the action, so its connection, timeout
 * and classification of failures are the broker's.
 *
 * What is sent: the bare payload through `sendMessage` (body, content type, id = the action's
 * delivery event id, key = the row's partition key), or with `format: cloudevent` the derived
 * CloudEvent through the sink's `send` (the transport's CloudEvents binding).
 */
import type { CloudEvent } from 'cloudevents';
import type { BrokerActionConfig, Config } from '../../../config/types';
import { ConfigError, DeliveryError, ErrorCodes } from '../../../errors';
import { brokerOverrideProblems, createBrokerSink } from '../../../sinks';
import { DeadlineExceeded, withDeadline } from '../../../sinks/support/deadline';
import type { SendResult, Sink } from '../../../sinks/types';
import { derivedEvent } from '../derived';
import { compileDynamicTree, type DynamicContext, type DynamicTree } from '../dynamic';
import type { ActionKind, ActionTarget } from './contract';
import { plainMessage } from './message';
import { actionTimeoutMs, parseSendingOptions, SENDING_OPTIONS, sendingType, unknownKeys } from './options';

export const brokerAction: ActionKind<BrokerActionConfig> = {
  key: 'broker',
  usage: '{ broker: <a name of brokers>, params?: { … } }',

  parse(raw, where, context, problems) {
    const before = problems.length;
    unknownKeys(raw, 'broker', ['params', ...SENDING_OPTIONS], where, problems);
    const options = parseSendingOptions(raw, where, problems);
    const { broker: name, params = {} } = raw;
    if (typeof name !== 'string' || name === '') {
      problems.push(`${where}.broker: must be the name of a configured broker (a key of brokers)`);
      return undefined;
    }
    if (typeof params !== 'object' || params === null || Array.isArray(params)) {
      problems.push(`${where}.params: must be an object, merged over brokers.${name}.params`);
      return undefined;
    }
    compileParams(params as Record<string, unknown>, `${where}.params`, context, problems);
    if (problems.length === before) problems.push(...brokerOverrideProblems(name, params as Record<string, unknown>, context.brokers ?? {}, where));
    if (problems.length > before) return undefined;
    return { broker: name, ...(raw.params !== undefined && { params: params as Record<string, unknown> }), ...options };
  },

  type: (action, rule, typePrefix) => sendingType(action, rule, typePrefix),

  target(action, runtime) {
    const { config, where } = runtime;
    const timeoutMs = actionTimeoutMs(action, config.limits?.maxActionTimeoutMs, config.delivery.timeoutMs);
    return new BrokerTarget(action, where, { allow: config.allow, trusted: runtime.trusted }, timeoutMs, {
      ...config,
      // The broker's sink bounds each send with sink.timeoutMs: the action's timeout.
      sink: { ...config.sink, timeoutMs },
    });
  },
};

/** A params object with its string leaves compiled for dynamic values (other placeholders kept). */
type ParamsTemplate = DynamicTree<Record<string, unknown>>;

function compileParams(params: Record<string, unknown>, where: string, context: DynamicContext, problems: string[]): ParamsTemplate {
  return compileDynamicTree(params, where, context, problems, 'keep');
}

class BrokerTarget implements ActionTarget {
  private readonly params: ParamsTemplate;
  /** The sink for the params last resolved; a new one when dynamic params resolve differently. */
  private current?: { key: string; sink: Sink };
  private readonly retired = new Set<Promise<void>>();

  constructor(
    private readonly action: BrokerActionConfig,
    private readonly where: string,
    context: DynamicContext,
    private readonly timeoutMs: number,
    private readonly config: Config,
  ) {
    this.params = compileParams(action.params ?? {}, `${where}.params`, context, []);
    // Static params: the sink is made now, so a broker that cannot send bare payloads is refused at start.
    if (!this.params.dynamic) this.current = { key: '', sink: this.createSink(action.params ?? {}) };
  }

  describe(): string {
    return `broker ${this.action.broker}${this.current ? ` (${this.current.sink.describe()})` : ''}`;
  }

  async send(payload: unknown, delivery: CloudEvent<unknown>): Promise<SendResult | void> {
    const sink = this.params.dynamic ? await this.sinkForResolvedParams() : this.current!.sink;
    if (this.action.format === 'cloudevent') return sink.send(derivedEvent(delivery, payload));
    return sink.sendMessage!(plainMessage(payload, delivery));
  }

  async close(): Promise<void> {
    const closing = [...this.retired, ...(this.current ? [this.current.sink.close()] : [])];
    this.current = undefined;
    await Promise.all(closing);
  }

  /** Params with dynamic values are read on every send (within the action's timeout). */
  private async sinkForResolvedParams(): Promise<Sink> {
    let params: Record<string, unknown>;
    try {
      params = await withDeadline(this.timeoutMs, () => this.params.resolve());
    } catch (err) {
      if (!(err instanceof DeadlineExceeded)) throw err;
      throw new DeliveryError(`broker ${this.action.broker}: reading the params' dynamic values took longer than ${this.timeoutMs} ms`, {
        retriable: true,
        code: ErrorCodes.ACTION_TIMEOUT,
        cause: err,
      });
    }
    const key = JSON.stringify(params);
    if (this.current?.key === key) return this.current.sink;
    let sink: Sink;
    try {
      sink = createBrokerSink(this.action.broker, params, this.config, this.where);
    } catch (err) {
      // Params that resolved to something the broker type refuses: no retry changes them. Named by key path, never by value.
      const problems = err instanceof ConfigError ? err.problems.map((p) => p.replace(/:.*$/, '')).join(', ') : '';
      throw new DeliveryError(`${this.where}.params: the dynamic values resolved to params the broker refuses${problems ? ` (${problems})` : ''}`, {
        retriable: false,
        code: ErrorCodes.DYNAMIC_VALUE,
      });
    }
    try {
      this.checkCapability(sink);
    } catch (err) {
      throw new DeliveryError((err as ConfigError).problems.join('; '), { retriable: false, code: ErrorCodes.CONFIG_INVALID });
    }
    const previous = this.current;
    this.current = { key, sink };
    if (previous) {
      // A rotated value: the old connection is let go once what it has in flight settles.
      const closing = previous.sink.close().catch(() => undefined).finally(() => this.retired.delete(closing));
      this.retired.add(closing);
    }
    return sink;
  }

  private createSink(params: Record<string, unknown>): Sink {
    const sink = createBrokerSink(this.action.broker, params, this.config, this.where);
    this.checkCapability(sink);
    return sink;
  }

  /** A bare payload needs the sink's sendMessage; refused (ConfigError) before anything is sent. */
  private checkCapability(sink: Sink): void {
    if (this.action.format !== 'cloudevent' && typeof sink.sendMessage !== 'function') {
      void sink.close().catch(() => undefined);
      const type = this.config.brokers[this.action.broker].type;
      throw new ConfigError([
        `${this.where}.broker: brokers.${this.action.broker} (type ${type}) cannot send a bare payload in this build; ` +
          'add format: cloudevent to the action to send the payload as a CloudEvent',
      ]);
    }
  }
}
