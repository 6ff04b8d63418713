import { expect } from 'chai';
import { CloudEvent, MQTT, MQTTMessageFactory } from 'cloudevents';
import { connectAsync, type IPublishPacket, type MqttClient } from 'mqtt';
import type { BrokerConfig, DeliveryConfig } from '../../../src/config/types';
import { deliverWithRetry } from '../../../src/delivery/deliver';
import { ErrorCodes, PgceError } from '../../../src/errors';
import { createSink } from '../../../src/sinks';
import type { Sink } from '../../../src/sinks/types';
import { describeSinkConformance, sampleEvent } from './conformance';
import { closedPort, proxyFaults, silentServer, TcpProxy as Proxy } from '../harness/net';
import { brokerConfig, deliverAcrossOutage, failure, plainMessage, until, uniqueName } from './support';

const MQTT_URL = 'mqtt://127.0.0.1:1883';
const PREFIX = 'pgce_h2_';
const unique = uniqueName(PREFIX);
/** Bare-message tests' own names. */
const uniqueHb = uniqueName('pgce_hb_');

/** Built through the registry, so the type's JSON Schemas run first, as in `run`. */
function mqttSink(conn: Record<string, unknown>, params: Record<string, unknown>, timeoutMs = 2000): Sink {
  const broker: BrokerConfig = { name: 'things', type: 'mqtt', conn, params };
  return createSink('things', brokerConfig(timeoutMs, broker));
}

/**
 * The consumer side: the MQTT 5 PUBLISH (Content Type + User Properties + payload) given to the
 * SDK's `MQTT.toEvent`; binary mode's JSON data is parsed first, as the content type says.
 */
function toCloudEvent(packet: IPublishPacket): CloudEvent<unknown> {
  const contentType = packet.properties?.contentType ?? '';
  const text = Buffer.from(packet.payload).toString('utf8');
  const structured = contentType.startsWith('application/cloudevents');
  const body = structured ? text : /json/.test(contentType) ? JSON.parse(text) : text;
  const headers = (packet.properties?.userProperties ?? {}) as Record<string, string>;
  return MQTT.toEvent(MQTTMessageFactory(contentType, headers, body)) as CloudEvent<unknown>;
}

/**
 * A subscriber on `filter` (subscribed before anything is published), keeping every PUBLISH; MQTT 5
 * unless `protocolVersion` says 4 (3.1.1).
 */
class Subscriber {
  readonly got: IPublishPacket[] = [];
  private client?: MqttClient;

  async open(filter: string, qos: 0 | 1 | 2 = 2, protocolVersion: 4 | 5 = 5): Promise<this> {
    this.client = await connectAsync(MQTT_URL, { protocolVersion, clientId: unique('sub'), clean: true, reconnectPeriod: 0 });
    this.client.on('message', (_topic, _payload, packet) => this.got.push(packet));
    await this.client.subscribeAsync(filter, { qos });
    return this;
  }

  async take(count: number, timeoutMs: number): Promise<IPublishPacket[]> {
    await until(`${count} messages`, timeoutMs, () => (this.got.length >= count ? true : undefined));
    return this.got.slice(0, count);
  }

  async close(): Promise<void> {
    await this.client?.endAsync();
    this.client = undefined;
  }
}

describeSinkConformance('mqtt (MQTT 5, QoS 1)', async () => {
  const topic = `${unique('conf')}/events`;
  const sub = await new Subscriber().open(topic, 1);
  return {
    sink: async () => mqttSink({ url: MQTT_URL }, { topic }),
    readBack: async (count, timeoutMs) => (await sub.take(count, timeoutMs)).map((p) => {
      const event = toCloudEvent(p);
      event.validate();
      return event;
    }),
    unreachableSink: async () => mqttSink({ url: `mqtt://127.0.0.1:${await closedPort()}` }, { topic }),
    faultySink: async (timeoutMs) => {
      const faults = await proxyFaults(1883);
      return { faults, sink: mqttSink({ url: `mqtt://127.0.0.1:${faults.port}` }, { topic }, timeoutMs) };
    },
    cleanup: () => sub.close(),
  };
});

