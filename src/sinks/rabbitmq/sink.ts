import { withoutCredentials } from '../../logger';
import { connect, type ChannelModel, type ConfirmChannel, type Message } from 'amqplib';
import type { CloudEvent } from 'cloudevents';
import { DeliveryError, ErrorCodes, PgceError, errorMessage } from '../../errors';
import { logger } from '../../logger';
import { DeadlineExceeded, withDeadline } from '../support/deadline';
import { LazyConnection } from '../support/lazy-connection';
import { fixedDestination, type Template } from '../template';
import type { PlainMessage, Sink } from '../types';
import { isRetriableAmqpError, replyCodeOf } from './classify';
import { encodeAmqp, encodePlainAmqp, type AmqpMessage, type ContentMode } from './encode';

const log = logger('sink.rabbitmq');

/** Where a message goes: an exchange with a routing key, or a queue through the default exchange. */
export type RabbitmqDestination =
  | { kind: 'exchange'; exchange: string; routingKey: Template; routingKeyText: string }
  | { kind: 'queue'; queue: Template; queueText: string; declare: boolean };

export interface RabbitmqSinkOptions {
  brokerName: string;
  /** amqp:// or amqps:// URL, credentials included (never logged or described). */
  url: string;
  /** AMQP heartbeat in seconds, so a dead peer is noticed without a send; 0 turns it off. */
  heartbeatSeconds: number;
  destination: RabbitmqDestination;
  mode: ContentMode;
  persistent: boolean;
  /** Every send (connect + publish + confirm) is bounded by this. */
  timeoutMs: number;
}

/** Where one message goes: the exchange ('' = the default), its routing key, a queue to declare first. */
interface Route {
  exchange: string;
  routingKey: string;
  declareQueue?: string;
}

/** One connection with one confirm channel; dropped on any error, reopened by the next send. */
interface Link {
  model: ChannelModel;
  channel: ConfirmChannel;
  /** Why the connection or channel closed, recorded before amqplib fails the pending confirms. */
  failure?: Error;
  /** Publishes awaiting their confirm; a basic.return arrives before the ack (RabbitMQ confirms doc). */
  awaiting: { messageId: string; returned?: Message }[];
  declared: Set<string>;
}

/**
 * `type: rabbitmq` (amqplib): publishes each event with publisher confirms (a confirm channel) and
 * `mandatory`, and resolves only on the broker's ack. A nack, a closed channel or connection, a
 * timeout → retriable; a message the broker returned as unroutable (no queue bound for the routing
 * key) → retriable too, as HTTP 404 is, since without `mandatory` RabbitMQ would ack and drop it,
 * losing the event. See classify.ts for the reply codes that are final.
 */
export class RabbitmqSink implements Sink {
  readonly name = 'rabbitmq';
  private readonly link: LazyConnection<Link>;

  constructor(private readonly options: RabbitmqSinkOptions) {
    this.link = new LazyConnection<Link>({
      open: () => this.connect(),
      dispose: (link) => link.model.close(),
      // amqplib's close waits for the broker's close-ok, which a hung broker never sends.
      closeTimeoutMs: options.timeoutMs,
      forceDispose: (link) => (link.model.connection as unknown as { stream?: { destroy(): void } }).stream?.destroy(),
      closedError: () => new DeliveryError(`${this.describe()} is closed`, { retriable: true }),
    });
  }

  describe(): string {
    const d = this.options.destination;
    const where = d.kind === 'exchange'
      ? `exchange ${JSON.stringify(d.exchange)} routing key ${JSON.stringify(d.routingKeyText)}`
      : `queue ${JSON.stringify(d.queueText)}`;
    return `rabbitmq broker ${this.options.brokerName} (${safeUrl(this.options.url)} ${where})`;
  }

  async send(event: CloudEvent<unknown>): Promise<void> {
    await this.deliver(this.route((template) => template(event)), encodeAmqp(event, this.options.mode, this.options.persistent));
  }

  /** A bare payload (trigger action) to the fixed exchange and routing key, or queue; see encodePlainAmqp. */
  async sendMessage(message: PlainMessage): Promise<void> {
    const route = this.route((_, text, param) => fixedDestination(text, `brokers.${this.options.brokerName}.params.${param}`));
    await this.deliver(route, encodePlainAmqp(message, this.options.persistent));
  }

  /** Declares the queue when asked (once per connection), publishes, and waits for the confirm. */
  private async deliver({ exchange, routingKey, declareQueue }: Route, message: AmqpMessage): Promise<void> {
    let connected = false;
    await this.bounded(async () => {
      const link = await this.link.get();
      connected = true;
      if (declareQueue && !link.declared.has(declareQueue)) {
        await link.channel.assertQueue(declareQueue, { durable: true });
        link.declared.add(declareQueue);
      }
      await publish(link, exchange, routingKey, message.content, message.options);
    }, () => connected, `publish to ${exchange === '' ? `queue ${routingKey}` : `exchange ${exchange} (${routingKey})`}`);
  }

  /** Connects and checks the destination exists (or declares a `declare: true` queue). */
  async check(): Promise<void> {
    const d = this.options.destination;
    try {
      await this.bounded(async () => {
        const link = await this.link.get();
        if (d.kind === 'exchange' && d.exchange === '') return;
        // A passive declare that fails closes its channel: use a throwaway one.
        const probe = await link.model.createChannel();
        probe.on('error', () => undefined);
        if (d.kind === 'exchange') await probe.checkExchange(d.exchange);
        else if (!d.queueText.includes('{{')) {
          if (d.declare) await probe.assertQueue(d.queueText, { durable: true });
          else await probe.checkQueue(d.queueText);
        }
        await probe.close().catch(() => undefined);
      }, () => true, 'check');
    } catch (err) {
      throw new PgceError(ErrorCodes.SINK_UNREACHABLE, `${this.describe()}: ${errorMessage(err)}`, { retriable: true, cause: err });
    }
  }

