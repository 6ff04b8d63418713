import { withoutCredentials } from '../../logger';
import type { CloudEvent } from 'cloudevents';
import { randomBytes } from 'node:crypto';
import { connect, type IClientPublishOptions, type MqttClient } from 'mqtt';
import { DeliveryError, ErrorCodes, PgceError, errorMessage } from '../../errors';
import { logger } from '../../logger';
import { Budget, withDeadline } from '../support/deadline';
import { LazyConnection } from '../support/lazy-connection';
import { fixedDestination, type Template } from '../template';
import type { PlainMessage, Sink } from '../types';
import { isRetriableMqttError, reasonCodeOf } from './classify';
import { encodeMqtt, encodePlainMqtt, topicProblem, type ContentMode, type MqttMessage } from './encode';

const log = logger('sink.mqtt');
// The mqtt package's own reconnect cadence while the broker is away.
const RECONNECT_PERIOD_MS = 1000;

export interface MqttSinkOptions {
  brokerName: string;
  /** mqtt://, mqtts://, ws:// or wss:// URL; credentials in it or in username/password. */
  url: string;
  username?: string;
  password?: string;
  /** Default: `pg-cloudevents-<random>`; two live clients with one id knock each other off. */
  clientId?: string;
  topic: Template;
  topicText: string;
  qos: 0 | 1 | 2;
  retain: boolean;
  mode: ContentMode;
  /** Every send (waiting for the connection + PUBLISH + PUBACK/PUBCOMP) is bounded by this. */
  timeoutMs: number;
}

/**
 * `type: mqtt` (the `mqtt` package, MQTT 5): one client, opened on first use and reconnected by the
 * package. A send resolves on PUBACK (QoS 1) or PUBCOMP (QoS 2); QoS 0 has no acknowledgement, so
 * it resolves once written to the socket. Nothing is queued while the broker is away: a send waits
 * for the connection at most `timeoutMs` (failing at once when an attempt is refused) and a publish
 * still unacknowledged at the deadline is taken out of the client's store, so it is neither resent
 * later nor kept in memory; the delivery layer retries it.
 */
export class MqttSink implements Sink {
  readonly name = 'mqtt';
  /** The package reconnects the client by itself; a new one is made only after a refused CONNACK. */
  private readonly client: LazyConnection<MqttClient>;
  private lastError?: Error;

  constructor(private readonly options: MqttSinkOptions) {
    this.client = new LazyConnection<MqttClient>({
      open: async () => this.newClient(),
      dispose: endClient,
      // A polite end waits for the acknowledgements of publishes in flight: bounded, then forced.
      closeTimeoutMs: options.timeoutMs,
      forceDispose: (client) => void client.end(true),
      closedError: () => new DeliveryError(`${this.describe()} is closed`, { retriable: true }),
    });
  }

  describe(): string {
    const o = this.options;
    return `mqtt broker ${o.brokerName} (${safeUrl(o.url)} topic ${JSON.stringify(o.topicText)} qos ${o.qos})`;
  }

  async send(event: CloudEvent<unknown>): Promise<void> {
    await this.publish(this.route(event), encodeMqtt(event, this.options.mode));
  }

  /** A bare payload (trigger action) to the fixed topic; see encodePlainMqtt. */
  async sendMessage(message: PlainMessage): Promise<void> {
    const topic = this.valid(fixedDestination(this.options.topicText, `brokers.${this.options.brokerName}.params.topic`));
    await this.publish(topic, encodePlainMqtt(message));
  }

