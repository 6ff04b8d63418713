import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import {
  KafkaJSConnectionError,
  KafkaJSNonRetriableError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
  KafkaJSSASLAuthenticationError,
  KafkaJSTimeout,
} from 'kafkajs';
import type { BrokerConfig, Config } from '../../../src/config/types';
import { ConfigError, DeliveryError, ErrorCodes } from '../../../src/errors';
import { validateBroker } from '../../../src/sinks/broker';
import { kafkaBroker } from '../../../src/sinks/kafka';
import { encodeKafkaMessages } from '../../../src/sinks/kafka/encode';
import { classifyKafkaError } from '../../../src/sinks/kafka/errors';

function broker(conn: Record<string, unknown>, params: Record<string, unknown>): BrokerConfig {
  return { name: 'orders_kafka', type: 'kafka', conn, params };
}

// Only sink.timeoutMs is read by the kafka handler.
const config = { sink: { timeoutMs: 1000 } } as unknown as Config;

/** `over` may set an attribute to undefined to leave it out. */
function event(over: Record<string, unknown> = {}): CloudEvent<unknown> {
  const attrs: Record<string, unknown> = {
    specversion: '1.0',
    id: '00000000016B3748-00000003',
    source: '/pg-cloudevents/app',
    type: 'orm.post_save',
    subject: 'DCE:polls.question/22',
    time: '2020-12-01T09:43:00.250Z',
    datacontenttype: 'application/json',
    app: 'polls',
    model: 'question',
    partitionkey: 'polls.question/22',
    data: { data: { id: 22 } },
    ...over,
  };
  for (const k of Object.keys(attrs)) if (attrs[k] === undefined) delete attrs[k];
  return new CloudEvent<unknown>(attrs as never);
}

