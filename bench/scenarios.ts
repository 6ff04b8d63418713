/**
 * The scenarios: one small object each. A scenario says how the product is configured (the YAML
 * that goes next to the run's own capture settings) and whether it can run in this build.
 * Broker scenarios count at the broker (a consumer in the bench) instead of the HTTP receiver.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from '../test/integration/harness/process';

export interface Scenario {
  id: string;
  title: string;
  /** Configuration-file lines (sink, delivery, handler, brokers), beside the run's capture/tables. */
  config: string;
  /** Where events go: 'http' = the counting receiver (K_SINK). */
  target: 'http' | 'broker';
  /** Fixed commit rates (changes/s) at which latency is measured after the throughput run. */
  latencyRates: number[];
  /** Why the scenario cannot run in this build (undefined = it can). */
  pending(): string | undefined;
}

const always = () => undefined;

/** A broker sink still in its placeholder state refuses to start; its scenario is pending. */
function brokerPending(type: string): () => string | undefined {
  return () => {
    const file = path.join(REPO_ROOT, 'src', 'sinks', type, 'index.ts');
    const text = readFileSync(file, 'utf8');
    if (/not available in this build yet/.test(text)) return `the ${type} sink (src/sinks/${type}) is still a placeholder in this build`;
    return `the ${type} sink has landed; its bench scenario (a counting consumer at the broker) is not written yet`;
  };
}

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
  { id: 'redis-stream', title: 'Redis stream', config: '', target: 'broker', latencyRates: [1000], pending: brokerPending('redis') },
  { id: 'nats-jetstream', title: 'NATS JetStream', config: '', target: 'broker', latencyRates: [1000], pending: brokerPending('nats') },
  { id: 'kafka-mock', title: 'Kafka (librdkafka mock cluster)', config: '', target: 'broker', latencyRates: [1000], pending: brokerPending('kafka') },
];
