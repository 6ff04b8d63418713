import { expect } from 'chai';
import { CloudEvent, Kafka as CEKafka, type KafkaMessage as CEKafkaMessage } from 'cloudevents';
import type { BrokerConfig, Config } from '../../../src/config/types';
import { deliverWithRetry, type AttemptFailure } from '../../../src/delivery/deliver';
import { DeliveryError, ErrorCodes, PgceError } from '../../../src/errors';
import { createSink } from '../../../src/sinks';
import type { Sink } from '../../../src/sinks/types';
import { readKafkaRecords, startKafkaMock, type KafkaMock, type KafkaRecord } from '../harness/kafka-mock';
import { describeSinkConformance, sampleEvent } from './conformance';
import { closedPort } from '../harness/net';
import { ENVELOPE, failure, plainMessage } from './support';

/**
 * The kafka handler against librdkafka's mock cluster (test/integration/harness/kafka-mock.c):
 * a real Kafka protocol server in a process of its own, with topics created up front. Faults
 * (error answers, a broker going down, slow answers) are injected through the mock's own API.
 */
const PREFIX = 'pgce_h3_';
let topicSeq = 0;
const freshTopic = (what: string) => `${PREFIX}${what}_${process.pid}_${++topicSeq}`;
/** Bare-message tests' own names. */
const bareTopic = (what: string) => `pgce_hb_${what}_${process.pid}_${++topicSeq}`;

function config(broker: BrokerConfig, timeoutMs = 5000): Config {
  return {
    databaseUrl: 'postgres://127.0.0.1/unused',
    tables: [],
    capture: { mode: 'logical', slot: 's', publication: 'p', names: { slot: 'file', publication: 'file' }, statusIntervalMs: 1000, reconnectDelayMs: 100, reconnectMaxMs: 1000, heartbeatIntervalMs: 0, retainedWalWarnBytes: 0, retainedWalWarnFraction: 0, pollIntervalMs: 1000, batchSize: 500 },
    events: { format: 'default', typePrefix: 'orm', overrides: {} },
    handler: broker.name,
    brokers: { [broker.name]: broker },
    sink: { mode: 'binary', batchSize: 100, timeoutMs, caCertsDir: '/nonexistent', oidcTokenPath: '/nonexistent/token' },
    delivery: { backoffPolicy: 'exponential', backoffDelayMs: 50, backoffMaxMs: 200, timeoutMs, maxInFlight: 8, maxBufferBytes: 1 << 26 },
    deadLetters: { schema: 'pgcloudevents', table: 'dead_letters' },
    leader: { enabled: false, pollIntervalMs: 1000 },
    server: { port: 0 },
    logLevel: 'silent',
  };
}

/** The sink exactly as `run` builds it: through the registry, which validates conn and params. */
function kafkaSink(brokers: string[], params: Record<string, unknown>, timeoutMs = 5000): Sink {
  const broker: BrokerConfig = { name: 'test_kafka', type: 'kafka', conn: { brokers, clientId: 'pgce-h3-test' }, params };
  return createSink(broker.name, config(broker, timeoutMs));
}

/** The SDK's Kafka.toEvent wants string headers, a key and a string value: kafkajs gives Buffers. */
function toCloudEvent(r: KafkaRecord): CloudEvent<unknown> {
  const value = r.value?.toString('utf8');
  const message: CEKafkaMessage<string | undefined> = { headers: r.headers, key: r.key ?? '', value, body: value };
  return CEKafka.toEvent(message) as CloudEvent<unknown>;
}

describeSinkConformance('kafka (librdkafka mock cluster)', async () => {
  const topic = freshTopic('conformance');
  const mock = await startKafkaMock([{ name: topic, partitions: 3 }]);
  return {
    sink: async () => kafkaSink(mock.brokers, { topic }),
    readBack: async (count, timeoutMs) => {
      const records = await readKafkaRecords(mock, topic, count, timeoutMs);
      return records.sort((a, b) => a.partition - b.partition || a.offset - b.offset).map((r) => {
        const event = toCloudEvent(r);
        event.validate();
        return event;
      });
    },
    unreachableSink: async () => kafkaSink([`127.0.0.1:${await closedPort()}`], { topic }, 2000),
    // The mock's own fault controls: brokers advertise their real address, so a proxy in front of
    // the bootstrap address would be bypassed after the first metadata answer.
    faultySink: async (timeoutMs) => ({
      sink: kafkaSink(mock.brokers, { topic }, timeoutMs),
      faults: {
        hang: async () => void (await mock.control('broker-rtt 1 600000')),
        down: async () => void (await mock.control('broker-down 1')),
        up: async () => {
          await mock.control('broker-rtt 1 0');
          await mock.control('broker-up 1');
        },
        close: async () => undefined,
      },
    }),
    cleanup: () => mock.stop(),
  };
}, { sendBatch: true });