describe('mqtt sink (real Mosquitto on 127.0.0.1:1883)', function () {
  this.timeout(60_000);
  let sink: Sink | undefined;
  let sub: Subscriber | undefined;
  const fast: DeliveryConfig = { backoffPolicy: 'exponential', backoffDelayMs: 20, backoffMaxMs: 200, timeoutMs: 1000, maxInFlight: 1, maxBufferBytes: 1 << 20, retry: 200 };

  afterEach(async () => {
    await sink?.close();
    sink = undefined;
    await sub?.close();
    sub = undefined;
  });

  it('binary mode: attributes as User Properties, Content Type = datacontenttype, payload = JSON data', async () => {
    const topic = unique('bin');
    sub = await new Subscriber().open(topic);
    sink = mqttSink({ url: MQTT_URL }, { topic });
    const sent = sampleEvent(3);
    await sink.send(sent);
    const [packet] = await sub.take(1, 10_000);
    expect(packet.qos).to.equal(1);
    expect(packet.retain).to.equal(false);
    expect(packet.properties?.contentType).to.equal('application/json');
    expect(packet.properties?.userProperties).to.include({ id: sent.id, specversion: '1.0', source: sent.source, app: 'polls', partitionkey: 'polls.question/1' });
    expect(JSON.parse(Buffer.from(packet.payload).toString('utf8'))).to.deep.equal(sent.data);
  });

  it('structured mode: Content Type application/cloudevents+json and the JSON event as payload', async () => {
    const topic = unique('struct');
    sub = await new Subscriber().open(topic);
    sink = mqttSink({ url: MQTT_URL }, { topic, mode: 'structured', qos: 2 });
    const sent = sampleEvent(4);
    await sink.send(sent);
    const [packet] = await sub.take(1, 10_000);
    expect(packet.properties?.contentType).to.match(/^application\/cloudevents\+json/);
    expect(packet.properties?.userProperties).to.equal(undefined);
    const got = toCloudEvent(packet);
    expect(got.validate()).to.equal(true);
    expect(got.id).to.equal(sent.id);
    expect(got.data).to.deep.equal(sent.data);
  });

  it('topic template {{ app }}/{{ model }}; a rendered topic with a wildcard is refused for good', async () => {
    const base = unique('tpl');
    sub = await new Subscriber().open(`${base}/#`);
    sink = mqttSink({ url: MQTT_URL }, { topic: `${base}/{{ app }}/{{ model }}` });
    await sink.send(sampleEvent(1));
    const [packet] = await sub.take(1, 10_000);
    expect(packet.topic).to.equal(`${base}/polls/question`);
    const err = await failure(sink.send(sampleEvent(2, { app: 'po+lls' })));
    expect(err.retriable).to.equal(false);
    expect(err.message).to.include('wildcard');
  });

  it('retain: true keeps the last event for a subscriber that comes later (then cleared)', async () => {
    const topic = unique('retain');
    sink = mqttSink({ url: MQTT_URL }, { topic, retain: true });
    await sink.send(sampleEvent(5));
    sub = await new Subscriber().open(topic);
    const [packet] = await sub.take(1, 10_000);
    expect(packet.retain).to.equal(true);
    expect(toCloudEvent(packet).id).to.equal(sampleEvent(5).id);
    // An empty retained message clears it (MQTT 5 §3.3.1.3).
    const admin = await connectAsync(MQTT_URL, { protocolVersion: 5, reconnectPeriod: 0 });
    await admin.publishAsync(topic, '', { retain: true, qos: 1 });
    await admin.endAsync();
  });

  it('a broker that refuses the connection fails fast (well before the timeout) as retriable SINK_UNREACHABLE', async () => {
    const port = await closedPort();
    sink = mqttSink({ url: `mqtt://127.0.0.1:${port}` }, { topic: 'x' }, 5000);
    const started = Date.now();
    const err = await failure(sink.send(sampleEvent(1)));
    expect(Date.now() - started).to.be.below(2000);
    expect(err.retriable).to.equal(true);
    expect(err.code).to.equal(ErrorCodes.SINK_UNREACHABLE);
    expect(err.message).to.include('ECONNREFUSED');
  });

  it('a broker that accepts TCP but never answers: the send fails within the timeout', async () => {
    const silent = await silentServer();
    const port = silent.port;
    try {
      sink = mqttSink({ url: `mqtt://127.0.0.1:${port}` }, { topic: 'x' }, 300);
      const started = Date.now();
      const err = await failure(sink.send(sampleEvent(1)));
      expect(Date.now() - started).to.be.below(2000);
      expect(err.retriable).to.equal(true);
      expect(err.code).to.equal(ErrorCodes.SINK_UNREACHABLE);
    } finally {
      await sink?.close();
      sink = undefined;
      silent.close();
    }
  });

  it('check(): passes against Mosquitto; names the broker (no password) when it is down', async () => {
    sink = mqttSink({ url: MQTT_URL }, { topic: 'x' });
    await sink.check!();
    await sink.close();
    const port = await closedPort();
    sink = mqttSink({ url: `mqtt://user:pgce-h2-hidden@127.0.0.1:${port}` }, { topic: 'x' });
    const err = await sink.check!().then(() => undefined, (e: unknown) => e as PgceError);
    expect(err).to.be.instanceOf(PgceError).with.property('code', ErrorCodes.SINK_UNREACHABLE);
    expect(err!.message).to.include(`mqtt broker things (mqtt://127.0.0.1:${port} topic "x" qos 1)`);
    expect(err!.message).not.to.include('pgce-h2-hidden');
  });

  it('a broker that goes away is retried until it is back; a failed send is not queued and resent by the client', async () => {
    const topic = unique('outage');
    sub = await new Subscriber().open(topic);
    const proxy = new Proxy(1883);
    await proxy.start();
    try {
      sink = mqttSink({ url: `mqtt://127.0.0.1:${proxy.port}` }, { topic }, 500);
      await sink.send(sampleEvent(1)); // connected and used once
      await proxy.stop();
      const lost = await failure(sink.send(sampleEvent(99)));
      expect(lost.retriable).to.equal(true);
      const result = await deliverAcrossOutage(sink, sampleEvent(2), fast, proxy);
      expect(result.attempts).to.be.at.least(3);
      await sink.send(sampleEvent(3));
      const ids = (await sub.take(3, 10_000)).map((p) => p.properties?.userProperties?.id);
      expect(ids).to.deep.equal([sampleEvent(1).id, sampleEvent(2).id, sampleEvent(3).id]);
    } finally {
      await sink?.close();
      sink = undefined;
      await proxy.stop();
    }
  });

  it('a publish left unacknowledged at the timeout leaves the client: it is not resent after a reconnect', async () => {
    const topic = unique('unacked');
    sub = await new Subscriber().open(topic);
    const proxy = new Proxy(1883);
    await proxy.start();
    try {
      sink = mqttSink({ url: `mqtt://127.0.0.1:${proxy.port}` }, { topic }, 400);
      await sink.send(sampleEvent(1));
      proxy.blackhole = true; // the PUBLISH is written but never reaches Mosquitto: no PUBACK
      const err = await failure(sink.send(sampleEvent(99)));
      expect(err.retriable).to.equal(true);
      expect(err.message).to.include('no acknowledgement within');
      // Cut the connection; the mqtt package reconnects and would resend what its store still holds.
      await proxy.stop();
      proxy.blackhole = false;
      await proxy.start();
      await deliverWithRetry(sink, sampleEvent(2), fast);
      await sub.take(2, 10_000);
      // Mosquitto delivers in order per publisher: a resent 99 would have come before 2.
      await sink.send(sampleEvent(3));
      const ids = (await sub.take(3, 10_000)).map((p) => p.properties?.userProperties?.id);
      expect(ids).to.deep.equal([sampleEvent(1).id, sampleEvent(2).id, sampleEvent(3).id]);
    } finally {
      await sink?.close();
      sink = undefined;
      await proxy.stop();
    }
  });

  it('sendMessage (bare payload): MQTT 5: payload = the body bytes, Content Type, User Property id only; MQTT 3.1.1: the body alone', async () => {
    const topic = uniqueHb('bare');
    sub = await new Subscriber().open(topic, 1);
    const old = await new Subscriber().open(topic, 1, 4);
    try {
      sink = mqttSink({ url: MQTT_URL }, { topic, mode: 'structured' });
      const message = plainMessage(1);
      await sink.sendMessage!(message);
      const [packet] = await sub.take(1, 10_000);
      expect(Buffer.from(packet.payload).equals(message.body)).to.equal(true);
      expect(packet.qos).to.equal(1);
      expect(packet.properties?.contentType).to.equal('application/json');
      expect(packet.properties?.userProperties).to.deep.equal({ id: message.id });
      const [v311] = await old.take(1, 10_000);
      expect(Buffer.from(v311.payload).equals(message.body)).to.equal(true);
      expect(v311.properties).to.equal(undefined);
    } finally {
      await old.close();
    }
  });

  it('sendMessage (bare payload): classification as for events: a broker that refuses the connection is retriable SINK_UNREACHABLE; a templated topic is final', async () => {
    sink = mqttSink({ url: `mqtt://127.0.0.1:${await closedPort()}` }, { topic: 'x' }, 5000);
    const down = await failure(sink.sendMessage!(plainMessage(1)));
    expect([down.retriable, down.code]).to.deep.equal([true, ErrorCodes.SINK_UNREACHABLE]);
    await sink.close();
    sink = mqttSink({ url: MQTT_URL }, { topic: `${uniqueHb('tpl')}/{{ model }}` });
    const templated = await failure(sink.sendMessage!(plainMessage(1)));
    expect(templated.retriable).to.equal(false);
    expect(templated.message).to.include('brokers.things.params.topic');
  });
});
