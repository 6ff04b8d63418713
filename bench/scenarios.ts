/**
 * The scenarios: one small object each. A scenario says how the product is configured (the YAML
 * that goes next to the run's own capture settings) and whether it can run in this build.
 * Broker scenarios count at the broker (a consumer in the bench, bench/brokers/) instead of the
 * HTTP receiver; their configuration names the run's own stream/subject/topic through `${name}`
 * placeholders that the broker's `prepare` fills in (bench/brokers/<type>.ts).
 */
import type { BrokerKind } from './brokers/types';

export interface Scenario {
  id: string;
  title: string;
  /** Configuration-file lines (sink, delivery, handler, brokers), beside the run's capture/tables. */
  config: string;
  /** Where events go: 'http' = the counting receiver (K_SINK); 'broker' = `broker`, counted there. */
  target: 'http' | 'broker';
  broker?: BrokerKind;
  /** Fixed commit rates (changes/s) at which latency is measured after the throughput run. */
  latencyRates: number[];
  /**
   * The scenario this one varies (a setting changed): smoke runs skip its latency phases, which
   * its base scenario already exercises, to stay under a minute.
   */
  variantOf?: string;
  /** Why the scenario cannot run in this build (undefined = it can). */
  pending(): string | undefined;
}

const always = () => undefined;

/** The scenario's configuration with every `${name}` replaced; an unknown name is an error. */
export function renderConfig(config: string, vars: Record<string, string>): string {
  return config.replace(/\$\{(\w+)\}/g, (_, name: string) => {
    if (!Object.prototype.hasOwnProperty.call(vars, name)) throw new Error(`scenario configuration refers to \${${name}}, which its broker does not set`);
    return vars[name];
  });
}

/** One broker named `bench`, chosen as the handler; delivery as the HTTP scenarios at 64. */
const brokerConfig = (broker: string): string => `brokers:\n  bench: ${broker}\nhandler: bench\ndelivery: { maxInFlight: 64 }\n`;

export const SCENARIOS: Scenario[] = [
  {
    id: 'http-binary-mif1',
    title: 'HTTP binary, maxInFlight 1',
    config: 'sink: { mode: binary }\ndelivery: { maxInFlight: 1 }\n',
    target: 'http',
    latencyRates: [1000],
    pending: always,
  },
  {
    id: 'http-binary-mif64',
    title: 'HTTP binary, maxInFlight 64',
    config: 'sink: { mode: binary }\ndelivery: { maxInFlight: 64 }\n',
    target: 'http',
    latencyRates: [1000, 5000],
    pending: always,
  },
  {
    id: 'http-structured',
    title: 'HTTP structured, maxInFlight 64',
    config: 'sink: { mode: structured }\ndelivery: { maxInFlight: 64 }\n',
    target: 'http',
    latencyRates: [1000, 5000],
    pending: always,
  },
  {
    id: 'http-batch',
    title: 'HTTP batch (100 events/request), maxInFlight 64',
    config: 'sink: { mode: batch, batchSize: 100 }\ndelivery: { maxInFlight: 64 }\n',
    target: 'http',
    latencyRates: [1000, 5000],
    pending: always,
  },
  {
    id: 'redis-stream',
    title: 'Redis stream (XADD), maxInFlight 64',
    config: brokerConfig('{ type: redis, conn: { url: "${url}" }, params: { stream: "${stream}" } }'),
    target: 'broker',
    broker: 'redis',
    latencyRates: [1000],
    pending: always,
  },
  {
    id: 'nats-jetstream',
    title: 'NATS JetStream, maxInFlight 64',
    config: brokerConfig('{ type: nats, conn: { servers: "${url}" }, params: { subject: "${subject}" } }'),
    target: 'broker',
    broker: 'nats',
    latencyRates: [1000],
    pending: always,
  },
  {
    id: 'kafka-mock',
    title: 'Kafka (librdkafka mock cluster), maxInFlight 64',
    config: brokerConfig('{ type: kafka, conn: { brokers: ${brokers} }, params: { topic: "${topic}" } }'),
    target: 'broker',
    broker: 'kafka',
    latencyRates: [1000],
    pending: always,
  },
  // The same brokers with `batchSize: 100` (README "Batches"): what a deployment chasing
  // throughput runs, and what the 40,000 events/s target is about.
  {
    id: 'redis-stream-batch',
    variantOf: 'redis-stream',
    title: 'Redis stream (XADD), batchSize 100, maxInFlight 64',
    config: brokerConfig('{ type: redis, batchSize: 100, conn: { url: "${url}" }, params: { stream: "${stream}" } }'),
    target: 'broker',
    broker: 'redis',
    latencyRates: [1000],
    pending: always,
  },
  {
    id: 'nats-jetstream-batch',
    variantOf: 'nats-jetstream',
    title: 'NATS JetStream, batchSize 100, maxInFlight 64',
    config: brokerConfig('{ type: nats, batchSize: 100, conn: { servers: "${url}" }, params: { subject: "${subject}" } }'),
    target: 'broker',
    broker: 'nats',
    latencyRates: [1000],
    pending: always,
  },
  {
    id: 'kafka-mock-batch',
    variantOf: 'kafka-mock',
    title: 'Kafka (librdkafka mock cluster), batchSize 100, maxInFlight 64',
    config: brokerConfig('{ type: kafka, batchSize: 100, conn: { brokers: ${brokers} }, params: { topic: "${topic}" } }'),
    target: 'broker',
    broker: 'kafka',
    latencyRates: [1000],
    pending: always,
  },
];
