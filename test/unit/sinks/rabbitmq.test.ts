import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import type { BrokerConfig, Config } from '../../../src/config/types';
import { ConfigError } from '../../../src/errors';
import { validateBroker } from '../../../src/sinks/broker';
import { encodeAmqp, isRetriableAmqpError, rabbitmqBroker } from '../../../src/sinks/rabbitmq';
import { RabbitmqSink } from '../../../src/sinks/rabbitmq/sink';

function event(over: Record<string, unknown> = {}): CloudEvent<unknown> {
  return new CloudEvent<unknown>({
    id: 'abc-1',
    source: '/pg-cloudevents/shop',
    type: 'orm.post_save',
    subject: 'DCE:polls.question/1',
    time: '2024-02-29T11:14:15.500Z',
    datacontenttype: 'application/json',
    app: 'polls',
    model: 'question',
    sequence: '1',
    retries: 3,
    flag: true,
    data: { data: { id: 1, text: 'Größe ✓' } },
    ...over,
  });
}

const config = { sink: { timeoutMs: 1000 } } as unknown as Config;
const broker = (conn: Record<string, unknown>, params: Record<string, unknown>): BrokerConfig => ({ name: 'rabbit', type: 'rabbitmq', conn, params });

describe('rabbitmq sink: CloudEvents AMQP binding (encode)', () => {
  it('binary: every attribute but datacontenttype as a cloudEvents:-prefixed header, as canonical strings', () => {
    const { options } = encodeAmqp(event(), 'binary', true);
    expect(options.headers).to.deep.equal({
      'cloudEvents:id': 'abc-1',
      'cloudEvents:source': '/pg-cloudevents/shop',
      'cloudEvents:type': 'orm.post_save',
      'cloudEvents:specversion': '1.0',
      'cloudEvents:subject': 'DCE:polls.question/1',
      'cloudEvents:time': '2024-02-29T11:14:15.500Z',
      'cloudEvents:app': 'polls',
      'cloudEvents:model': 'question',
      'cloudEvents:sequence': '1',
      'cloudEvents:retries': '3',
      'cloudEvents:flag': 'true',
    });
  });

  it('binary: content-type is datacontenttype, the body the JSON data in UTF-8; persistent, mandatory, message-id = id', () => {
    const { content, options } = encodeAmqp(event(), 'binary', true);
    expect(options.contentType).to.equal('application/json');
    expect(JSON.parse(content.toString('utf8'))).to.deep.equal({ data: { id: 1, text: 'Größe ✓' } });
    expect(options).to.include({ persistent: true, mandatory: true, messageId: 'abc-1' });
    expect(encodeAmqp(event(), 'binary', false).options.persistent).to.equal(false);
  });

  it('binary: binary data goes as its bytes; no data is an empty body', () => {
    const bytes = encodeAmqp(event({ datacontenttype: 'application/octet-stream', data: Buffer.from([0, 255, 1]) }), 'binary', true);
    expect([...bytes.content]).to.deep.equal([0, 255, 1]);
    expect(bytes.options.headers).not.to.have.property('cloudEvents:data_base64');
    expect(encodeAmqp(event({ data: undefined }), 'binary', true).content.length).to.equal(0);
  });

  it('structured: application/cloudevents+json with the JSON event format as body, no attribute headers', () => {
    const { content, options } = encodeAmqp(event(), 'structured', true);
    expect(options.contentType).to.equal('application/cloudevents+json; charset=utf-8');
    expect(options.headers).to.equal(undefined);
    const parsed = JSON.parse(content.toString('utf8'));
    expect(parsed).to.include({ id: 'abc-1', specversion: '1.0', datacontenttype: 'application/json', app: 'polls' });
    expect(parsed.data).to.deep.equal({ data: { id: 1, text: 'Größe ✓' } });
  });
});

