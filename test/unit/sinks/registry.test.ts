import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import type { Config } from '../../../src/config/types';
import { ConfigError, ErrorCodes, PgceError } from '../../../src/errors';
import { batchSizeFor, createSink, knownSinks, requireSink, sinkProblems } from '../../../src/sinks';
import { ConsoleSink } from '../../../src/sinks/console';
import { HttpSink } from '../../../src/sinks/http';

function config(url?: string): Config {
  return {
    databaseUrl: 'postgres://localhost/x',
    tables: [],
    capture: { mode: 'logical', slot: 's', publication: 'p', names: { slot: 'file', publication: 'file' }, statusIntervalMs: 1000, reconnectDelayMs: 100, reconnectMaxMs: 1000, heartbeatIntervalMs: 0, retainedWalWarnBytes: 0, retainedWalWarnFraction: 0, pollIntervalMs: 1000, batchSize: 500 },
    events: { format: 'default', typePrefix: 'orm', overrides: {} },
    handler: 'http',
    brokers: {},
    sink: { url, mode: 'binary', batchSize: 100, timeoutMs: 1000, caCertsDir: '/nonexistent', oidcTokenPath: '/nonexistent/token' },
    delivery: { backoffPolicy: 'exponential', backoffDelayMs: 100, backoffMaxMs: 1000, timeoutMs: 1000, maxInFlight: 64, maxBufferBytes: 1 << 26 },
    deadLetters: { schema: 'pgcloudevents', table: 'dead_letters' },
    leader: { enabled: true, pollIntervalMs: 1000 },
    server: { port: 8080 },
    logLevel: 'silent',
  };
}

describe('sinks registry', () => {
  it('knows http and console', () => {
    expect(knownSinks()).to.include.members(['http', 'console']);
    expect(createSink('console', config())).to.be.instanceOf(ConsoleSink);
  });

  it('http: builds the sink and describes it without credentials', async () => {
    const sink = createSink('http', config('http://user:s3cret@127.0.0.1:9/path'));
    expect(sink).to.be.instanceOf(HttpSink);
    expect(sink.describe()).to.equal('http://127.0.0.1:9/path');
    await sink.close();
  });

  it('http without a URL says K_SINK is not set', () => {
    expect(() => createSink('http', config())).to.throw(PgceError, /K_SINK is not set/).with.property('code', ErrorCodes.SINK_CONFIG);
  });

  it('http with a non-http URL is refused', () => {
    expect(() => createSink('http', config('ftp://127.0.0.1/'))).to.throw(PgceError, /http or https/);
  });

  it('an unknown name names CLOUDEVENTS_HANDLER and lists the known ones', () => {
    expect(() => createSink('carrier-pigeon', config()))
      .to.throw(PgceError, /CLOUDEVENTS_HANDLER "carrier-pigeon".*http, console/)
      .with.property('code', ErrorCodes.SINK_CONFIG);
    expect(() => createSink('toString', config())).to.throw(PgceError, /CLOUDEVENTS_HANDLER/);
  });
});

describe('sinks registry: a command that delivers needs a sink (requireSink)', () => {
  it('http without a sink URL is a configuration error naming K_SINK and the alternatives', () => {
    const problems = sinkProblems(config());
    expect(problems).to.have.length(1);
    for (const name of ['K_SINK', 'sink.url', 'CLOUDEVENTS_HANDLER', 'handler', 'console']) expect(problems[0]).to.contain(name);
    expect(() => requireSink(config())).to.throw(ConfigError, /K_SINK: not set/).with.property('code', ErrorCodes.CONFIG_INVALID);
  });

  it('a sink URL, or any handler chosen other than http, is enough', () => {
    expect(sinkProblems(config('http://127.0.0.1:9/'))).to.deep.equal([]);
    for (const handler of ['console', 'cache', './h.js#send']) expect(sinkProblems({ ...config(), handler })).to.deep.equal([]);
  });
});

describe('sinks registry: events per send', () => {
  it('HTTP batch mode uses sink.batchSize; binary and structured send one by one', () => {
    const c = config('http://127.0.0.1:1/');
    expect(batchSizeFor('http', c)).to.equal(1);
    expect(batchSizeFor('http', { ...c, sink: { ...c.sink, mode: 'batch', batchSize: 250 } })).to.equal(250);
    expect(batchSizeFor('console', { ...c, sink: { ...c.sink, mode: 'batch', batchSize: 250 } })).to.equal(1);
  });

  it('a broker uses its own batchSize, 1 when unset', () => {
    const c = config();
    const brokers = {
      fast: { name: 'fast', type: 'redis', conn: {}, params: {}, batchSize: 500 },
      plain: { name: 'plain', type: 'nats', conn: {}, params: {} },
    };
    expect(batchSizeFor('fast', { ...c, brokers })).to.equal(500);
    expect(batchSizeFor('plain', { ...c, brokers })).to.equal(1);
  });
});

describe('sinks registry: broker client libraries load on use (a fresh node process each)', () => {
  const LIBRARIES = ['kafkajs', '@google-cloud/pubsub', 'ioredis', 'amqplib', 'nats', 'mqtt'];

  /** Loads `script` in a new process and answers which LIBRARIES ended up in require.cache. */
  function loadedAfter(script: string): string[] {
    const probe = `
      ${script}
      const loaded = ${JSON.stringify(LIBRARIES)}.filter((lib) =>
        Object.keys(require.cache).some((f) => f.includes('/node_modules/' + lib + '/')));
      process.stdout.write(JSON.stringify(loaded));`;
    const out = execFileSync(process.execPath, ['-e', probe], { cwd: path.join(__dirname, '..', '..', '..', '..'), encoding: 'utf8' });
    return JSON.parse(out) as string[];
  }

  it('the run command and the registry load none of them', () => {
    expect(loadedAfter("require('./dist/src/cli/run.js'); require('./dist/src/sinks/index.js');")).to.deep.equal([]);
  });

  it('creating a redis broker loads ioredis and only ioredis', () => {
    const make = `
      const { createSink } = require('./dist/src/sinks/index.js');
      const sink = createSink('cache', {
        sink: { timeoutMs: 1000 },
        brokers: { cache: { name: 'cache', type: 'redis', conn: { url: 'redis://127.0.0.1:6379' }, params: { stream: 's' } } },
      });
      void sink.close();`;
    expect(loadedAfter(make)).to.deep.equal(['ioredis']);
  });
});