describe('sinks/kafka against librdkafka’s mock cluster', function () {
  this.timeout(60_000);
  let mock: KafkaMock | undefined;
  let sink: Sink | undefined;

  afterEach(async () => {
    await sink?.close();
    sink = undefined;
    await mock?.stop();
    mock = undefined;
  });

  it('binary mode: ce_ headers without undefined values, content-type, JSON value, key = partitionkey, timestamp = time', async () => {
    const topic = freshTopic('binary');
    mock = await startKafkaMock([{ name: topic, partitions: 1 }]);
    sink = kafkaSink(mock.brokers, { topic });
    const event = sampleEvent(7, { partitionkey: 'polls.question/7' });
    await sink.send(event);
    const [r] = await readKafkaRecords(mock, topic, 1);
    expect(r.headers).to.deep.equal({
      'content-type': 'application/json',
      ce_specversion: '1.0',
      ce_id: event.id,
      ce_source: '/pg-cloudevents/conformance',
      ce_type: 'orm.post_save',
      ce_subject: 'DCE:polls.question/7',
      ce_time: '2024-02-29T11:14:15.500Z',
      ce_app: 'polls',
      ce_model: 'question',
      ce_sequence: event.sequence as string,
      ce_partitionkey: 'polls.question/7',
    });
    expect(r.key).to.equal('polls.question/7');
    expect(JSON.parse(String(r.value))).to.deep.equal(event.data);
    expect(r.message.timestamp).to.equal(String(Date.parse('2024-02-29T11:14:15.500Z')));
    expect(toCloudEvent(r).toJSON()).to.deep.equal(event.toJSON());
  });

  it('structured mode: the whole event as application/cloudevents+json, rebuilt by Kafka.toEvent', async () => {
    const topic = freshTopic('structured');
    mock = await startKafkaMock([{ name: topic, partitions: 1 }]);
    sink = kafkaSink(mock.brokers, { topic, mode: 'structured' });
    const event = sampleEvent(3, { count: 42, flag: true });
    await sink.send(event);
    const [r] = await readKafkaRecords(mock, topic, 1);
    expect(r.headers['content-type']).to.match(/^application\/cloudevents\+json/);
    expect(Object.keys(r.headers).filter((h) => h.startsWith('ce_'))).to.deep.equal([]);
    expect(JSON.parse(String(r.value))).to.deep.equal(JSON.parse(event.toString()));
    expect(r.key).to.equal('polls.question/1');
    const got = toCloudEvent(r);
    expect(got.validate()).to.equal(true);
    expect(got.toJSON()).to.deep.equal(event.toJSON());
  });

  it('all events of one partitionkey land in one partition, in order; different keys spread over partitions', async () => {
    const topic = freshTopic('keys');
    mock = await startKafkaMock([{ name: topic, partitions: 4 }]);
    sink = kafkaSink(mock.brokers, { topic });
    const keys = Array.from({ length: 8 }, (_, k) => `polls.question/${k}`);
    let n = 0;
    for (let round = 0; round < 5; round++) {
      for (const key of keys) await sink.send(sampleEvent(++n, { partitionkey: key }));
    }
    const records = await readKafkaRecords(mock, topic, n);
    const byKey = new Map<string, KafkaRecord[]>();
    for (const r of records) byKey.set(r.key!, [...(byKey.get(r.key!) ?? []), r]);
    expect([...byKey.keys()].sort()).to.deep.equal([...keys].sort());
    for (const [key, rs] of byKey) {
      expect(new Set(rs.map((r) => r.partition)).size, `${key} in one partition`).to.equal(1);
      const ids = rs.sort((a, b) => a.offset - b.offset).map((r) => (JSON.parse(String(r.value)) as { data: { id: number } }).data.id);
      expect(ids, `${key} in order`).to.deep.equal([...ids].sort((a, b) => a - b));
      expect(ids).to.have.length(5);
    }
    expect(new Set(records.map((r) => r.partition)).size, 'keys spread over partitions').to.be.greaterThan(1);
  });

  it('tombstone: a delete is followed by a null-value record with the same key in the same partition; saves are not', async () => {
    const topic = freshTopic('tombstone');
    mock = await startKafkaMock([{ name: topic, partitions: 3 }]);
    sink = kafkaSink(mock.brokers, { topic, tombstone: true });
    await sink.send(sampleEvent(1, { partitionkey: 'polls.question/9' }));
    await sink.send(sampleEvent(2, { type: 'orm.post_delete', partitionkey: 'polls.question/9' }));
    const records = (await readKafkaRecords(mock, topic, 3)).sort((a, b) => a.offset - b.offset);
    expect(records.map((r) => r.key)).to.deep.equal(['polls.question/9', 'polls.question/9', 'polls.question/9']);
    expect(new Set(records.map((r) => r.partition)).size).to.equal(1);
    expect(records.map((r) => (r.value === null ? null : toCloudEvent(r).type))).to.deep.equal(['orm.post_save', 'orm.post_delete', null]);
    expect(records[2].headers).to.deep.equal({});
  });

  it('without tombstone: a delete is one record', async () => {
    const topic = freshTopic('notombstone');
    mock = await startKafkaMock([{ name: topic, partitions: 1 }]);
    sink = kafkaSink(mock.brokers, { topic });
    await sink.send(sampleEvent(2, { type: 'orm.post_delete' }));
    await sink.send(sampleEvent(3));
    const records = await readKafkaRecords(mock, topic, 2);
    expect(records.map((r) => r.value === null)).to.deep.equal([false, false]);
  });

  it('the topic may be a template over the event', async () => {
    const topic = `${PREFIX}polls.question`;
    mock = await startKafkaMock([{ name: topic, partitions: 1 }]);
    sink = kafkaSink(mock.brokers, { topic: `${PREFIX}{{ app }}.{{ model }}` });
    await sink.send(sampleEvent(1));
    const [r] = await readKafkaRecords(mock, topic, 1);
    expect(toCloudEvent(r).id).to.equal(sampleEvent(1).id);
  });

  it('classifies broker answers (injected by the mock): too large and not authorised are final, not enough replicas and unknown topic retriable', async () => {
    const topic = freshTopic('errors');
    mock = await startKafkaMock([{ name: topic, partitions: 1 }]);
    sink = kafkaSink(mock.brokers, { topic });
    await sink.send(sampleEvent(1)); // connected
    await mock.control('produce-error 10 1'); // MESSAGE_TOO_LARGE
    const large = await failure(sink.send(sampleEvent(2)));
    expect(large).to.be.instanceOf(DeliveryError);
    expect([large.retriable, large.detail.kafkaError]).to.deep.equal([false, 'MESSAGE_TOO_LARGE']);
    expect(large.code).to.equal(ErrorCodes.SINK_FINAL);
    await mock.control('produce-error 19 1'); // NOT_ENOUGH_REPLICAS
    const replicas = await failure(sink.send(sampleEvent(3)));
    expect([replicas.retriable, replicas.detail.kafkaError]).to.deep.equal([true, 'NOT_ENOUGH_REPLICAS']);
    await sink.send(sampleEvent(4)); // the faults were one-shot: delivery works again

    const other = freshTopic('denied');
    await mock.control(`topic-error ${other} 29`); // TOPIC_AUTHORIZATION_FAILED in the metadata
    const denied = await failure(kafkaSinkSend(mock, other));
    expect([denied.retriable, denied.detail.kafkaError]).to.deep.equal([false, 'TOPIC_AUTHORIZATION_FAILED']);
    const missing = freshTopic('missing');
    await mock.control(`topic-error ${missing} 3`); // UNKNOWN_TOPIC_OR_PARTITION
    const unknown = await failure(kafkaSinkSend(mock, missing));
    expect([unknown.retriable, unknown.detail.kafkaError]).to.deep.equal([true, 'UNKNOWN_TOPIC_OR_PARTITION']);
  });

  async function kafkaSinkSend(m: KafkaMock, topic: string): Promise<void> {
    const s = kafkaSink(m.brokers, { topic });
    try {
      await s.send(sampleEvent(1));
    } finally {
      await s.close();
    }
  }

  it('a broker that goes down is retried by the engine and the event is delivered once it is back', async () => {
    const topic = freshTopic('outage');
    mock = await startKafkaMock([{ name: topic, partitions: 1 }]);
    sink = kafkaSink(mock.brokers, { topic }, 2000);
    await sink.send(sampleEvent(1));
    await mock.control('broker-down 1');
    const failures: AttemptFailure[] = [];
    const m = mock;
    let brought = false;
    const result = await deliverWithRetry(sink, sampleEvent(2), config({ name: 'x', type: 'kafka', conn: {}, params: {} }, 2000).delivery, {
      onAttemptFailed: (f) => {
        failures.push(f);
        if (failures.length === 3 && !brought) {
          brought = true;
          void m.control('broker-up 1');
        }
      },
    });
    expect(failures.length).to.be.at.least(3);
    expect(failures.every((f) => f.error.retriable)).to.equal(true);
    expect(result.attempts).to.equal(failures.length + 1);
    const records = await readKafkaRecords(mock, topic, 2);
    expect(records.map((r) => toCloudEvent(r).id)).to.deep.equal([sampleEvent(1).id, sampleEvent(2).id]);
  });

  it('a send is bounded by sink.timeoutMs: a broker slower than that (mock round-trip delay) is a retriable failure', async () => {
    const topic = freshTopic('slow');
    mock = await startKafkaMock([{ name: topic, partitions: 1 }]);
    sink = kafkaSink(mock.brokers, { topic }, 500);
    await sink.send(sampleEvent(1));
    await mock.control('broker-rtt 1 3000');
    const started = Date.now();
    const err = await failure(sink.send(sampleEvent(2)));
    expect(Date.now() - started).to.be.below(1500);
    expect(err.retriable).to.equal(true);
    expect(err.message).to.match(/within 500 ms|timed out/i);
  });

  it('a closed port: retriable, PGCE_ERR_SINK_UNREACHABLE, within the timeout', async () => {
    const port = await closedPort();
    sink = kafkaSink([`127.0.0.1:${port}`], { topic: `${PREFIX}nowhere` }, 1000);
    const started = Date.now();
    const err = await failure(sink.send(sampleEvent(1)));
    expect(Date.now() - started).to.be.below(2000);
    expect(err.retriable).to.equal(true);
    expect(err.code).to.equal(ErrorCodes.SINK_UNREACHABLE);
    expect(err.message).to.include(`127.0.0.1:${port}`);
  });

  it('check(): passes against the cluster and names the broker when it is unreachable', async () => {
    const topic = freshTopic('check');
    mock = await startKafkaMock([{ name: topic, partitions: 1 }]);
    sink = kafkaSink(mock.brokers, { topic });
    await sink.check!();
    const port = await closedPort();
    const down = kafkaSink([`127.0.0.1:${port}`], { topic }, 1000);
    try {
      const err = await down.check!().then(() => expect.fail('check must fail'), (e: unknown) => e as PgceError);
      expect(err).to.be.instanceOf(PgceError);
      expect(err.code).to.equal(ErrorCodes.SINK_UNREACHABLE);
      expect(err.message).to.include('test_kafka').and.include(`127.0.0.1:${port}`);
    } finally {
      await down.close();
    }
  });

  it('sendMessage (bare payload): value = the body bytes, headers content-type and id only, key = the message key: no CloudEvent envelope', async () => {
    const topic = bareTopic('bare');
    mock = await startKafkaMock([{ name: topic, partitions: 3 }]);
    sink = kafkaSink(mock.brokers, { topic, mode: 'structured', tombstone: true });
    const text = plainMessage(2, { body: Buffer.from('order 2 shipped', 'utf8'), contentType: 'text/plain; charset=utf-8', key: undefined });
    await sink.sendMessage!(plainMessage(1));
    await sink.sendMessage!(text);
    const records = await readKafkaRecords(mock, topic, 2);
    const json = records.find((r) => r.key !== null)!;
    expect(json.value!.equals(plainMessage(1).body)).to.equal(true);
    expect(json.headers).to.deep.equal({ 'content-type': 'application/json', id: plainMessage(1).id });
    expect(json.key).to.equal('shop.order/1');
    const plain = records.find((r) => r.key === null)!;
    expect(plain.value!.toString('utf8')).to.equal('order 2 shipped');
    expect(plain.headers).to.deep.equal({ 'content-type': 'text/plain; charset=utf-8', id: text.id });
    expect(records.flatMap((r) => Object.keys(r.headers)).filter((h) => ENVELOPE.test(h))).to.deep.equal([]);
  });

  it('sendMessage (bare payload): classification as for events: an unknown topic is retriable, a templated topic (no attributes to render) final', async () => {
    const topic = bareTopic('known');
    mock = await startKafkaMock([{ name: topic, partitions: 1 }]);
    const missing = bareTopic('missing');
    await mock.control(`topic-error ${missing} 3`); // UNKNOWN_TOPIC_OR_PARTITION
    sink = kafkaSink(mock.brokers, { topic: missing });
    const unknown = await failure(sink.sendMessage!(plainMessage(1)));
    expect([unknown.retriable, unknown.detail.kafkaError]).to.deep.equal([true, 'UNKNOWN_TOPIC_OR_PARTITION']);
    await sink.close();
    sink = kafkaSink(mock.brokers, { topic: `${topic}_{{ model }}` });
    const templated = await failure(sink.sendMessage!(plainMessage(1)));
    expect(templated.retriable).to.equal(false);
    expect(templated.message).to.include('brokers.test_kafka.params.topic').and.include('fixed destination');
  });
});