describe('rabbitmq sink: configuration', () => {
  it('reports every missing or wrong key at once', () => {
    expect(validateBroker(rabbitmqBroker, broker({}, {}))).to.include.members([
      'brokers.rabbit.conn.url: is required',
      'brokers.rabbit.params.exchange: is required',
      'brokers.rabbit.params.queue: is required',
    ]);
    const problems = validateBroker(rabbitmqBroker, broker({ url: 'http://x', heartbeat: 'x', extra: 1 }, { exchange: 'x', mode: 'avro', persistent: 'yes' }));
    expect(problems).to.include.members([
      'brokers.rabbit.conn.extra: unknown key',
      'brokers.rabbit.conn.url: must match pattern "^amqps?://"',
      'brokers.rabbit.conn.heartbeat: must be integer',
      'brokers.rabbit.params: must have property routingKey when property exchange is present',
      'brokers.rabbit.params.persistent: must be boolean',
      'brokers.rabbit.params.mode: must be equal to one of the allowed values',
    ]);
    expect(validateBroker(rabbitmqBroker, broker({ url: 'amqp://h' }, { exchange: 'x', routingKey: 'k', declare: true })))
      .to.deep.equal(['brokers.rabbit.params: must have property queue when property declare is present']);
  });

  it('accepts exchange + routingKey, a queue, and "" as the default exchange', () => {
    for (const params of [{ exchange: 'x', routingKey: '{{ app }}.{{ model }}' }, { queue: 'q', declare: true, persistent: false, mode: 'structured' }, { exchange: '', routingKey: 'q' }]) {
      expect(validateBroker(rabbitmqBroker, broker({ url: 'amqps://u:p@h:5671/vh', heartbeat: 0 }, params)), JSON.stringify(params)).to.deep.equal([]);
    }
  });

  it('a malformed routing key template is a ConfigError naming the key', () => {
    expect(() => rabbitmqBroker.create(broker({ url: 'amqp://h' }, { exchange: 'x', routingKey: '{{ App }}' }), config))
      .to.throw(ConfigError, /brokers\.rabbit\.params\.routingKey/);
  });

  it('describe() names the broker, URL without credentials and destination; nothing connects before use', async () => {
    const sink = rabbitmqBroker.create(broker({ url: 'amqp://user:s3cret@127.0.0.1:5672/shop' }, { exchange: 'cdc', routingKey: '{{ app }}.{{ model }}' }), config);
    expect(sink).to.be.instanceOf(RabbitmqSink);
    expect(sink.describe()).to.equal('rabbitmq broker rabbit (amqp://127.0.0.1:5672/shop exchange "cdc" routing key "{{ app }}.{{ model }}")');
    await sink.close();
    await sink.close();
  });

  it('an event without the templated attribute is a final failure (no broker involved)', async () => {
    const sink = rabbitmqBroker.create(broker({ url: 'amqp://127.0.0.1:9' }, { queue: 'q_{{ tenant }}' }), config);
    const err = await sink.send(event()).then(() => undefined, (e: unknown) => e as { retriable: boolean; message: string });
    expect(err?.retriable).to.equal(false);
    expect(err?.message).to.include('no tenant attribute');
  });
});

describe('rabbitmq sink: which AMQP failures are retried', () => {
  const withCode = (code: number) => Object.assign(new Error(`code ${code}`), { code });
  it('final: permissions, too large, precondition, protocol errors, a refused login, a headers table too large', () => {
    for (const code of [311, 403, 406, 402, 501, 502, 503, 504, 505, 530, 540]) expect(isRetriableAmqpError(withCode(code)), String(code)).to.equal(false);
    expect(isRetriableAmqpError(new Error('Handshake terminated by server: 403 (ACCESS-REFUSED)'))).to.equal(false);
    expect(isRetriableAmqpError(new RangeError('headers table too large'))).to.equal(false);
  });
  it('retriable: not found (as HTTP 404), no route, locked, forced close, resource and internal errors, network errors, nacks', () => {
    for (const code of [404, 312, 313, 405, 320, 506, 541]) expect(isRetriableAmqpError(withCode(code)), String(code)).to.equal(true);
    expect(isRetriableAmqpError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).to.equal(true);
    expect(isRetriableAmqpError(new Error('message nacked'))).to.equal(true);
    expect(isRetriableAmqpError(new Error('channel closed'))).to.equal(true);
  });
});