describe('sinks/kafka: configuration schema', () => {
  it('reports every missing required key at once', () => {
    expect(validateBroker(kafkaBroker, broker({}, {}))).to.deep.equal([
      'brokers.orders_kafka.conn.brokers: is required',
      'brokers.orders_kafka.params.topic: is required',
    ]);
  });

  it('reports wrong types, bad values and unknown keys, by key path', () => {
    const problems = validateBroker(kafkaBroker, broker(
      { brokers: ['127.0.0.1:9092', 'no-port'], ssl: 'yes', sasl: { mechanism: 'gssapi', username: 'u' }, clientid: 'x' },
      { topic: 'orders', mode: 'batch', tombstone: 1, acks: 1 },
    ));
    expect(problems).to.include.members([
      'brokers.orders_kafka.conn.brokers[1]: must match pattern "^\\S+:[0-9]{1,5}$"',
      'brokers.orders_kafka.conn.ssl: must be boolean',
      'brokers.orders_kafka.conn.sasl.password: is required',
      'brokers.orders_kafka.conn.sasl.mechanism: must be equal to one of the allowed values',
      'brokers.orders_kafka.conn.clientid: unknown key',
      'brokers.orders_kafka.params.mode: must be equal to one of the allowed values',
      'brokers.orders_kafka.params.tombstone: must be boolean',
      'brokers.orders_kafka.params.acks: unknown key',
    ]);
    expect(problems).to.have.length(8);
  });

  it('accepts a full configuration', () => {
    expect(validateBroker(kafkaBroker, broker(
      { brokers: ['kafka-0.kafka:9092'], clientId: 'pgce', ssl: true, sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' } },
      { topic: '{{ app }}.{{ model }}', mode: 'structured', tombstone: true },
    ))).to.deep.equal([]);
  });

  it('a malformed topic template is a configuration error naming the key', () => {
    expect(() => kafkaBroker.create(broker({ brokers: ['127.0.0.1:9'] }, { topic: 'x.{{ app }' }), config))
      .to.throw(ConfigError, /brokers\.orders_kafka\.params\.topic/);
  });

  it('describe() names the brokers but never the SASL password', async () => {
    const sink = kafkaBroker.create(broker({ brokers: ['127.0.0.1:9'], sasl: { mechanism: 'plain', username: 'u', password: 's3cret' } }, { topic: 't' }), config);
    expect(sink.describe()).to.include('127.0.0.1:9').and.not.include('s3cret');
    await sink.close();
    await sink.close();
  });
});

describe('sinks/kafka: encoding (CloudEvents Kafka binding)', () => {
  it('binary: ce_ headers as strings, undefined attributes left out, content-type, JSON value, key = partitionkey', () => {
    const [m] = encodeKafkaMessages(event({ seq: 7, flag: false, dataschema: undefined }), 'binary', false);
    expect(m.key).to.equal('polls.question/22');
    expect(m.value).to.equal(JSON.stringify({ data: { id: 22 } }));
    expect(m.timestamp).to.equal(String(Date.parse('2020-12-01T09:43:00.250Z')));
    expect(m.headers).to.deep.equal({
      'content-type': 'application/json',
      ce_specversion: '1.0',
      ce_id: '00000000016B3748-00000003',
      ce_source: '/pg-cloudevents/app',
      ce_type: 'orm.post_save',
      ce_subject: 'DCE:polls.question/22',
      ce_time: '2020-12-01T09:43:00.250Z',
      ce_app: 'polls',
      ce_model: 'question',
      ce_partitionkey: 'polls.question/22',
      ce_seq: '7',
      ce_flag: 'false',
    });
  });

  it('structured: the event as JSON with the cloudevents content type and no ce_ headers', () => {
    const e = event();
    const [m] = encodeKafkaMessages(e, 'structured', false);
    expect(m.headers).to.deep.equal({ 'content-type': 'application/cloudevents+json; charset=utf-8' });
    expect(JSON.parse(String(m.value))).to.deep.equal(JSON.parse(e.toString()));
    expect(m.key).to.equal('polls.question/22');
  });

  it('without partitionkey (django format) the key is the subject; with neither there is no key', () => {
    const noKey = event({ partitionkey: undefined });
    expect(encodeKafkaMessages(noKey, 'binary', false)[0].key).to.equal('DCE:polls.question/22');
    expect(encodeKafkaMessages(event({ partitionkey: undefined, subject: undefined }), 'binary', false)[0].key).to.equal(null);
  });

  it('tombstone: only for deletes (any type prefix) that have a key, and only when asked', () => {
    const del = event({ type: 'django.orm.post_delete' });
    expect(encodeKafkaMessages(del, 'binary', true).map((m) => [m.key, m.value === null])).to.deep.equal([
      ['polls.question/22', false],
      ['polls.question/22', true],
    ]);
    expect(encodeKafkaMessages(del, 'binary', false)).to.have.length(1);
    expect(encodeKafkaMessages(event(), 'binary', true)).to.have.length(1);
    expect(encodeKafkaMessages(event({ type: 'orm.post_delete', partitionkey: undefined, subject: undefined }), 'binary', true)).to.have.length(1);
  });
});

describe('sinks/kafka: error classification (kafkajs errors, no broker)', () => {
  const protocol = (type: string, code: number, retriable: boolean) => new KafkaJSProtocolError({ type, code, retriable, message: `${type} from the broker` } as unknown as string);
  // What kafkajs' retrier throws with `retries: 0` (src/retry/index.js); its typings omit the options.
  const NonRetriable = KafkaJSNonRetriableError as unknown as new (e: Error, o: { cause: Error }) => Error;
  const wrapped = (e: Error) => new NonRetriable(e, { cause: e });

  it('looks through kafkajs’ retry wrappers to the real failure', () => {
    const refused = new KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:9', { broker: '127.0.0.1:9', code: 'ECONNREFUSED' });
    const viaRetries = new KafkaJSNumberOfRetriesExceeded(refused, { retryCount: 0, retryTime: 0 });
    for (const e of [refused, wrapped(refused), viaRetries]) {
      const d = classifyKafkaError(e, 'kafka://127.0.0.1:9');
      expect(d).to.be.instanceOf(DeliveryError);
      expect([d.retriable, d.code]).to.deep.equal([true, ErrorCodes.SINK_UNREACHABLE]);
      expect(d.message).to.include('ECONNREFUSED 127.0.0.1:9');
    }
  });

  it('follows Kafka’s table for broker answers, keeping UNKNOWN_TOPIC_OR_PARTITION retriable', () => {
    const verdicts = Object.fromEntries(
      [
        protocol('MESSAGE_TOO_LARGE', 10, false),
        protocol('TOPIC_AUTHORIZATION_FAILED', 29, false),
        protocol('INVALID_TOPIC_EXCEPTION', 17, false),
        protocol('UNKNOWN_TOPIC_OR_PARTITION', 3, true),
        protocol('NOT_ENOUGH_REPLICAS', 19, true),
        protocol('LEADER_NOT_AVAILABLE', 5, true),
      ].map((e) => {
        const d = classifyKafkaError(wrapped(e), 'x');
        return [d.detail.kafkaError, d.code];
      }),
    );
    expect(verdicts).to.deep.equal({
      MESSAGE_TOO_LARGE: ErrorCodes.SINK_FINAL,
      TOPIC_AUTHORIZATION_FAILED: ErrorCodes.SINK_FINAL,
      INVALID_TOPIC_EXCEPTION: ErrorCodes.SINK_FINAL,
      UNKNOWN_TOPIC_OR_PARTITION: ErrorCodes.SINK_RETRIABLE,
      NOT_ENOUGH_REPLICAS: ErrorCodes.SINK_RETRIABLE,
      LEADER_NOT_AVAILABLE: ErrorCodes.SINK_RETRIABLE,
    });
  });

  it('timeouts are retriable, failed authentication final, an unknown client failure retriable', () => {
    expect(classifyKafkaError(new (KafkaJSTimeout as unknown as new (m: string) => Error)('Timeout'), 'x').retriable).to.equal(true);
    expect(classifyKafkaError(wrapped(new (KafkaJSSASLAuthenticationError as unknown as new (m: string) => Error)('SASL PLAIN authentication failed')), 'x').retriable).to.equal(false);
    expect(classifyKafkaError(new Error('something odd'), 'x').retriable).to.equal(true);
  });

  it('a missing template attribute or an illegal topic name is final, before any connection', async () => {
    const templated = kafkaBroker.create(broker({ brokers: ['127.0.0.1:9'] }, { topic: '{{ tenant }}.events' }), config);
    const bad = kafkaBroker.create(broker({ brokers: ['127.0.0.1:9'] }, { topic: '{{ subject }}' }), config);
    try {
      const missing = await templated.send(event()).then(() => expect.fail('must fail'), (e: unknown) => e as DeliveryError);
      expect([missing.retriable, missing.code]).to.deep.equal([false, ErrorCodes.SINK_FINAL]);
      expect(missing.message).to.match(/no tenant attribute/);
      const illegal = await bad.send(event()).then(() => expect.fail('must fail'), (e: unknown) => e as DeliveryError);
      expect(illegal.retriable).to.equal(false);
      expect(illegal.message).to.match(/"DCE:polls.question\/22" is not a valid Kafka topic name/);
    } finally {
      await templated.close();
      await bad.close();
    }
  });
});
