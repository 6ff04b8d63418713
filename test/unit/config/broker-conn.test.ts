import { expect } from 'chai';
import { resolveBrokerConn } from '../../../src/config/broker-conn';
import { loadConfig } from '../../../src/config/load';
import { ConfigError } from '../../../src/errors';
import { configError, MINIMAL_ENV, TempFiles } from './helpers';

describe('config: dynamic values in a broker\'s conn', () => {
  const temp = new TempFiles();
  after(() => temp.cleanup());

  const file = (allow: string) => temp.write('c.yaml', `${allow}
handler: cache
brokers:
  cache: { type: redis, conn: { url: "redis://:{{ env.PGCE_TEST_REDIS_PASSWORD }}@redis:6379/0" }, params: { stream: cdc } }
`);

  it('are checked against allow.dynamicValues when a list is set, exactly, naming the key path and the setting', () => {
    const err = configError({ env: MINIMAL_ENV, configPath: file('allow: { dynamicValues: [env.PGCE_TEST_REDIS] }') });
    expect(err.problems.join('\n')).to.include('brokers.cache.conn.url: "env.PGCE_TEST_REDIS_PASSWORD" is not allowed');
    expect(err.problems.join('\n')).to.include('allow.dynamicValues');
    expect(() => loadConfig({ env: MINIMAL_ENV, configPath: file('allow: { dynamicValues: [env.PGCE_TEST_REDIS_PASSWORD] }') })).not.to.throw();
  });

  it('are read when a command starts: the connection settings get the value, the loaded configuration keeps the reference', async () => {
    const config = loadConfig({ env: MINIMAL_ENV, configPath: file('') });
    expect(config.brokers.cache.conn.url, 'what load keeps: the reference, never the value').to.equal('redis://:{{ env.PGCE_TEST_REDIS_PASSWORD }}@redis:6379/0');
    process.env.PGCE_TEST_REDIS_PASSWORD = 's3cret';
    try {
      const resolved = await resolveBrokerConn(config);
      expect(resolved.brokers.cache.conn.url).to.equal('redis://:s3cret@redis:6379/0');
      expect(resolved.brokers.cache.params, 'params untouched').to.deep.equal({ stream: 'cdc' });
    } finally {
      delete process.env.PGCE_TEST_REDIS_PASSWORD;
    }
  });

  it('an unset variable stops the command with a configuration error naming the reference', async () => {
    const config = loadConfig({ env: MINIMAL_ENV, configPath: file('') });
    const err = await resolveBrokerConn(config).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(ConfigError);
    expect((err as ConfigError).problems[0]).to.equal('brokers.cache.conn.url: {{ env.PGCE_TEST_REDIS_PASSWORD }} is not set in the environment');
  });

  it('a conn without references is the configuration itself (nothing copied)', async () => {
    const config = loadConfig({ env: MINIMAL_ENV, configPath: temp.write('plain.yaml', 'brokers: { cache: { type: redis, conn: { url: "redis://redis:6379" }, params: { stream: cdc } } }\n') });
    expect(await resolveBrokerConn(config)).to.equal(config);
  });
});
