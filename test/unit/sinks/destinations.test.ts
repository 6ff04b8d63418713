import { expect } from 'chai';
import type { Config } from '../../../src/config/types';
import { createDestination, deadLetterDestination, DEFAULT_DESTINATION, Destinations } from '../../../src/sinks';
import { DEFAULT_DESTINATION_NAME } from '../../../src/pg/schema/migrations/000004-dead-letters-destination';
import { ConsoleSink } from '../../../src/sinks/console';
import { HttpSink } from '../../../src/sinks/http';

function config(over: { url?: string; mode?: 'binary' | 'structured' | 'batch'; deadLetterSink?: string } = {}): Config {
  return {
    handler: 'http',
    brokers: {},
    sink: { url: over.url, mode: over.mode ?? 'binary', batchSize: 50, timeoutMs: 1000, caCertsDir: '/nonexistent', oidcTokenPath: '/nonexistent/token' },
    delivery: { backoffPolicy: 'exponential', backoffDelayMs: 100, backoffMaxMs: 1000, timeoutMs: 1000, maxInFlight: 64, maxBufferBytes: 1 << 26, deadLetterSink: over.deadLetterSink },
  } as unknown as Config;
}

describe('sinks registry: destinations', () => {
  it('a destination is the named sink with its batch size (http in batch mode: sink.batchSize)', async () => {
    const console = createDestination('console', config());
    expect(console).to.include({ name: 'console', batchSize: 1 });
    expect(console.sink).to.be.instanceOf(ConsoleSink);
    const http = createDestination('http', config({ url: 'http://127.0.0.1:9/', mode: 'batch' }));
    expect(http).to.include({ name: 'http', batchSize: 50 });
    expect(http.sink).to.be.instanceOf(HttpSink);
    await http.sink.close();
  });

  it('Destinations resolves each name once and closes every sink it opened', async () => {
    const destinations = new Destinations(config());
    const first = destinations.get('console');
    expect(destinations.get('console')).to.equal(first);
    let closed = 0;
    first.sink.close = async () => void closed++;
    await destinations.close();
    expect(closed).to.equal(1);
  });

  it('default is the configured handler under the name default, sharing its sink (closed once); a name that resolves to nothing throws', async () => {
    const destinations = new Destinations({ ...config(), handler: 'console' });
    const d = destinations.get(DEFAULT_DESTINATION);
    expect(d).to.include({ name: 'default', batchSize: 1 });
    expect(d.sink).to.equal(destinations.get('console').sink);
    expect(destinations.get('default')).to.equal(d);
    let closed = 0;
    d.sink.close = async () => void closed++;
    await destinations.close();
    expect(closed).to.equal(1);
    // Rows stored before destinations were recorded are the default route's (migration 000004).
    expect(DEFAULT_DESTINATION_NAME).to.equal(DEFAULT_DESTINATION);
    expect(() => new Destinations(config()).get('removed-broker')).to.throw(/removed-broker/).with.property('code', 'PGCE_ERR_SINK_CONFIG');
  });

  it('the dead-letter sink: none without delivery.deadLetterSink, else an HTTP destination to it', async () => {
    expect(deadLetterDestination(config())).to.equal(undefined);
    const dls = deadLetterDestination(config({ url: 'http://127.0.0.1:9/sink', deadLetterSink: 'http://127.0.0.1:9/dls' }))!;
    expect(dls).to.include({ name: 'deadLetterSink', batchSize: 1 });
    expect(dls.sink).to.be.instanceOf(HttpSink);
    expect(dls.sink.describe()).to.equal('http://127.0.0.1:9/dls');
    await dls.sink.close();
  });
});
