import type { CloudEvent } from 'cloudevents';
import { Kafka, logLevel, Partitioners, type KafkaConfig, type LogEntry, type Message, type Producer } from 'kafkajs';
import type { BrokerConfig } from '../../config/types';
import { DeliveryError, ErrorCodes, PgceError, errorMessage } from '../../errors';
import { logger } from '../../logger';
import { DeadlineExceeded, withDeadline } from '../support/deadline';
import { LazyConnection } from '../support/lazy-connection';
import { fixedDestination, type Template } from '../template';
import type { PlainMessage, Sink } from '../types';
import { encodeKafkaMessages, encodePlainKafkaMessage, type KafkaMode } from './encode';
import { classifyKafkaError } from './errors';
import type { KafkaConn, KafkaParams } from './schema';

// Kafka's legal topic names (kafka.common.internals.Topic): at most 249 of [a-zA-Z0-9._-].
const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;

const log = logger('sink.kafka');

export interface KafkaSinkOptions {
  broker: BrokerConfig;
  topic: Template;
  /** Per-send budget (config.sink.timeoutMs): connect + produce + acknowledgement. */
  timeoutMs: number;
}

/**
 * A configured Kafka broker (kafkajs). One producer, connected on first use and reused; kafkajs
 * reconnects to brokers by itself. Every send waits for all in-sync replicas (`acks: -1`) and is
 * bounded by `timeoutMs`. No idempotent producer or transactions: our delivery engine owns retries
 * and per-row order (one event of a key in flight at a time), and consumers dedupe on the event id.
 */
export class KafkaSink implements Sink {
  readonly name: string;
  private readonly conn: KafkaConn;
  private readonly mode: KafkaMode;
  private readonly tombstone: boolean;
  private readonly kafka: Kafka;
  private readonly producer: LazyConnection<Producer>;

  constructor(private readonly options: KafkaSinkOptions) {
    const { broker } = options;
    this.name = broker.name;
    this.conn = broker.conn as unknown as KafkaConn;
    const params = broker.params as unknown as KafkaParams;
    this.mode = params.mode ?? 'binary';
    this.tombstone = params.tombstone ?? false;
    this.kafka = new Kafka(clientConfig(this.conn, options.timeoutMs));
    this.producer = new LazyConnection({
      open: () => this.openProducer(),
      dispose: (producer) => producer.disconnect().catch((err: unknown) => log.debug({ err: errorMessage(err) }, 'kafka producer disconnect failed')),
      closedError: () => new DeliveryError(`kafka broker ${this.name} is closed`, { retriable: true }),
    });
  }

  describe(): string {
    return `kafka://${this.conn.brokers.join(',')} (broker ${this.name}, ${this.mode} mode)`;
  }

  async send(event: CloudEvent<unknown>): Promise<void> {
    await this.sendBatch([event]);
  }

  /**
   * Events in one produce request per broker (`brokers.<name>.batchSize`, 1 for `send`); records of one
   * partition keep their order inside it. Accepted or failed together; a retry sends them all
   * again (consumers dedupe on the event id, as for any redelivery).
   */
  async sendBatch(events: CloudEvent<unknown>[]): Promise<void> {
    if (events.length === 0) return;
    const byTopic = new Map<string, Message[]>();
    for (const event of events) {
      const { topic, messages } = this.encode(event);
      const list = byTopic.get(topic);
      if (list) list.push(...messages);
      else byTopic.set(topic, messages);
    }
    await this.produce([...byTopic].map(([topic, messages]) => ({ topic, messages })));
  }

  /** A bare payload (trigger action) as one record to the fixed topic; see encodePlainKafkaMessage. */
  async sendMessage(message: PlainMessage): Promise<void> {
    const topic = this.validTopic(fixedDestination(this.options.broker.params.topic as string, `brokers.${this.name}.params.topic`));
    await this.produce([{ topic, messages: [encodePlainKafkaMessage(message)] }]);
  }

  /** One produce request, acknowledged by all in-sync replicas, within the per-send deadline. */
  private async produce(topicMessages: { topic: string; messages: Message[] }[]): Promise<void> {
    await this.bounded(`did not confirm within ${this.options.timeoutMs} ms`, async () => {
      const producer = await this.producer.get();
      await producer.sendBatch({ topicMessages, acks: -1, timeout: this.options.timeoutMs });
    });
  }

