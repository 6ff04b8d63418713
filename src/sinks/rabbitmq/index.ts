import type { BrokerConfig, Config } from '../../config/types';
import { compileTemplate } from '../template';
import type { BrokerType } from '../broker';
import type { ContentMode } from './encode';
import type { RabbitmqDestination } from './sink';

const DEFAULT_HEARTBEAT_SECONDS = 10;

/**
 * `type: rabbitmq` (amqplib, AMQP 0-9-1): `params.exchange` + `params.routingKey` (a template), or
 * `params.queue` (through the default exchange; `declare: true` asserts it as a durable queue).
 * Publisher confirms; CloudEvents AMQP binding, binary mode by default (see encode.ts).
 */
export const rabbitmqBroker: BrokerType = {
  type: 'rabbitmq',
  connSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['url'],
    properties: {
      url: { type: 'string', pattern: '^amqps?://' },
      heartbeat: { type: 'integer', minimum: 0 },
    },
  },
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      exchange: { type: 'string' },
      routingKey: { type: 'string' },
      queue: { type: 'string', minLength: 1 },
      declare: { type: 'boolean' },
      persistent: { type: 'boolean' },
      mode: { enum: ['binary', 'structured'] },
    },
    // Exactly one of exchange and queue: both missing reports `params.exchange`/`params.queue: is required`.
    oneOf: [{ required: ['exchange'] }, { required: ['queue'] }],
    dependencies: { exchange: ['routingKey'], routingKey: ['exchange'], declare: ['queue'] },
  },
  create(broker: BrokerConfig, config: Config) {
    const conn = broker.conn as { url: string; heartbeat?: number };
    const params = broker.params as {
      exchange?: string; routingKey?: string; queue?: string; declare?: boolean; persistent?: boolean; mode?: ContentMode;
    };
    const where = `brokers.${broker.name}.params`;
    const destination: RabbitmqDestination = params.queue !== undefined
      ? { kind: 'queue', queue: compileTemplate(params.queue, `${where}.queue`), queueText: params.queue, declare: params.declare ?? false }
      : {
          kind: 'exchange',
          exchange: params.exchange ?? '',
          routingKey: compileTemplate(params.routingKey ?? '', `${where}.routingKey`),
          routingKeyText: params.routingKey ?? '',
        };
    return new (loadSink().RabbitmqSink)({
      brokerName: broker.name,
      url: conn.url,
      heartbeatSeconds: conn.heartbeat ?? DEFAULT_HEARTBEAT_SECONDS,
      destination,
      mode: params.mode ?? 'binary',
      persistent: params.persistent ?? true,
      timeoutMs: config.sink.timeoutMs,
    });
  },
};


export type { RabbitmqDestination, RabbitmqSinkOptions } from './sink';
export { AMQP_ATTRIBUTE_PREFIX, STRUCTURED_CONTENT_TYPE, encodeAmqp } from './encode';
export type { AmqpMessage, ContentMode } from './encode';
export { isRetriableAmqpError } from './classify';

/**
 * The client library loads when a broker of this type is created, not when the registry is: an
 * HTTP-only deployment never pays its start-up time and memory (the six libraries together are
 * about 100 MB of RSS and 0.9 s of start-up).
 */
function loadSink(): typeof import('./sink') {
  return require('./sink') as typeof import('./sink');
}
