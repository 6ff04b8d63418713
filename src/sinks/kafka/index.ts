import type { BrokerType } from '../broker';
import { compileTemplate } from '../../rules/template';
import type { KafkaParams } from './schema';
import { connSchema, paramsSchema } from './schema';
import { KafkaSink } from './sink';

export { KafkaSink } from './sink';
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
    return new KafkaSink({ broker, topic, timeoutMs: config.sink.timeoutMs });
  },
};