  /** Waits for the connection, refuses a packet over the broker's limit, publishes, awaits the acknowledgement. */
  private async publish(topic: string, message: MqttMessage): Promise<void> {
    const budget = new Budget(this.options.timeoutMs);
    const client = await this.client.get();
    try {
      await this.connected(client, this.options.timeoutMs);
    } catch (err) {
      throw this.deliveryError(err, false, topic);
    }
    const limit = client.serverProperties?.maximumPacketSize;
    // Payload, topic and properties: a lower bound of the PUBLISH packet's size (MQTT 5 §3.3).
    const size = message.payload.length + Buffer.byteLength(topic) +
      Object.entries(message.userProperties).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v) + 5, 0);
    if (limit && size > limit) {
      throw new DeliveryError(`${this.describe()}: the message (${size} bytes or more) exceeds the broker's maximum packet size ${limit}`, {
        retriable: false,
        detail: { mqttReasonCode: 149 },
      });
    }
    const opts: IClientPublishOptions = {
      qos: this.options.qos,
      retain: this.options.retain,
      properties: {
        ...(message.contentType ? { contentType: message.contentType } : {}),
        ...(Object.keys(message.userProperties).length ? { userProperties: message.userProperties } : {}),
      },
    };
    try {
      await publishWithin(client, topic, message.payload, opts, budget.left());
    } catch (err) {
      throw this.deliveryError(err, true, topic);
    }
  }

  async check(): Promise<void> {
    try {
      await this.connected(await this.client.get(), this.options.timeoutMs);
    } catch (err) {
      throw new PgceError(ErrorCodes.SINK_UNREACHABLE, `${this.describe()} is not reachable: ${describeError(err, this.options.timeoutMs)}`, {
        retriable: isRetriableMqttError(err),
        cause: err,
      });
    }
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private route(event: CloudEvent<unknown>): string {
    return this.valid(this.options.topic(event));
  }

  /** The topic, or a final DeliveryError for a name MQTT forbids (a wildcard, empty). */
  private valid(topic: string): string {
    const problem = topicProblem(topic);
    if (problem) throw new DeliveryError(`${this.describe()}: topic ${JSON.stringify(topic)} ${problem}`, { retriable: false });
    return topic;
  }

  private newClient(): MqttClient {
    const o = this.options;
    const client = connect(o.url, {
      protocolVersion: 5,
      clientId: o.clientId ?? `pg-cloudevents-${randomBytes(6).toString('hex')}`,
      ...(o.username !== undefined ? { username: o.username } : {}),
      ...(o.password !== undefined ? { password: o.password } : {}),
      clean: true,
      connectTimeout: Math.min(o.timeoutMs, 30_000),
      reconnectPeriod: RECONNECT_PERIOD_MS,
      // Never hold messages for later: a send fails and the delivery layer retries it.
      queueQoSZero: false,
      resubscribe: false,
    });
    client.on('error', (err) => {
      // Once per outage: the package retries every RECONNECT_PERIOD_MS while the broker is away.
      if (!this.lastError) log.warn({ err: errorMessage(err), broker: o.brokerName }, 'mqtt connection error; the client keeps reconnecting');
      this.lastError = err;
      // A refused CONNACK (bad credentials, banned…) stops the package's reconnects: start over
      // with a new client on the next send.
      if (reasonCodeOf(err) !== undefined && !client.connected && this.client.peek() === client) {
        this.client.drop(client);
        void endClient(client);
      }
    });
    client.on('connect', () => {
      this.lastError = undefined;
    });
    return client;
  }

  /** Resolves when connected; rejects on the next refused attempt or after `ms`. */
  private connected(client: MqttClient, ms: number): Promise<void> {
    if (client.connected) return Promise.resolve();
    let stop = () => undefined as void;
    return withDeadline(ms, () => new Promise<void>((resolve, reject) => {
      const finish = (err?: Error) => {
        stop();
        if (err) reject(err);
        else resolve();
      };
      const onConnect = () => finish();
      const onError = (err: Error) => finish(err);
      const onClose = () => finish(this.lastError ?? new Error('connection closed before CONNACK'));
      const onEnd = () => finish(new Error('client ended'));
      stop = () => {
        client.off('connect', onConnect);
        client.off('error', onError);
        client.off('close', onClose);
        client.off('end', onEnd);
      };
      client.on('connect', onConnect);
      client.on('error', onError);
      client.on('close', onClose);
      client.on('end', onEnd);
    }), { onLate: () => stop(), error: () => new TimedOut(`no connection within ${ms} ms`) });
  }

  private deliveryError(err: unknown, connected: boolean, topic: string): DeliveryError {
    if (err instanceof DeliveryError) return err;
    const retriable = isRetriableMqttError(err);
    const code = reasonCodeOf(err);
    const what = connected ? `publish to ${JSON.stringify(topic)}` : 'cannot connect';
    return new DeliveryError(`${this.describe()}: ${what}: ${describeError(err, this.options.timeoutMs)}`, {
      retriable,
      code: !connected && retriable ? ErrorCodes.SINK_UNREACHABLE : undefined,
      cause: err,
      detail: code === undefined ? {} : { mqttReasonCode: code },
    });
  }
}

/** One PUBLISH, resolved by its acknowledgement; at the deadline it leaves the client's store. */
function publishWithin(client: MqttClient, topic: string, payload: Buffer, opts: IClientPublishOptions, ms: number): Promise<void> {
  let callback: (err?: Error) => void = () => undefined;
  return withDeadline(ms, () => new Promise<void>((resolve, reject) => {
    callback = (err?: Error) => (err ? reject(err) : resolve());
    client.publish(topic, payload, opts, callback);
  }), {
    onLate: () => {
      for (const [id, pending] of Object.entries(client.outgoing)) {
        if (pending.cb === callback) client.removeOutgoingMessage(Number(id));
      }
    },
    error: () => new TimedOut(`no acknowledgement within ${ms} ms`),
  });
}

function endClient(client: MqttClient): Promise<void> {
  return new Promise((resolve) => {
    // Forced when not connected: a polite DISCONNECT would wait for a connection that is not there.
    client.end(!client.connected, {}, () => resolve());
  });
}

class TimedOut extends Error {}

function describeError(err: unknown, timeoutMs: number): string {
  if (err instanceof TimedOut) return err.message;
  const code = (err as { code?: unknown }).code;
  const text = errorMessage(err) || (typeof code === 'string' ? code : `error within ${timeoutMs} ms`);
  return typeof code === 'string' && !text.includes(code) ? `${code}: ${text}` : text;
}

/** The URL without user and password, as describe() shows it. */
export function safeUrl(raw: string): string {
  return withoutCredentials(raw).replace(/\/$/, '');
}
