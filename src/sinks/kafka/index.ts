import type { BrokerType } from '../broker';
import { compileTemplate } from '../template';
import type { KafkaParams } from './schema';
import { connSchema, paramsSchema } from './schema';

export type { KafkaConn, KafkaParams } from './schema';

/**
 * `type: kafka` (kafkajs): CloudEvents Kafka binding, binary by default, key = partitionkey,
 * acks = all, optional tombstones for deletes. See the README ("Kafka handler").
 */
export const kafkaBroker: BrokerType = {
  type: 'kafka',
  connSchema,
  paramsSchema,
  create(broker, config) {
    const where = `brokers.${broker.name}.params.topic`;
    const topic = compileTemplate((broker.params as unknown as KafkaParams).topic, where);
    return new (loadSink().KafkaSink)({ broker, topic, timeoutMs: config.sink.timeoutMs });
  },
};

/**
 * The client library loads when a broker of this type is created, not when the registry is: an
 * HTTP-only deployment never pays its start-up time and memory (the six libraries together are
 * about 100 MB of RSS and 0.9 s of start-up).
 */
function loadSink(): typeof import('./sink') {
  return require('./sink') as typeof import('./sink');
}
