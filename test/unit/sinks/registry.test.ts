import { expect } from 'chai';
import type { Config } from '../../../src/config/types';
import { ErrorCodes, PgceError } from '../../../src/errors';
import { createSink, knownSinks } from '../../../src/sinks';
import { ConsoleSink } from '../../../src/sinks/console';
import { HttpSink } from '../../../src/sinks/http';

function config(url?: string): Config {
  return {
    databaseUrl: 'postgres://localhost/x',
    tables: [],
    capture: { mode: 'logical', slot: 's', publication: 'p', statusIntervalMs: 1000, reconnectDelayMs: 100, reconnectMaxMs: 1000, heartbeatIntervalMs: 0 },
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
