import type { BrokerConfig, Config } from '../../config/types';
import { ConfigError } from '../../errors';
import { compileTemplate } from '../template';
import type { BrokerType } from '../broker';
import type { RedisConnection } from './sink';

/**
 * `type: redis`: PUBLISH to `params.channel` (what django-action-triggers and the seeds do) or
 * XADD to `params.stream` (optionally capped with `maxlen` → `MAXLEN ~ n`). The payload is the
 * structured-mode CloudEvents JSON event. Connect with `conn.url` (redis:// or rediss://) or
 * `conn.host` (+ `port`, `db`, `username`, `password`, `tls`); keys given next to `url` override it.
 */
export const redisBroker: BrokerType = {
  type: 'redis',
  connSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      url: { type: 'string', pattern: '^rediss?://' },
      host: { type: 'string', minLength: 1 },
      port: { type: 'integer', minimum: 1, maximum: 65535 },
      db: { type: 'integer', minimum: 0 },
      username: { type: 'string' },
      password: { type: 'string' },
      tls: { type: 'boolean' },
    },
    // Exactly one of url and host: both missing reports `conn.url`/`conn.host: is required`.
    oneOf: [{ required: ['url'] }, { required: ['host'] }],
  },
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      channel: { type: 'string', minLength: 1 },
      stream: { type: 'string', minLength: 1 },
      maxlen: { type: 'integer', minimum: 1 },
    },
    oneOf: [{ required: ['channel'] }, { required: ['stream'] }],
    dependencies: { maxlen: ['stream'] },
  },
  create(broker: BrokerConfig, config: Config) {
    const params = broker.params as { channel?: string; stream?: string; maxlen?: number };
    const kind = params.stream !== undefined ? 'stream' : 'channel';
    const text = (kind === 'stream' ? params.stream : params.channel) as string;
    const template = compileTemplate(text, `brokers.${broker.name}.params.${kind}`);
    return new (loadSink().RedisSink)({
      brokerName: broker.name,
      connection: connectionOf(broker.conn as RedisConn, `brokers.${broker.name}.conn`),
      destination: { kind, text, template, maxlen: params.maxlen },
      timeoutMs: config.sink.timeoutMs,
    });
  },
};

interface RedisConn {
  url?: string;
  host?: string;
  port?: number;
  db?: number;
  username?: string;
  password?: string;
  tls?: boolean;
}

/** `conn` → where to connect; explicit keys win over the URL's parts. */
export function connectionOf(conn: RedisConn, where = 'conn'): RedisConnection {
  const out: RedisConnection = { host: '127.0.0.1', port: 6379, db: 0, tls: false };
  if (conn.url !== undefined) {
    let url: URL;
    try {
      url = new URL(conn.url);
    } catch {
      throw new ConfigError([`${where}.url: is not a valid redis:// URL`]);
    }
    out.tls = url.protocol === 'rediss:';
    if (url.hostname) out.host = url.hostname.replace(/^\[|\]$/g, '');
    if (url.port) out.port = Number(url.port);
    const db = url.pathname.replace(/^\//, '');
    if (db) {
      if (!/^\d+$/.test(db)) throw new ConfigError([`${where}.url: the path must be a database number, got /${db}`]);
      out.db = Number(db);
    }
    if (url.username) out.username = decodeURIComponent(url.username);
    if (url.password) out.password = decodeURIComponent(url.password);
  }
  if (conn.host !== undefined) out.host = conn.host;
  if (conn.port !== undefined) out.port = conn.port;
  if (conn.db !== undefined) out.db = conn.db;
  if (conn.username !== undefined) out.username = conn.username;
  if (conn.password !== undefined) out.password = conn.password;
  if (conn.tls !== undefined) out.tls = conn.tls;
  return out;
}

export type { RedisConnection, RedisSinkOptions } from './sink';

/**
 * The client library loads when a broker of this type is created, not when the registry is: an
 * HTTP-only deployment never pays its start-up time and memory (the six libraries together are
 * about 100 MB of RSS and 0.9 s of start-up).
 */
function loadSink(): typeof import('./sink') {
  return require('./sink') as typeof import('./sink');
}
