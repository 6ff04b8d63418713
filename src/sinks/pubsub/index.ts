import { ConfigError } from '../../errors';
import { compileTemplate } from '../template';
import type { BrokerType } from '../broker';
import { topicProblem } from './encode';

export type { PubSubSinkOptions } from './sink';
export { encodeMessage, orderingKeyFor, topicProblem, LIMITS, CONTENT_TYPE_ATTRIBUTE, STRUCTURED_CONTENT_TYPE } from './encode';

export const DEFAULT_BATCH_DELAY_MS = 5;

/**
 * `type: pubsub`. conn: `projectId` (required), `apiEndpoint` (host:port; a non-googleapis.com
 * endpoint is used without TLS, as for the emulator), `keyFilename` (service-account JSON; else
 * Application Default Credentials). `PUBSUB_EMULATOR_HOST` is honoured by the client library
 * when `apiEndpoint` is not set. params: `topic` (id or projects/<p>/topics/<id>; a template),
 * `ordering` (orderingKey = partitionkey), `mode` (binary | structured), `batchDelayMs`.
 */
export const pubsubBroker: BrokerType = {
  type: 'pubsub',
  connSchema: {
    type: 'object',
    required: ['projectId'],
    additionalProperties: false,
    properties: {
      projectId: { type: 'string', minLength: 1 },
      apiEndpoint: { type: 'string', minLength: 1 },
      keyFilename: { type: 'string', minLength: 1 },
    },
  },
  paramsSchema: {
    type: 'object',
    required: ['topic'],
    additionalProperties: false,
    properties: {
      topic: { type: 'string', minLength: 1 },
      ordering: { type: 'boolean' },
      mode: { enum: ['binary', 'structured'] },
      batchDelayMs: { type: 'integer', minimum: 0, maximum: 1000 },
    },
  },
  create(broker, config) {
    const where = `brokers.${broker.name}.params.topic`;
    const topicText = broker.params.topic as string;
    const topic = compileTemplate(topicText, where);
    const fixedProblem = topicText.includes('{{') ? undefined : topicProblem(topicText);
    if (fixedProblem) throw new ConfigError([`${where}: ${fixedProblem}`]);
    const conn = broker.conn as { projectId: string; apiEndpoint?: string; keyFilename?: string };
    return new (loadSink().PubSubSink)({
      name: broker.name,
      projectId: conn.projectId,
      apiEndpoint: conn.apiEndpoint,
      keyFilename: conn.keyFilename,
      topicText,
      topic,
      ordering: broker.params.ordering === true,
      mode: broker.params.mode === 'structured' ? 'structured' : 'binary',
      batchDelayMs: typeof broker.params.batchDelayMs === 'number' ? broker.params.batchDelayMs : DEFAULT_BATCH_DELAY_MS,
      timeoutMs: config.sink.timeoutMs,
    });
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
