/**
 * `brokers.<name>` settings for `type: kafka`, as JSON Schemas (draft-07) checked by the registry
 * before anything connects. Every key is listed and `additionalProperties: false`, so a typo is
 * reported as an unknown key instead of being ignored.
 */

export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';

export interface KafkaConn {
  /** Bootstrap servers, `host:port`. */
  brokers: string[];
  clientId?: string;
  /** TLS with the system's trusted CAs. */
  ssl?: boolean;
  sasl?: { mechanism: SaslMechanism; username: string; password: string };
}

export interface KafkaParams {
  /** Destination topic; a template over the event (`{{ app }}.{{ model }}`) is allowed. */
  topic: string;
  /** CloudEvents Kafka binding content mode (§3.2 binary, §3.3 structured). */
  mode?: 'binary' | 'structured';
  /** After a delete event, also send a null-value record with the same key (compacted topics). */
  tombstone?: boolean;
}

export const connSchema = {
  type: 'object',
  required: ['brokers'],
  additionalProperties: false,
  properties: {
    brokers: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', pattern: '^\\S+:[0-9]{1,5}$' },
    },
    clientId: { type: 'string', minLength: 1 },
    ssl: { type: 'boolean' },
    sasl: {
      type: 'object',
      required: ['mechanism', 'username', 'password'],
      additionalProperties: false,
      properties: {
        mechanism: { enum: ['plain', 'scram-sha-256', 'scram-sha-512'] },
        username: { type: 'string', minLength: 1 },
        password: { type: 'string' },
      },
    },
  },
} as const;

export const paramsSchema = {
  type: 'object',
  required: ['topic'],
  additionalProperties: false,
  properties: {
    topic: { type: 'string', minLength: 1 },
    mode: { enum: ['binary', 'structured'] },
    tombstone: { type: 'boolean' },
  },
} as const;
