import type { BrokerConfig, Config } from '../../config/types';
import { ConfigError } from '../../errors';
import { compileTemplate } from '../template';
import type { BrokerType } from '../broker';
import type { NatsMode } from './encode';

const SERVER_PATTERN = '^(nats|tls)://\\S+$';

/**
 * `type: nats`: JetStream publish to `params.subject` (a template allowed) with `Nats-Msg-Id` =
 * the event id; delivered only on the stream's PubAck. `params.stream` names a stream to create
 * when it does not exist (capturing `streamSubjects`, default: the subject), for tests and small
 * set-ups; production streams are usually managed by their operators.
 */
export const natsBroker: BrokerType = {
  type: 'nats',
  connSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['servers'],
    properties: {
      // `pattern` applies to a string, `items` to an array: one key, either shape.
      servers: { type: ['string', 'array'], pattern: SERVER_PATTERN, minItems: 1, items: { type: 'string', pattern: SERVER_PATTERN } },
      user: { type: 'string', minLength: 1 },
      pass: { type: 'string' },
      token: { type: 'string', minLength: 1 },
    },
    dependencies: { user: ['pass'], pass: ['user'] },
  },
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['subject'],
    properties: {
      subject: { type: 'string', minLength: 1 },
      stream: { type: 'string', pattern: '^[^.*>/\\\\\\s]+$' },
      streamSubjects: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
      mode: { enum: ['structured', 'binary'] },
    },
    dependencies: { streamSubjects: ['stream'] },
  },
  create(broker: BrokerConfig, config: Config) {
    const conn = broker.conn as { servers: string | string[]; user?: string; pass?: string; token?: string };
    const params = broker.params as { subject: string; stream?: string; streamSubjects?: string[]; mode?: NatsMode };
    const where = `brokers.${broker.name}.params`;
    const template = compileTemplate(params.subject, `${where}.subject`);
    const templated = params.subject.includes('{{');
    if (params.stream && !params.streamSubjects && templated) {
      throw new ConfigError([`${where}.streamSubjects: is required when ${where}.subject is a template and ${where}.stream is set`]);
    }
    return new (loadSink().NatsSink)({
      brokerName: broker.name,
      servers: Array.isArray(conn.servers) ? conn.servers : [conn.servers],
      user: conn.user,
      pass: conn.pass,
      token: conn.token,
      subject: { text: params.subject, template },
      stream: params.stream ? { name: params.stream, subjects: params.streamSubjects ?? [params.subject] } : undefined,
      mode: params.mode ?? 'structured',
      timeoutMs: config.sink.timeoutMs,
    });
  },
};

export type { NatsSinkOptions } from './sink';
export { decodeNats, encodeNats, percentDecode, percentEncode, STRUCTURED_CONTENT_TYPE } from './encode';
export type { NatsMessage, NatsMode, ReceivedNatsMessage } from './encode';

/**
 * The client library loads when a broker of this type is created, not when the registry is: an
 * HTTP-only deployment never pays its start-up time and memory (the six libraries together are
 * about 100 MB of RSS and 0.9 s of start-up).
 */
function loadSink(): typeof import('./sink') {
  return require('./sink') as typeof import('./sink');
}
