import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import type { BrokerConfig, Config } from '../../../src/config/types';
import { ConfigError, DeliveryError, ErrorCodes } from '../../../src/errors';
import { validateBroker } from '../../../src/sinks/broker';
import { encodeMessage, orderingKeyFor, pubsubBroker, topicProblem } from '../../../src/sinks/pubsub';
import { PubSubSink } from '../../../src/sinks/pubsub/sink';
import { isRetriableCode, publishError } from '../../../src/sinks/pubsub/errors';

function broker(conn: Record<string, unknown>, params: Record<string, unknown>): BrokerConfig {
  return { name: 'events', type: 'pubsub', conn, params };
}

const config = { sink: { timeoutMs: 1000 } } as unknown as Config;

function event(over: Record<string, unknown> = {}): CloudEvent<unknown> {
  return new CloudEvent<unknown>({
    id: 'a-1',
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
  });
}

describe('sinks/pubsub: configuration', () => {
  it('valid conn and params pass', () => {
    expect(validateBroker(pubsubBroker, broker({ projectId: 'p', apiEndpoint: '127.0.0.1:8085', keyFilename: '/k.json' }, {
      topic: 'orders', ordering: true, mode: 'structured', batchDelayMs: 0,
    }))).to.deep.equal([]);
  });

  it('reports every missing, wrongly typed and unknown key at once, by path', () => {
    const problems = validateBroker(pubsubBroker, broker({ project: 'p', apiEndpoint: 8085 }, { ordering: 'yes', mode: 'batch', batchDelayMs: 5000 }));
    expect(problems).to.have.members([
      'brokers.events.conn.projectId: is required',
      'brokers.events.conn.project: unknown key',
      'brokers.events.conn.apiEndpoint: must be string',
      'brokers.events.params.topic: is required',
      'brokers.events.params.ordering: must be boolean',
      'brokers.events.params.mode: must be equal to one of the allowed values',
      'brokers.events.params.batchDelayMs: must be <= 1000',
    ]);
  });

  it('an empty projectId or topic is refused', () => {
    expect(validateBroker(pubsubBroker, broker({ projectId: '' }, { topic: '' }))).to.have.members([
      'brokers.events.conn.projectId: must NOT have fewer than 1 characters',
      'brokers.events.params.topic: must NOT have fewer than 1 characters',
    ]);
  });

  it('a malformed topic template or an invalid fixed topic id is a ConfigError naming the key', () => {
    expect(() => pubsubBroker.create(broker({ projectId: 'p' }, { topic: 'orders_{{ app' }), config))
      .to.throw(ConfigError, /brokers\.events\.params\.topic: .*malformed placeholder/);
    expect(() => pubsubBroker.create(broker({ projectId: 'p' }, { topic: 'goog-orders' }), config))
      .to.throw(ConfigError, /brokers\.events\.params\.topic: "goog-orders" is not a valid Pub\/Sub topic id/);
  });

  it('describe() names project, topic and endpoint, never the key file', async () => {
    const sink = pubsubBroker.create(broker({ projectId: 'p', apiEndpoint: '127.0.0.1:8085', keyFilename: '/secret/key.json' }, { topic: '{{ app }}' }), config);
    expect(sink.describe()).to.equal('pubsub projects/p/topics/{{ app }} via 127.0.0.1:8085');
    await sink.close();
  });
});