  async close(): Promise<void> {
    await this.link.close();
  }

  /**
   * Exchange, routing key and the queue to declare first. `render` gives the routing key or queue
   * from its template: over the event for `send`, the text as written for a bare message.
   */
  private route(render: (template: Template, text: string, param: 'routingKey' | 'queue') => string): Route {
    const d = this.options.destination;
    if (d.kind === 'exchange') return { exchange: d.exchange, routingKey: render(d.routingKey, d.routingKeyText, 'routingKey') };
    const queue = render(d.queue, d.queueText, 'queue');
    return { exchange: '', routingKey: queue, declareQueue: d.declare ? queue : undefined };
  }

  private async connect(): Promise<Link> {
    const url = new URL(this.options.url);
    if (!url.searchParams.has('heartbeat')) url.searchParams.set('heartbeat', String(this.options.heartbeatSeconds));
    const model = await connect(url.toString(), {
      timeout: this.options.timeoutMs,
      clientProperties: { connection_name: `pg-cloudevents ${this.options.brokerName}` },
    });
    let channel: ConfirmChannel;
    try {
      channel = await model.createConfirmChannel();
    } catch (err) {
      await model.close().catch(() => undefined);
      throw err;
    }
    const link: Link = { model, channel, awaiting: [], declared: new Set() };
    const drop = (why: string) => (err?: Error) => {
      if (err) link.failure ??= err;
      this.link.drop(link);
      if (err) log.warn({ err: errorMessage(err), broker: this.options.brokerName }, `rabbitmq ${why}; reconnecting on the next send`);
    };
    model.on('error', drop('connection failed'));
    model.on('close', drop('connection closed'));
    channel.on('error', (err: Error) => {
      drop('channel closed by the broker')(err);
      model.close().catch(() => undefined);
    });
    channel.on('close', () => drop('channel closed')());
    channel.on('return', (msg: Message) => {
      const waiting = link.awaiting.find((w) => w.messageId === msg.properties.messageId && !w.returned);
      if (waiting) waiting.returned = msg;
    });
    return link;
  }

  /** Runs `work` under the per-send timeout; every failure becomes a classified DeliveryError. */
  private async bounded(work: () => Promise<void>, connected: () => boolean, what: string): Promise<void> {
    try {
      await withDeadline(this.options.timeoutMs, work);
    } catch (err) {
      throw this.deliveryError(err, connected(), what);
    }
  }

  private deliveryError(err: unknown, connected: boolean, what: string): DeliveryError {
    if (err instanceof DeliveryError) return err;
    const name = this.describe();
    if (err instanceof DeadlineExceeded) {
      return new DeliveryError(`${name}: ${connected ? `${what}: no confirm` : 'no connection'} within ${this.options.timeoutMs} ms`, {
        retriable: true,
        code: connected ? ErrorCodes.SINK_RETRIABLE : ErrorCodes.SINK_UNREACHABLE,
        cause: err,
      });
    }
    const retriable = isRetriableAmqpError(err);
    const code = replyCodeOf(err);
    return new DeliveryError(`${name}: ${connected ? what : 'cannot connect'}: ${errorMessage(err)}`, {
      retriable,
      code: !connected && retriable ? ErrorCodes.SINK_UNREACHABLE : undefined,
      cause: err,
      detail: code === undefined ? {} : { amqpReplyCode: code },
    });
  }
}

/** One publish on the confirm channel, resolved by the ack; a return before it means unroutable. */
function publish(link: Link, exchange: string, routingKey: string, content: Buffer, options: Parameters<ConfirmChannel['publish']>[3]): Promise<void> {
  const waiting = { messageId: String(options?.messageId ?? ''), returned: undefined as Message | undefined };
  link.awaiting.push(waiting);
  const done = () => {
    const i = link.awaiting.indexOf(waiting);
    if (i >= 0) link.awaiting.splice(i, 1);
  };
  return new Promise<void>((resolve, reject) => {
    try {
      link.channel.publish(exchange, routingKey, content, options, (err: unknown) => {
        done();
        if (err) {
          // 'channel closed'/'message nacked' carry no reason; the channel's own error does.
          reject(link.failure ?? err);
        } else if (waiting.returned) {
          const { replyCode, replyText } = waiting.returned.fields as unknown as { replyCode: number; replyText: string };
          const unroutable = new Error(
            `the broker returned the message as unroutable (${replyCode} ${replyText}): no queue is bound to ` +
            (exchange === '' ? `the default exchange for queue ${JSON.stringify(routingKey)}` : `exchange ${JSON.stringify(exchange)} for routing key ${JSON.stringify(routingKey)}`),
          );
          reject(Object.assign(unroutable, { code: replyCode }));
        } else {
          resolve();
        }
      });
    } catch (err) {
      // A closed channel (IllegalOperationError) or a headers table too large (RangeError).
      done();
      reject(err);
    }
  });
}

/** The URL without user and password, as describe() shows it. */
export function safeUrl(raw: string): string {
  return withoutCredentials(raw).replace(/\/$/, '');
}