  /** Connects (bounded by the timeout) and, for a fixed topic, asks the cluster for its metadata. */
  async check(): Promise<void> {
    const fixedTopic = this.fixedTopic();
    try {
      await this.bounded(`did not answer within ${this.options.timeoutMs} ms`, async () => {
        await this.producer.get();
        if (fixedTopic === undefined) return;
        const admin = this.kafka.admin();
        await admin.connect();
        try {
          await admin.fetchTopicMetadata({ topics: [fixedTopic] });
        } finally {
          await admin.disconnect();
        }
      });
    } catch (err) {
      const e = err instanceof DeliveryError ? err : classifyKafkaError(err, this.describe());
      throw new PgceError(e.code === ErrorCodes.SINK_UNREACHABLE ? ErrorCodes.SINK_UNREACHABLE : ErrorCodes.SINK_CONFIG,
        `kafka broker ${this.name} (${this.conn.brokers.join(',')}) failed the check: ${e.message}`, { retriable: e.retriable, cause: err });
    }
  }

  async close(): Promise<void> {
    await this.producer.close();
  }

  /** Topic and records, or a final DeliveryError: no retry fixes a missing attribute or bad name. */
  private encode(event: CloudEvent<unknown>): { topic: string; messages: Message[] } {
    let topic: string;
    let messages: Message[];
    try {
      topic = this.options.topic(event);
      messages = encodeKafkaMessages(event, this.mode, this.tombstone);
    } catch (err) {
      throw new DeliveryError(`kafka broker ${this.name}: cannot encode event ${event.id}: ${errorMessage(err)}`, { retriable: false, cause: err });
    }
    return { topic: this.validTopic(topic), messages };
  }

  /** The topic, or a final DeliveryError for a name Kafka would refuse. */
  private validTopic(topic: string): string {
    if (!TOPIC_NAME.test(topic)) {
      throw new DeliveryError(`kafka broker ${this.name}: ${JSON.stringify(topic)} is not a valid Kafka topic name (at most 249 of a-z A-Z 0-9 . _ -)`, { retriable: false });
    }
    return topic;
  }

  private async openProducer(): Promise<Producer> {
    const producer = this.kafka.producer({
      // librdkafka's mock and many managed clusters do without; the engine dedupes nothing either.
      idempotent: false,
      allowAutoTopicCreation: false,
      // Java-compatible murmur2: a key maps to the partition Java clients would pick.
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: { retries: 0 },
    });
    try {
      await producer.connect();
    } catch (err) {
      await producer.disconnect().catch(() => undefined);
      throw err;
    }
    return producer;
  }

  /** Runs `work` with the per-send deadline; kafkajs failures become classified DeliveryErrors. */
  private async bounded(late: string, work: () => Promise<void>): Promise<void> {
    const connected = this.producer.peek() !== undefined;
    try {
      await withDeadline(this.options.timeoutMs, work);
    } catch (err) {
      if (err instanceof DeadlineExceeded) {
        throw new DeliveryError(`kafka ${this.describe()} ${late}`, {
          retriable: true,
          code: connected ? ErrorCodes.SINK_RETRIABLE : ErrorCodes.SINK_UNREACHABLE,
        });
      }
      throw classifyKafkaError(err, this.describe());
    }
  }

  private fixedTopic(): string | undefined {
    const params = this.options.broker.params as unknown as KafkaParams;
    return params.topic.includes('{{') ? undefined : params.topic;
  }
}

function clientConfig(conn: KafkaConn, timeoutMs: number): KafkaConfig {
  return {
    clientId: conn.clientId ?? 'pg-cloudevents',
    brokers: conn.brokers,
    ssl: conn.ssl ?? false,
    ...(conn.sasl ? { sasl: { ...conn.sasl } as KafkaConfig['sasl'] } : {}),
    connectionTimeout: Math.min(timeoutMs, 10_000),
    requestTimeout: timeoutMs,
    // One attempt per send: the delivery engine retries with its own backoff (README, "Retries").
    retry: { retries: 0 },
    logLevel: logLevel.WARN,
    logCreator: () => logEntry,
  };
}

/**
 * kafkajs' own warnings and errors at debug: every failed send already reaches the engine's log as
 * a classified DeliveryError, and kafkajs repeats each one per broker connection.
 */
function logEntry({ namespace, level, log: entry }: LogEntry): void {
  const { message, timestamp: _t, logger: _l, ...rest } = entry as LogEntry['log'] & { logger?: string };
  log.debug({ kafkajs: namespace, kafkajsLevel: logLevel[level], ...rest }, message);
}
