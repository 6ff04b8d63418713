import { expect } from 'chai';
import type { CloudEvent } from 'cloudevents';
import { connect, type JsMsg, type NatsConnection } from 'nats';
import type { BrokerConfig, DeliveryConfig } from '../../../src/config/types';
import { DeliveryError, ErrorCodes, PgceError } from '../../../src/errors';
import { decodeNats, natsBroker } from '../../../src/sinks/nats';
import type { Sink } from '../../../src/sinks/types';
import { describeSinkConformance, sampleEvent } from './conformance';
import { closedPort, proxyFaults, TcpProxy as Proxy } from '../harness/net';
import { brokerConfig, deliverAcrossOutage, ENVELOPE, failure, plainMessage, uniqueName } from './support';

const NATS = 'nats://127.0.0.1:4222';
const PREFIX = 'pgce_h1_';
const unique = uniqueName(PREFIX);
/** Bare-message tests' own names. */
const uniqueHb = uniqueName('pgce_hb_');

function natsSink(conn: Record<string, unknown>, params: Record<string, unknown>, timeoutMs = 2000): Sink {
  const broker: BrokerConfig = { name: 'bus', type: 'nats', conn, params };
  return natsBroker.create(broker, brokerConfig(timeoutMs));
}

/** Reads a stream from its start with an ordered JetStream consumer, until `count` messages or the deadline. */
async function readStream(nc: NatsConnection, stream: string, count: number, timeoutMs: number): Promise<JsMsg[]> {
  const consumer = await nc.jetstream().consumers.get(stream);
  const got: JsMsg[] = [];
  const deadline = Date.now() + timeoutMs;
  while (got.length < count) {
    if (Date.now() > deadline) throw new Error(`timed out: ${got.length}/${count} messages in ${stream}`);
    const batch = await consumer.fetch({ max_messages: count - got.length, expires: 1000 });
    for await (const m of batch) got.push(m);
  }
  return got;
}

async function streamMessages(nc: NatsConnection, stream: string): Promise<number> {
  return (await (await nc.jetstreamManager()).streams.info(stream)).state.messages;
}

for (const mode of ['structured', 'binary'] as const) {
  describeSinkConformance(`nats JetStream (${mode} mode)`, async () => {
    const stream = unique('stream');
    const subject = `${stream}.events`;
    const reader = await connect({ servers: NATS });
    return {
      // The sink creates the stream (params.stream) on first use.
      sink: async () => natsSink({ servers: NATS }, { subject, stream, mode }),
      readBack: async (count, timeoutMs) => (await readStream(reader, stream, count, timeoutMs)).map((m) => decodeNats(m)),
      unreachableSink: async () => natsSink({ servers: `nats://127.0.0.1:${await closedPort()}` }, { subject, stream, mode }),
      faultySink: async (timeoutMs) => {
        const faults = await proxyFaults(4222);
        return { faults, sink: natsSink({ servers: `nats://127.0.0.1:${faults.port}` }, { subject, stream, mode }, timeoutMs) };
      },
      cleanup: async () => {
        await (await reader.jetstreamManager()).streams.delete(stream).catch(() => undefined);
        await reader.close();
      },
    };
  }, { sendBatch: true });
}

