import { expect } from 'chai';
import { CloudEvent, HTTP } from 'cloudevents';
import Redis from 'ioredis';
import type { BrokerConfig, DeliveryConfig } from '../../../src/config/types';
import { DeliveryError, ErrorCodes, PgceError } from '../../../src/errors';
import { redisBroker } from '../../../src/sinks/redis';
import type { Sink } from '../../../src/sinks/types';
import { describeSinkConformance, sampleEvent } from './conformance';
import { closedPort, proxyFaults, silentServer, TcpProxy as Proxy } from '../harness/net';
import { brokerConfig, deliverAcrossOutage, ENVELOPE, failure, plainMessage, until, uniqueName } from './support';

const REDIS_URL = 'redis://127.0.0.1:6379';
const PREFIX = 'pgce_h1_';
const unique = uniqueName(PREFIX);
/** Bare-message tests' own names. */
const uniqueHb = uniqueName('pgce_hb_');

function redisSink(conn: Record<string, unknown>, params: Record<string, unknown>, timeoutMs = 2000): Sink {
  const broker: BrokerConfig = { name: 'cache', type: 'redis', conn, params };
  return redisBroker.create(broker, brokerConfig(timeoutMs));
}

/** The SDK's structured-mode parsing (CloudEvents JSON format), which validates the event. */
function parseStructured(json: string): CloudEvent<unknown> {
  return HTTP.toEvent({ headers: { 'content-type': 'application/cloudevents+json' }, body: json }) as CloudEvent<unknown>;
}

const fast: DeliveryConfig = { backoffPolicy: 'exponential', backoffDelayMs: 50, backoffMaxMs: 200, timeoutMs: 2000, maxInFlight: 1, maxBufferBytes: 1 << 26 };

describeSinkConformance('redis stream (XADD)', async () => {
  const stream = unique('stream');
  const reader = new Redis(REDIS_URL);
  return {
    sink: async () => redisSink({ url: REDIS_URL }, { stream }),
    readBack: (count, timeoutMs) =>
      until(`${count} entries in ${stream}`, timeoutMs, async () => {
        const entries = await reader.xrange(stream, '-', '+');
        if (entries.length < count) return undefined;
        return entries.map(([, fields]) => {
          const record = Object.fromEntries(fields.reduce<string[][]>((pairs, v, i) => (i % 2 ? pairs : [...pairs, [v, fields[i + 1]]]), []));
          const event = parseStructured(record.event);
          expect(record.id).to.equal(event.id);
          return event;
        });
      }),
    unreachableSink: async () => redisSink({ host: '127.0.0.1', port: await closedPort() }, { stream }),
    faultySink: async (timeoutMs) => {
      const faults = await proxyFaults(6379);
      return { faults, sink: redisSink({ host: '127.0.0.1', port: faults.port }, { stream }, timeoutMs) };
    },
    cleanup: async () => {
      await reader.del(stream);
      await reader.quit();
    },
  };
}, { sendBatch: true });

describeSinkConformance('redis channel (PUBLISH)', async () => {
  const channel = unique('channel');
  const subscriber = new Redis(REDIS_URL);
  const received: string[] = [];
  subscriber.on('message', (ch: string, message: string) => {
    if (ch === channel) received.push(message);
  });
  await subscriber.subscribe(channel); // set up before anything is sent: Pub/Sub keeps nothing
  return {
    sink: async () => redisSink({ url: REDIS_URL }, { channel }),
    readBack: (count, timeoutMs) =>
      until(`${count} messages on ${channel}`, timeoutMs, async () => (received.length >= count ? received.map(parseStructured) : undefined)),
    unreachableSink: async () => redisSink({ host: '127.0.0.1', port: await closedPort() }, { channel }),
    faultySink: async (timeoutMs) => {
      const faults = await proxyFaults(6379);
      return { faults, sink: redisSink({ host: '127.0.0.1', port: faults.port }, { channel }, timeoutMs) };
    },
    cleanup: async () => {
      await subscriber.quit();
    },
  };
}, { sendBatch: true });