describe('sinks/pubsub: encoding (CloudEvents Pub/Sub binding)', () => {
  it('binary: ce- attributes, Content-Type for datacontenttype, JSON data', () => {
    const m = encodeMessage(event(), 'binary');
    expect(m.mode).to.equal('binary');
    expect(m.attributes).to.include({ 'ce-id': 'a-1', 'ce-specversion': '1.0', 'ce-partitionkey': 'polls.question/22', 'Content-Type': 'application/json' });
    expect(m.attributes).to.not.have.property('ce-datacontenttype');
    expect(m.attributes).to.not.have.property('ce-data');
    expect(JSON.parse(m.data.toString())).to.deep.equal({ data: { id: 22 } });
  });

  it('binary falls back to structured when an attribute value is over 1024 bytes', () => {
    const m = encodeMessage(event({ subject: 'x'.repeat(1025) }), 'binary');
    expect(m.mode).to.equal('structured');
    expect(m.attributes).to.deep.equal({ 'Content-Type': 'application/cloudevents+json; charset=UTF-8' });
    expect(JSON.parse(m.data.toString()).subject).to.have.length(1025);
  });

  it('an ordering key over 1024 bytes becomes a stable digest', () => {
    expect(orderingKeyFor('polls.question/1')).to.equal('polls.question/1');
    const long = `polls.question/${'9'.repeat(2000)}`;
    expect(orderingKeyFor(long)).to.match(/^sha256:[0-9a-f]{64}$/).and.equal(orderingKeyFor(long));
    expect(orderingKeyFor(long)).to.not.equal(orderingKeyFor(`${long}0`));
  });

  it('topic ids follow the service rules', () => {
    expect(topicProblem('orders')).to.equal(undefined);
    expect(topicProblem('projects/p/topics/orders.v1')).to.equal(undefined);
    expect(topicProblem('1orders')).to.match(/not a valid/);
    expect(topicProblem('ab')).to.match(/not a valid/);
    expect(topicProblem('a/b')).to.match(/not a valid/);
  });
});

describe('sinks/pubsub: gRPC status classification', () => {
  it('temporary codes are retriable, refusals are final', () => {
    // UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNKNOWN, CANCELLED
    for (const code of [14, 4, 8, 10, 13, 2, 1, undefined]) expect(isRetriableCode(code), String(code)).to.equal(true);
    // INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, FAILED_PRECONDITION, UNIMPLEMENTED, UNAUTHENTICATED
    for (const code of [3, 5, 6, 7, 9, 12, 16]) expect(isRetriableCode(code), String(code)).to.equal(false);
  });

  it('a connection failure before any answer is SINK_UNREACHABLE; after one, SINK_RETRIABLE', () => {
    const err = Object.assign(new Error('14 UNAVAILABLE: No connection established'), { code: 14, details: 'No connection established' });
    expect(publishError(err, 'topic t', true).code).to.equal(ErrorCodes.SINK_UNREACHABLE);
    expect(publishError(err, 'topic t', false).code).to.equal(ErrorCodes.SINK_RETRIABLE);
    const denied = publishError(Object.assign(new Error('7 PERMISSION_DENIED: no'), { code: 7, details: 'no' }), 'topic t', true);
    expect(denied.code).to.equal(ErrorCodes.SINK_FINAL);
    expect(denied.message).to.equal('pubsub topic t: PERMISSION_DENIED: no');
  });
});

describe('sinks/pubsub: ordering key recovery (mocked Topic object)', () => {
  it('resumes the key after a failed ordered publish, and says nothing for an unordered one', async () => {
    const sink = pubsubBroker.create(broker({ projectId: 'p', apiEndpoint: '127.0.0.1:9' }, { topic: 'orders', ordering: true }), config) as PubSubSink;
    const resumed: string[] = [];
    const fakeTopic = {
      publishMessage: () => Promise.reject(Object.assign(new Error('14 UNAVAILABLE: down'), { code: 14 })),
      resumePublishing: (key: string) => resumed.push(key),
    };
    (sink as unknown as { topics: Map<string, unknown> }).topics.set('orders', fakeTopic);
    const err = await sink.send(event()).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(DeliveryError);
    expect((err as DeliveryError).retriable).to.equal(true);
    expect(resumed).to.deep.equal(['polls.question/22']);
    await sink.close();

    const unordered = pubsubBroker.create(broker({ projectId: 'p', apiEndpoint: '127.0.0.1:9' }, { topic: 'orders' }), config) as PubSubSink;
    (unordered as unknown as { topics: Map<string, unknown> }).topics.set('orders', fakeTopic);
    await unordered.send(event()).catch(() => undefined);
    expect(resumed).to.have.length(1);
    await unordered.close();
  });
});