describe('sinks/nats against a real JetStream server', function () {
  this.timeout(30_000);
  let nc: NatsConnection;
  let sink: Sink | undefined;
  const streams: string[] = [];

  before(async () => {
    nc = await connect({ servers: NATS });
  });
  afterEach(async () => {
    await sink?.close();
    sink = undefined;
    const jsm = await nc.jetstreamManager();
    for (const s of streams.splice(0)) await jsm.streams.delete(s).catch(() => undefined);
  });
  after(async () => {
    await nc.close();
  });

  it('the same event sent twice is stored once (Nats-Msg-Id = event id)', async () => {
    const stream = unique('dedupe');
    streams.push(stream);
    sink = natsSink({ servers: [NATS] }, { subject: `${stream}.x`, stream });
    await sink.send(sampleEvent(1));
    await sink.send(sampleEvent(1));
    await sink.send(sampleEvent(2));
    expect(await streamMessages(nc, stream)).to.equal(2);
    const [first] = await readStream(nc, stream, 1, 5000);
    expect(first.headers!.get('Nats-Msg-Id')).to.equal(sampleEvent(1).id);
  });

  it('structured mode: Content-Type application/cloudevents+json and the JSON event as payload', async () => {
    const stream = unique('structured');
    streams.push(stream);
    sink = natsSink({ servers: NATS }, { subject: `${stream}.x`, stream });
    await sink.send(sampleEvent(3));
    const [m] = await readStream(nc, stream, 1, 5000);
    expect(m.headers!.get('Content-Type')).to.match(/^application\/cloudevents\+json/);
    expect(m.headers!.get('ce-id')).to.equal('');
    expect(JSON.parse(Buffer.from(m.data).toString('utf8'))).to.deep.include({ specversion: '1.0', id: sampleEvent(3).id });
  });

  it('binary mode: ce- headers percent-encoded, the data alone as payload', async () => {
    const stream = unique('binary');
    streams.push(stream);
    sink = natsSink({ servers: NATS }, { subject: `${stream}.x`, stream, mode: 'binary' });
    const sent = sampleEvent(4, { subject: 'DCE:polls.question/Größe "4" 100%' });
    await sink.send(sent);
    const [m] = await readStream(nc, stream, 1, 5000);
    expect(m.headers!.get('ce-subject')).to.equal('DCE:polls.question/Gr%C3%B6%C3%9Fe%20%224%22%20100%25');
    expect(m.headers!.get('ce-specversion')).to.equal('1.0');
    expect(m.headers!.get('Content-Type')).to.equal('');
    expect(JSON.parse(Buffer.from(m.data).toString('utf8'))).to.deep.equal(sent.data);
    const got: CloudEvent<unknown> = decodeNats(m);
    expect(got.subject).to.equal(sent.subject);
  });

  it('a templated subject fans out under streamSubjects', async () => {
    const stream = unique('fanout');
    streams.push(stream);
    sink = natsSink({ servers: NATS }, { subject: `${stream}.{{ app }}.{{ model }}`, stream, streamSubjects: [`${stream}.>`] });
    await sink.send(sampleEvent(5));
    const [m] = await readStream(nc, stream, 1, 5000);
    expect(m.subject).to.equal(`${stream}.polls.question`);
  });

  it('no stream captures the subject: retriable (no responders), and check() says so', async () => {
    const subject = `${unique('nostream')}.x`;
    sink = natsSink({ servers: NATS }, { subject });
    const err = await failure(sink.send(sampleEvent(1)));
    expect(err).to.be.instanceOf(DeliveryError);
    expect(err.retriable).to.equal(true);
    expect(err.message).to.match(/no responders/);
    const checked = await sink.check!().then(() => undefined, (e: unknown) => e as PgceError);
    expect(checked).to.be.instanceOf(PgceError).with.property('code', ErrorCodes.SINK_CONFIG);
    expect(checked!.message).to.include(`no JetStream stream captures subject ${subject}`);
  });

  it('a message over the stream\'s max_msg_size is refused for good (JetStream 400 → final)', async () => {
    const stream = unique('small');
    streams.push(stream);
    await (await nc.jetstreamManager()).streams.add({ name: stream, subjects: [`${stream}.x`], max_msg_size: 256 });
    sink = natsSink({ servers: NATS }, { subject: `${stream}.x` });
    const err = await failure(sink.send(sampleEvent(1)));
    expect(err.retriable).to.equal(false);
    expect(err.message).to.match(/JetStream answered 400/);
  });

  it('a message over the server\'s max_payload is final (MAX_PAYLOAD_EXCEEDED)', async () => {
    const stream = unique('huge');
    streams.push(stream);
    sink = natsSink({ servers: NATS }, { subject: `${stream}.x`, stream });
    const big = sampleEvent(1, { data: { blob: 'x'.repeat(nc.info!.max_payload + 1) } });
    const err = await failure(sink.send(big));
    expect(err.retriable).to.equal(false);
    expect(err.message).to.match(/MAX_PAYLOAD_EXCEEDED|max_payload|payload/i);
  });

  it('a templated subject that renders unpublishable is final', async () => {
    sink = natsSink({ servers: NATS }, { subject: `${PREFIX}{{ subject }}` });
    const err = await failure(sink.send(sampleEvent(1, { subject: 'has space' })));
    expect(err.retriable).to.equal(false);
    expect(err.message).to.match(/not a publishable subject/);
  });

  it('check() names the unreachable broker without its password', async () => {
    const port = await closedPort();
    sink = natsSink({ servers: `nats://127.0.0.1:${port}`, user: 'u', pass: 'pgce-h1-hidden' }, { subject: `${PREFIX}x` });
    const err = await sink.check!().then(() => undefined, (e: unknown) => e as PgceError);
    expect(err).to.be.instanceOf(PgceError).with.property('code', ErrorCodes.SINK_UNREACHABLE);
    expect(err!.message).to.include(`nats broker bus (nats://127.0.0.1:${port} subject ${PREFIX}x)`);
    expect(err!.message).not.to.include('pgce-h1-hidden');
  });

  it('a broker that goes away is retried until it is back; nothing is lost and nothing stored twice', async () => {
    const stream = unique('outage');
    streams.push(stream);
    const proxy = new Proxy(4222);
    await proxy.start();
    const fast: DeliveryConfig = { backoffPolicy: 'exponential', backoffDelayMs: 50, backoffMaxMs: 300, timeoutMs: 700, maxInFlight: 1, maxBufferBytes: 1 << 26 };
    try {
      sink = natsSink({ servers: `nats://127.0.0.1:${proxy.port}` }, { subject: `${stream}.x`, stream }, 700);
      await sink.send(sampleEvent(1));
      await proxy.stop();
      const result = await deliverAcrossOutage(sink, sampleEvent(2), fast, proxy);
      expect(result.attempts).to.be.at.least(3);
      const got = await readStream(nc, stream, 2, 5000);
      expect(got.map((m) => decodeNats(m).id)).to.deep.equal([sampleEvent(1).id, sampleEvent(2).id]);
      expect(await streamMessages(nc, stream)).to.equal(2);
    } finally {
      await sink?.close();
      sink = undefined;
      await proxy.stop();
    }
  });

  it('sendMessage (bare payload): payload = the body bytes, headers Content-Type and Nats-Msg-Id only; the same id twice is stored once', async () => {
    const stream = uniqueHb('bare');
    streams.push(stream);
    sink = natsSink({ servers: NATS }, { subject: `${stream}.orders`, stream, mode: 'binary' });
    const message = plainMessage(1);
    await sink.sendMessage!(message);
    await sink.sendMessage!(message); // a redelivery: JetStream drops it by its Nats-Msg-Id
    await sink.sendMessage!(plainMessage(2));
    expect(await streamMessages(nc, stream)).to.equal(2);
    const [m] = await readStream(nc, stream, 1, 5000);
    expect(Buffer.from(m.data).equals(message.body)).to.equal(true);
    expect(m.headers!.get('Content-Type')).to.equal('application/json');
    expect(m.headers!.get('Nats-Msg-Id')).to.equal(message.id);
    expect(m.headers!.keys().filter((h) => ENVELOPE.test(h))).to.deep.equal([]);
  });

  it('sendMessage (bare payload): no stream captures the subject: retriable (no responders), as for events', async () => {
    sink = natsSink({ servers: NATS }, { subject: `${uniqueHb('nostream')}.x` });
    const err = await failure(sink.sendMessage!(plainMessage(1)));
    expect(err).to.be.instanceOf(DeliveryError);
    expect(err.retriable).to.equal(true);
    expect(err.message).to.match(/no responders/);
  });
});
