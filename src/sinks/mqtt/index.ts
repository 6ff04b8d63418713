import type { BrokerConfig, Config } from '../../config/types';
import { ConfigError } from '../../errors';
import { compileTemplate } from '../template';
import type { BrokerType } from '../broker';
import { topicProblem, type ContentMode } from './encode';

/**
 * `type: mqtt` (the `mqtt` package, MQTT 5): publish each event to `params.topic` (a template)
 * with QoS `params.qos` (default 1, resolved on PUBACK) and `params.retain`; CloudEvents MQTT
 * binding, binary mode (User Properties) by default (see encode.ts).
 */
export const mqttBroker: BrokerType = {
  type: 'mqtt',
  connSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['url'],
    properties: {
      url: { type: 'string', pattern: '^(mqtts?|wss?)://' },
      username: { type: 'string' },
      password: { type: 'string' },
      clientId: { type: 'string', minLength: 1, maxLength: 65535 },
    },
  },
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['topic'],
    properties: {
      topic: { type: 'string', minLength: 1 },
      qos: { enum: [0, 1, 2] },
      retain: { type: 'boolean' },
      mode: { enum: ['binary', 'structured'] },
    },
  },
  create(broker: BrokerConfig, config: Config) {
    const conn = broker.conn as { url: string; username?: string; password?: string; clientId?: string };
    const params = broker.params as { topic: string; qos?: 0 | 1 | 2; retain?: boolean; mode?: ContentMode };
    const where = `brokers.${broker.name}.params.topic`;
    if (!params.topic.includes('{{')) {
      const problem = topicProblem(params.topic);
      if (problem) throw new ConfigError([`${where}: ${problem}`]);
    }
    return new (loadSink().MqttSink)({
      brokerName: broker.name,
      url: conn.url,
      username: conn.username,
      password: conn.password,
      clientId: conn.clientId,
      topic: compileTemplate(params.topic, where),
      topicText: params.topic,
      qos: params.qos ?? 1,
      retain: params.retain ?? false,
      mode: params.mode ?? 'binary',
      timeoutMs: config.sink.timeoutMs,
    });
  },
};


export type { MqttSinkOptions } from './sink';
export { encodeMqtt, topicProblem } from './encode';
export type { ContentMode, MqttMessage } from './encode';
export { isRetriableMqttError } from './classify';

/**
 * The client library loads when a broker of this type is created, not when the registry is: an
 * HTTP-only deployment never pays its start-up time and memory (the six libraries together are
 * about 100 MB of RSS and 0.9 s of start-up).
 */
function loadSink(): typeof import('./sink') {
  return require('./sink') as typeof import('./sink');
}
