import { expect } from 'chai';
import type { BrokerConfig, Config } from '../../../src/config/types';
import { ConfigError } from '../../../src/errors';
import { validateBroker } from '../../../src/sinks/broker';
import { connectionOf, redisBroker } from '../../../src/sinks/redis';
import { classifyRedisError, isAuthError } from '../../../src/sinks/redis/classify';

const broker = (conn: unknown, params: unknown): BrokerConfig =>
  ({ name: 'cache', type: 'redis', conn, params }) as BrokerConfig;

const config = { sink: { timeoutMs: 1000 } } as unknown as Config;

function replyError(message: string): Error {
  return Object.assign(new Error(message), { name: 'ReplyError' });
}

describe('sinks/redis configuration', () => {
  it('accepts a url with a channel, and host/port/db/tls with a capped stream', () => {
    expect(validateBroker(redisBroker, broker({ url: 'redis://127.0.0.1:6379' }, { channel: 'my_channel' }))).to.deep.equal([]);
    expect(validateBroker(redisBroker, broker(
      { host: 'redis', port: 6380, db: 2, username: 'u', password: 'p', tls: true },
      { stream: '{{ app }}.{{ model }}', maxlen: 1000 },
    ))).to.deep.equal([]);
  });

  it('reports a missing url/host and a missing channel/stream by key path', () => {
    expect(validateBroker(redisBroker, broker({}, {}))).to.include.members([
      'brokers.cache.conn.url: is required',
      'brokers.cache.conn.host: is required',
      'brokers.cache.params.channel: is required',
      'brokers.cache.params.stream: is required',
    ]);
  });

  it('refuses both channel and stream, and both url and host', () => {
    const problems = validateBroker(redisBroker, broker({ url: 'redis://a', host: 'b' }, { channel: 'c', stream: 's' }));
    expect(problems).to.deep.equal([
      'brokers.cache.conn: must match exactly one schema in oneOf',
      'brokers.cache.params: must match exactly one schema in oneOf',
    ]);
  });

  it('reports every wrongly typed or unknown key at once', () => {
    const problems = validateBroker(redisBroker, broker(
      { host: 'h', port: '6379', db: -1, tls: 'yes', pasword: 'x' },
      { stream: 's', maxlen: 1.5, topic: 't' },
    ));
    expect(problems).to.include.members([
      'brokers.cache.conn.port: must be integer',
      'brokers.cache.conn.db: must be >= 0',
      'brokers.cache.conn.tls: must be boolean',
      'brokers.cache.conn.pasword: unknown key',
      'brokers.cache.params.maxlen: must be integer',
      'brokers.cache.params.topic: unknown key',
    ]);
  });

  it('refuses a url that is not redis:// and maxlen without a stream', () => {
    const problems = validateBroker(redisBroker, broker({ url: 'http://x' }, { channel: 'c', maxlen: 5 }));
    expect(problems).to.include('brokers.cache.conn.url: must match pattern "^rediss?://"');
    expect(problems).to.include('brokers.cache.params: must have property stream when property maxlen is present');
  });

  it('connection: url parts, rediss → TLS, explicit keys win over the url', () => {
    expect(connectionOf({ url: 'rediss://me:s%40cret@cache.local:6380/3' })).to.deep.equal({
      host: 'cache.local', port: 6380, db: 3, tls: true, username: 'me', password: 's@cret',
    });
    expect(connectionOf({ url: 'redis://cache.local/1', db: 4, password: 'p' })).to.deep.include({ host: 'cache.local', port: 6379, db: 4, tls: false, password: 'p' });
    expect(connectionOf({ host: '10.0.0.1' })).to.deep.equal({ host: '10.0.0.1', port: 6379, db: 0, tls: false });
    expect(() => connectionOf({ url: 'redis://h/x' }, 'brokers.cache.conn')).to.throw(ConfigError, /brokers\.cache\.conn\.url: the path must be a database number/);
  });

  it('describe() names the destination without credentials', async () => {
    const sink = redisBroker.create(broker({ url: 'redis://user:hunter2@127.0.0.1:6379/2' }, { stream: 'orders' }), config);
    expect(sink.describe()).to.equal('redis://127.0.0.1:6379/2 stream orders');
    await sink.close();
    await sink.close();
  });

  it('a malformed destination template is a configuration error naming the key', () => {
    expect(() => redisBroker.create(broker({ url: 'redis://127.0.0.1' }, { channel: '{{ app }' }), config))
      .to.throw(ConfigError, /brokers\.cache\.params\.channel: .* malformed placeholder/);
  });

  it('classifies replies: temporary server states retriable, other replies final, non-replies retriable', () => {
    for (const m of ['LOADING Redis is loading', 'BUSY script', "OOM command not allowed when used memory > 'maxmemory'", 'READONLY replica', 'TRYAGAIN']) {
      expect(classifyRedisError(replyError(m)).retriable, m).to.equal(true);
    }
    for (const m of ['WRONGTYPE Operation against a key', 'NOPERM no permissions', 'ERR Protocol error: invalid bulk length']) {
      expect(classifyRedisError(replyError(m)).retriable, m).to.equal(false);
    }
    expect(classifyRedisError(new Error('Connection is closed.')).retriable).to.equal(true);
    expect(isAuthError(replyError('WRONGPASS invalid username-password pair'))).to.equal(true);
    expect(isAuthError(new Error('WRONGPASS but not a reply'))).to.equal(false);
  });
});