describe('sinks/redis against a real server', function () {
  this.timeout(30_000);
  let admin: Redis;
  let sink: Sink | undefined;
  const keys: string[] = [];

  before(() => {
    admin = new Redis(REDIS_URL);
  });
  afterEach(async () => {
    await sink?.close();
    sink = undefined;
    if (keys.length) await admin.del(...keys.splice(0));
  });
  after(async () => {
    await admin.acl('DELUSER', `${PREFIX}user`);
    await admin.quit();
  });

  it('renders a templated stream name per event and stores the fields id and event', async () => {
    const base = unique('tpl');
    sink = redisSink({ url: `${REDIS_URL}/0` }, { stream: `${base}_{{ app }}_{{ model }}` });
    const key = `${base}_polls_question`;
    keys.push(key);
    await sink.send(sampleEvent(7));
    const entries = await admin.xrange(key, '-', '+');
    expect(entries).to.have.length(1);
    const [, fields] = entries[0];
    expect(fields.filter((_, i) => i % 2 === 0)).to.deep.equal(['id', 'event']);
    expect(fields[1]).to.equal(sampleEvent(7).id);
    expect(JSON.parse(fields[3])).to.deep.include({ specversion: '1.0', id: sampleEvent(7).id, subject: 'DCE:polls.question/7' });
  });

  it('maxlen caps the stream approximately (MAXLEN ~ n)', async () => {
    const stream = unique('capped');
    keys.push(stream);
    sink = redisSink({ url: REDIS_URL }, { stream, maxlen: 10 });
    for (let n = 1; n <= 250; n++) await sink.send(sampleEvent(n));
    const length = await admin.xlen(stream);
    expect(length).to.be.at.least(10);
    expect(length).to.be.below(250);
    const [[, last]] = await admin.xrevrange(stream, '+', '-', 'COUNT', 1);
    expect(JSON.parse(last[3]).data.data.id).to.equal(250);
  });

  it('PUBLISH with no subscriber is accepted (the server answered 0 receivers)', async () => {
    sink = redisSink({ url: REDIS_URL }, { channel: unique('nobody') });
    expect(await sink.send(sampleEvent(1))).to.equal(undefined);
  });

  it('a key of the wrong type is refused for good (WRONGTYPE → final), and check() names it', async () => {
    const stream = unique('string');
    keys.push(stream);
    await admin.set(stream, 'not a stream');
    sink = redisSink({ url: REDIS_URL }, { stream });
    const err = await failure(sink.send(sampleEvent(1)));
    expect(err).to.be.instanceOf(DeliveryError);
    expect(err.retriable).to.equal(false);
    expect(err.message).to.match(/WRONGTYPE/);
    const checked = await sink.check!().then(() => undefined, (e: unknown) => e as PgceError);
    expect(checked).to.be.instanceOf(PgceError).with.property('code', ErrorCodes.SINK_CONFIG);
    expect(checked!.message).to.match(new RegExp(`${stream} holds a string`));
  });

  it('an ACL refusal is final (NOPERM); a wrong password is final and never logged', async () => {
    const user = `${PREFIX}user`;
    const allowed = unique('allowed');
    await admin.acl('SETUSER', user, 'reset', 'on', '>pgce-h1-secret', `&${allowed}`, `~${allowed}`, '+@all');
    sink = redisSink({ url: REDIS_URL, username: user, password: 'pgce-h1-secret' }, { channel: `${PREFIX}{{ model }}` });
    const denied = await failure(sink.send(sampleEvent(1)));
    expect(denied.retriable).to.equal(false);
    expect(denied.message).to.match(/NOPERM/);
    await sink.close();

    sink = redisSink({ url: `redis://${user}:wrong-h1-password@127.0.0.1:6379` }, { channel: allowed });
    expect(sink.describe()).to.equal(`redis://127.0.0.1:6379/0 channel ${allowed}`);
    const refused = await failure(sink.send(sampleEvent(1)));
    expect(refused.retriable).to.equal(false);
    expect(refused.message).to.match(/WRONGPASS/);
    expect(refused.message).not.to.include('wrong-h1-password');
  });

  it('a server that accepts but never answers fails the send within the timeout (retriable)', async () => {
    const silent = await silentServer();
    try {
      sink = redisSink({ host: '127.0.0.1', port: silent.port }, { channel: unique('silent') }, 300);
      const started = Date.now();
      const err = await failure(sink.send(sampleEvent(1)));
      expect(Date.now() - started).to.be.below(2000);
      expect(err.retriable).to.equal(true);
      await sink.close();
      sink = undefined;
    } finally {
      silent.close();
    }
  });

  it('check() names the unreachable broker', async () => {
    const port = await closedPort();
    sink = redisSink({ host: '127.0.0.1', port, password: 'pgce-h1-hidden' }, { channel: unique('x') });
    const err = await sink.check!().then(() => undefined, (e: unknown) => e as PgceError);
    expect(err).to.be.instanceOf(PgceError).with.property('code', ErrorCodes.SINK_UNREACHABLE);
    expect(err!.message).to.include(`redis broker cache (redis://127.0.0.1:${port}/0 channel`);
    expect(err!.message).not.to.include('pgce-h1-hidden');
  });

  it('a broker that goes away is retried until it is back, and nothing is lost', async () => {
    const stream = unique('outage');
    keys.push(stream);
    const proxy = new Proxy(6379);
    await proxy.start();
    try {
      sink = redisSink({ host: '127.0.0.1', port: proxy.port }, { stream }, 500);
      await sink.send(sampleEvent(1)); // connected and used once
      await proxy.stop();
      const result = await deliverAcrossOutage(sink, sampleEvent(2), fast, proxy);
      expect(result.attempts).to.be.at.least(3);
      const ids = (await admin.xrange(stream, '-', '+')).map(([, f]) => f[1]);
      expect(ids).to.deep.equal([sampleEvent(1).id, sampleEvent(2).id]);
    } finally {
      await sink?.close();
      sink = undefined;
      await proxy.stop();
    }
  });

  it('sendMessage (bare payload): stream: XADD fields id, content-type and data (the body bytes exactly), no event field', async () => {
    const stream = uniqueHb('bare');
    keys.push(stream);
    sink = redisSink({ url: REDIS_URL }, { stream, maxlen: 100 });
    const message = plainMessage(1);
    await sink.sendMessage!(message);
    const entries = await admin.xrangeBuffer(stream, '-', '+');
    expect(entries).to.have.length(1);
    const fields = entries[0][1];
    expect(fields.filter((_, i) => i % 2 === 0).map(String)).to.deep.equal(['id', 'content-type', 'data']);
    expect([String(fields[1]), String(fields[3])]).to.deep.equal([message.id, 'application/json']);
    expect(fields[5].equals(message.body)).to.equal(true);
  });

  it('sendMessage (bare payload): channel: PUBLISH the body alone, byte for byte', async () => {
    const channel = uniqueHb('bare_channel');
    const subscriber = new Redis(REDIS_URL);
    try {
      const received: Buffer[] = [];
      subscriber.on('messageBuffer', (ch: Buffer, payload: Buffer) => {
        if (String(ch) === channel) received.push(payload);
      });
      await subscriber.subscribe(channel);
      sink = redisSink({ url: REDIS_URL }, { channel });
      const message = plainMessage(2, { body: Buffer.from('order 2 shipped ✓', 'utf8'), contentType: 'text/plain; charset=utf-8' });
      await sink.sendMessage!(message);
      const [got] = await until('the bare message', 5000, () => (received.length ? received : undefined));
      expect(got.equals(message.body)).to.equal(true);
      expect(ENVELOPE.test(got.toString('utf8'))).to.equal(false);
    } finally {
      await subscriber.quit();
    }
  });

  it('sendMessage (bare payload): a key of the wrong type is refused for good (WRONGTYPE → final), as for events', async () => {
    const stream = uniqueHb('bare_string');
    keys.push(stream);
    await admin.set(stream, 'not a stream');
    sink = redisSink({ url: REDIS_URL }, { stream });
    const err = await failure(sink.sendMessage!(plainMessage(1)));
    expect(err).to.be.instanceOf(DeliveryError);
    expect(err.retriable).to.equal(false);
    expect(err.message).to.match(/WRONGTYPE/);
  });
});
