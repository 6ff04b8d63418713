import { expect } from 'chai';
import { connect as amqpConnect, type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { CloudEvent } from 'cloudevents';
import type { BrokerConfig, DeliveryConfig } from '../../../src/config/types';
import { DeliveryError, ErrorCodes, PgceError } from '../../../src/errors';
import { createSink } from '../../../src/sinks';
import type { Sink } from '../../../src/sinks/types';
import { describeSinkConformance, sampleEvent } from './conformance';
import { closedPort, proxyFaults, silentServer, TcpProxy as Proxy } from '../harness/net';
import { brokerConfig, deliverAcrossOutage, ENVELOPE, failure, plainMessage, until, uniqueName } from './support';

const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
const PREFIX = 'pgce_h2_';
const unique = uniqueName(PREFIX);
/** Bare-message tests' own names. */
const uniqueHb = uniqueName('pgce_hb_');

/** Built through the registry, so the type's JSON Schemas run first, as in `run`. */
function rabbitSink(conn: Record<string, unknown>, params: Record<string, unknown>, timeoutMs = 2000): Sink {
  const broker: BrokerConfig = { name: 'rabbit', type: 'rabbitmq', conn, params };
  return createSink('rabbit', brokerConfig(timeoutMs, broker));
}

/**
 * The consumer side of the CloudEvents AMQP binding, written from the spec rather than from the
 * sink's encoder: content-type `application/cloudevents…` → structured (JSON format); otherwise
 * binary: `cloudEvents:`-prefixed headers are the attributes, content-type is datacontenttype.
 */
function toCloudEvent(msg: ConsumeMessage): CloudEvent<unknown> {
  const contentType = msg.properties.contentType as string | undefined;
  const body = msg.content.toString('utf8');
  if (contentType?.startsWith('application/cloudevents')) return new CloudEvent<unknown>(JSON.parse(body), false);
  const attributes: Record<string, unknown> = {};
  for (const [name, value] of Object.entries((msg.properties.headers ?? {}) as Record<string, unknown>)) {
    if (name.startsWith('cloudEvents:')) attributes[name.slice('cloudEvents:'.length)] = Buffer.isBuffer(value) ? value.toString('utf8') : value;
  }
  if (contentType) attributes.datacontenttype = contentType;
  const data = contentType && /json/.test(contentType) ? JSON.parse(body) : body;
  return new CloudEvent<unknown>({ ...attributes, data } as never, false);
}

/** The test's own AMQP connection: declares, binds, reads back, deletes what it made. */
class Admin {
  private model?: ChannelModel;
  ch!: Channel;
  private readonly queues: string[] = [];
  private readonly exchanges: string[] = [];

  async open(): Promise<this> {
    this.model = await amqpConnect(AMQP_URL);
    this.ch = await this.model.createChannel();
    return this;
  }

  async queue(name = unique('q'), args: Record<string, unknown> = {}): Promise<string> {
    this.queues.push(name);
    await this.ch.assertQueue(name, { durable: true, arguments: args });
    return name;
  }

  async exchange(name = unique('x'), type = 'topic'): Promise<string> {
    this.exchanges.push(name);
    await this.ch.assertExchange(name, type, { durable: false });
    return name;
  }

  /** The queue's next `count` messages, acknowledged, within `timeoutMs`. */
  async take(queue: string, count: number, timeoutMs: number): Promise<ConsumeMessage[]> {
    const got: ConsumeMessage[] = [];
    await until(`${count} messages on ${queue}`, timeoutMs, async () => {
      const msg = await this.ch.get(queue, { noAck: true });
      if (msg) got.push(msg as unknown as ConsumeMessage);
      return got.length >= count ? true : undefined;
    });
    return got;
  }

  forget(queue: string): void {
    this.queues.push(queue);
  }

  async close(): Promise<void> {
    if (!this.model) return;
    const ch = await this.model.createChannel();
    ch.on('error', () => undefined);
    for (const q of this.queues) await ch.deleteQueue(q).catch(() => undefined);
    for (const x of this.exchanges) await ch.deleteExchange(x).catch(() => undefined);
    await this.model.close().catch(() => undefined);
    this.model = undefined;
  }
}

describeSinkConformance('rabbitmq (queue, declare: true)', async () => {
  const admin = await new Admin().open();
  const queue = unique('conf');
  admin.forget(queue);
  return {
    sink: async () => rabbitSink({ url: AMQP_URL }, { queue, declare: true }),
    readBack: async (count, timeoutMs) => (await admin.take(queue, count, timeoutMs)).map((m) => {
      const event = toCloudEvent(m);
      event.validate();
      return event;
    }),
    unreachableSink: async () => rabbitSink({ url: `amqp://guest:guest@127.0.0.1:${await closedPort()}` }, { queue, declare: true }),
    faultySink: async (timeoutMs) => {
      const faults = await proxyFaults(5672);
      return { faults, sink: rabbitSink({ url: `amqp://guest:guest@127.0.0.1:${faults.port}` }, { queue, declare: true }, timeoutMs) };
    },
    cleanup: () => admin.close(),
  };
});

describe('rabbitmq sink (real RabbitMQ on 127.0.0.1:5672)', function () {
  this.timeout(60_000);
  let admin: Admin;
  let sink: Sink | undefined;
  const fast: DeliveryConfig = { backoffPolicy: 'exponential', backoffDelayMs: 20, backoffMaxMs: 200, timeoutMs: 1000, maxInFlight: 1, maxBufferBytes: 1 << 20, retry: 200 };

  beforeEach(async () => {
    admin = await new Admin().open();
  });
  afterEach(async () => {
    await sink?.close();
    sink = undefined;
    await admin.close();
  });

  it('binary mode: cloudEvents:-prefixed headers, content-type = datacontenttype, body = JSON data, persistent, message-id = id', async () => {
    const queue = await admin.queue();
    sink = rabbitSink({ url: AMQP_URL }, { queue });
    const sent = sampleEvent(7);
    await sink.send(sent);
    const [msg] = await admin.take(queue, 1, 10_000);
    expect(msg.properties.contentType).to.equal('application/json');
    expect(msg.properties.deliveryMode).to.equal(2);
    expect(msg.properties.messageId).to.equal(sent.id);
    const headers = msg.properties.headers as Record<string, unknown>;
    expect(headers).to.include({ 'cloudEvents:id': sent.id, 'cloudEvents:specversion': '1.0', 'cloudEvents:app': 'polls', 'cloudEvents:partitionkey': 'polls.question/1' });
    expect(Object.keys(headers).every((k) => k.startsWith('cloudEvents:'))).to.equal(true);
    expect(headers).not.to.have.property('cloudEvents:datacontenttype');
    expect(JSON.parse(msg.content.toString('utf8'))).to.deep.equal(sent.data);
  });

  it('structured mode: application/cloudevents+json body; persistent: false is transient', async () => {
    const queue = await admin.queue();
    sink = rabbitSink({ url: AMQP_URL }, { queue, mode: 'structured', persistent: false });
    const sent = sampleEvent(8);
    await sink.send(sent);
    const [msg] = await admin.take(queue, 1, 10_000);
    expect(msg.properties.contentType).to.match(/^application\/cloudevents\+json/);
    expect(msg.properties.deliveryMode).to.not.equal(2);
    const got = toCloudEvent(msg);
    expect(got.validate()).to.equal(true);
    expect(got.id).to.equal(sent.id);
    expect(got.data).to.deep.equal(sent.data);
  });

  it('exchange + routing key template: {{ app }}.{{ model }} reaches the queue bound to polls.*', async () => {
    const exchange = await admin.exchange();
    const polls = await admin.queue();
    const other = await admin.queue();
    await admin.ch.bindQueue(polls, exchange, 'polls.*');
    await admin.ch.bindQueue(other, exchange, 'other.*');
    sink = rabbitSink({ url: AMQP_URL }, { exchange, routingKey: '{{ app }}.{{ model }}' });
    await sink.send(sampleEvent(1));
    await sink.send(sampleEvent(2, { app: 'other' }));
    const [a] = await admin.take(polls, 1, 10_000);
    const [b] = await admin.take(other, 1, 10_000);
    expect(a.fields.routingKey).to.equal('polls.question');
    expect(b.fields.routingKey).to.equal('other.question');
  });

  it('an unroutable message (mandatory, returned) is a retriable failure; once a queue is bound it is delivered', async () => {
    const exchange = await admin.exchange();
    sink = rabbitSink({ url: AMQP_URL }, { exchange, routingKey: 'nobody.listens' });
    const err = await failure(sink.send(sampleEvent(1)));
    expect(err).to.be.instanceOf(DeliveryError);
    expect(err.retriable).to.equal(true);
    expect(err.message).to.match(/unroutable \(312 NO_ROUTE\)/);
    const queue = await admin.queue();
    await admin.ch.bindQueue(queue, exchange, 'nobody.listens');
    await sink.send(sampleEvent(1));
    expect((await admin.take(queue, 1, 10_000)).length).to.equal(1);
  });

  it('a missing exchange (404, channel closed by the broker) is retriable, and the next send reopens the channel', async () => {
    const exchange = unique('later');
    sink = rabbitSink({ url: AMQP_URL }, { exchange, routingKey: 'k' });
    const err = await failure(sink.send(sampleEvent(1)));
    expect(err.retriable).to.equal(true);
    expect(err.message).to.include('404').and.include('NOT_FOUND');
    await admin.exchange(exchange, 'direct');
    const queue = await admin.queue();
    await admin.ch.bindQueue(queue, exchange, 'k');
    await sink.send(sampleEvent(1));
    expect((await admin.take(queue, 1, 10_000)).length).to.equal(1);
  });

  it('a nack (queue full with x-overflow reject-publish) is a retriable failure, not a delivery', async () => {
    const queue = await admin.queue(unique('full'), { 'x-max-length': 0, 'x-overflow': 'reject-publish' });
    sink = rabbitSink({ url: AMQP_URL }, { queue });
    const err = await failure(sink.send(sampleEvent(1)));
    expect(err.retriable).to.equal(true);
    expect(err.message).to.include('nacked');
  });

  it('declaring a queue that exists with other arguments (406 PRECONDITION_FAILED) is final', async () => {
    const queue = await admin.queue(unique('lazy'), { 'x-max-length': 5 });
    await admin.ch.deleteQueue(queue);
    await admin.ch.assertQueue(queue, { durable: false });
    sink = rabbitSink({ url: AMQP_URL }, { queue, declare: true });
    const err = await failure(sink.send(sampleEvent(1)));
    expect(err.retriable).to.equal(false);
    expect(err.code).to.equal(ErrorCodes.SINK_FINAL);
    expect(err.message).to.include('406');
  });

  it('bad credentials are refused (403 ACCESS_REFUSED → final); check() names the broker without the password', async () => {
    const queue = await admin.queue();
    sink = rabbitSink({ url: 'amqp://guest:pgce-h2-wrong@127.0.0.1:5672' }, { queue });
    const err = await failure(sink.send(sampleEvent(1)));
    expect(err.retriable).to.equal(false);
    expect(err.message).to.include('ACCESS-REFUSED').and.not.include('pgce-h2-wrong');
    const checked = await sink.check!().then(() => undefined, (e: unknown) => e as PgceError);
    expect(checked).to.be.instanceOf(PgceError);
    expect(checked!.message).to.include('rabbitmq broker rabbit (amqp://127.0.0.1:5672').and.not.include('pgce-h2-wrong');
  });

  it('check(): passes for an existing exchange, fails naming a missing one, and an unreachable broker', async () => {
    const exchange = await admin.exchange();
    sink = rabbitSink({ url: AMQP_URL }, { exchange, routingKey: 'k' });
    await sink.check!();
    await sink.close();
    sink = rabbitSink({ url: AMQP_URL }, { exchange: unique('missing'), routingKey: 'k' });
    const missing = await sink.check!().then(() => undefined, (e: unknown) => e as PgceError);
    expect(missing!.message).to.match(/NOT_FOUND - no exchange/);
    await sink.close();
    const port = await closedPort();
    sink = rabbitSink({ url: `amqp://guest:hidden@127.0.0.1:${port}` }, { queue: 'q' });
    const down = await sink.check!().then(() => undefined, (e: unknown) => e as PgceError);
    expect(down).to.be.instanceOf(PgceError).with.property('code', ErrorCodes.SINK_UNREACHABLE);
    expect(down!.message).to.include(`rabbitmq broker rabbit (amqp://127.0.0.1:${port} queue "q")`).and.include('ECONNREFUSED');
    expect(down!.message).not.to.include('hidden');
  });

  it('a broker that accepts TCP but never answers: the send fails within the timeout as unreachable', async () => {
    const silent = await silentServer();
    const port = silent.port;
    try {
      sink = rabbitSink({ url: `amqp://127.0.0.1:${port}` }, { queue: 'q' }, 300);
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

  it('a broker that goes away is retried until it is back (reconnect on the next send), and nothing is lost', async () => {
    const queue = await admin.queue();
    const proxy = new Proxy(5672);
    await proxy.start();
    try {
      sink = rabbitSink({ url: `amqp://guest:guest@127.0.0.1:${proxy.port}` }, { queue }, 500);
      await sink.send(sampleEvent(1)); // connected and used once
      await proxy.stop();
      const result = await deliverAcrossOutage(sink, sampleEvent(2), fast, proxy);
      expect(result.attempts).to.be.at.least(3);
      const ids = (await admin.take(queue, 2, 10_000)).map((m) => m.properties.messageId);
      expect(ids).to.deep.equal([sampleEvent(1).id, sampleEvent(2).id]);
    } finally {
      await sink?.close();
      sink = undefined;
      await proxy.stop();
    }
  });

  it('sendMessage (bare payload): body = the bytes exactly, content-type and message-id properties, persistent, no cloudEvents: headers', async () => {
    const queue = await admin.queue(uniqueHb('bare'));
    sink = rabbitSink({ url: AMQP_URL }, { queue, mode: 'structured' });
    const message = plainMessage(1);
    await sink.sendMessage!(message);
    const [msg] = await admin.take(queue, 1, 10_000);
    expect(msg.content.equals(message.body)).to.equal(true);
    expect(msg.properties.contentType).to.equal('application/json');
    expect(msg.properties.messageId).to.equal(message.id);
    expect(msg.properties.deliveryMode).to.equal(2);
    expect(Object.keys((msg.properties.headers ?? {}) as Record<string, unknown>).filter((h) => ENVELOPE.test(h))).to.deep.equal([]);
  });

  it('sendMessage (bare payload): through an exchange with the fixed routing key; unroutable is retriable (as for events), then delivered once bound', async () => {
    const exchange = await admin.exchange(uniqueHb('x'));
    sink = rabbitSink({ url: AMQP_URL }, { exchange, routingKey: 'orders.shipped', persistent: false });
    const message = plainMessage(2, { body: Buffer.from('order 2 shipped', 'utf8'), contentType: 'text/plain; charset=utf-8' });
    const err = await failure(sink.sendMessage!(message));
    expect(err.retriable).to.equal(true);
    expect(err.message).to.match(/unroutable \(312 NO_ROUTE\)/);
    const queue = await admin.queue(uniqueHb('bound'));
    await admin.ch.bindQueue(queue, exchange, 'orders.*');
    await sink.sendMessage!(message);
    const [msg] = await admin.take(queue, 1, 10_000);
    expect([msg.fields.routingKey, msg.content.toString('utf8'), msg.properties.contentType, msg.properties.messageId])
      .to.deep.equal(['orders.shipped', 'order 2 shipped', 'text/plain; charset=utf-8', message.id]);
    expect(msg.properties.deliveryMode).to.not.equal(2);
  });

  it('sendMessage (bare payload): a templated routing key cannot be rendered without attributes: final, naming the key', async () => {
    const exchange = await admin.exchange(uniqueHb('tpl'));
    sink = rabbitSink({ url: AMQP_URL }, { exchange, routingKey: '{{ app }}.{{ model }}' });
    const err = await failure(sink.sendMessage!(plainMessage(3)));
    expect(err.retriable).to.equal(false);
    expect(err.message).to.include('brokers.rabbit.params.routingKey');
  });
});
