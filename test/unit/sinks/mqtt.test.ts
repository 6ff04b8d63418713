import { expect } from 'chai';
import { CloudEvent, MQTT, MQTTMessageFactory } from 'cloudevents';
import type { BrokerConfig, Config } from '../../../src/config/types';
import { ConfigError } from '../../../src/errors';
import { validateBroker } from '../../../src/sinks/broker';
import { encodeMqtt, isRetriableMqttError, mqttBroker, topicProblem } from '../../../src/sinks/mqtt';
import { MqttSink } from '../../../src/sinks/mqtt/sink';

function event(over: Record<string, unknown> = {}): CloudEvent<unknown> {
  return new CloudEvent<unknown>({
    id: 'abc-1',
    source: '/pg-cloudevents/shop',
    type: 'orm.post_save',
    time: '2024-02-29T11:14:15.500Z',
    datacontenttype: 'application/json',
    app: 'polls',
    retries: 3,
    data: { data: { id: 1, text: 'Größe ✓' } },
    ...over,
  });
}

const config = { sink: { timeoutMs: 1000 } } as unknown as Config;
const broker = (conn: Record<string, unknown>, params: Record<string, unknown>): BrokerConfig => ({ name: 'things', type: 'mqtt', conn, params });

describe('mqtt sink: CloudEvents MQTT 5 binding (encode)', () => {
  it('binary: attributes as User Properties named as the attribute, canonical strings; Content Type = datacontenttype', () => {
    const message = encodeMqtt(event(), 'binary');
    expect(message.contentType).to.equal('application/json');
    expect(message.userProperties).to.deep.equal({
      id: 'abc-1', source: '/pg-cloudevents/shop', type: 'orm.post_save', specversion: '1.0',
      time: '2024-02-29T11:14:15.500Z', datacontenttype: 'application/json', app: 'polls', retries: '3',
    });
    expect(JSON.parse(message.payload.toString('utf8'))).to.deep.equal({ data: { id: 1, text: 'Größe ✓' } });
  });

  it('binary: the SDK rebuilds an equal, valid event from what is sent', () => {
    const sent = event();
    const m = encodeMqtt(sent, 'binary');
    const got = MQTT.toEvent(MQTTMessageFactory(m.contentType ?? '', m.userProperties, JSON.parse(m.payload.toString()))) as CloudEvent<unknown>;
    expect(got.validate()).to.equal(true);
    expect(got.id).to.equal(sent.id);
    expect(got.data).to.deep.equal(sent.data);
    expect((got as unknown as { app: string }).app).to.equal('polls');
  });

  it('structured: Content Type application/cloudevents+json, the JSON event as payload, no User Properties', () => {
    const m = encodeMqtt(event(), 'structured');
    expect(m.contentType).to.equal('application/cloudevents+json; charset=utf-8');
    expect(m.userProperties).to.deep.equal({});
    expect(JSON.parse(m.payload.toString('utf8'))).to.include({ id: 'abc-1', app: 'polls' });
  });

  it('topic names: no wildcard, no NUL, not empty', () => {
    expect(topicProblem('a/b/c')).to.equal(undefined);
    expect(topicProblem('a/+/c')).to.match(/wildcard/);
    expect(topicProblem('a/#')).to.match(/wildcard/);
    expect(topicProblem('')).to.equal('is empty');
  });
});

describe('mqtt sink: configuration', () => {
  it('reports every missing or wrong key at once', () => {
    expect(validateBroker(mqttBroker, broker({}, {}))).to.deep.equal(['brokers.things.conn.url: is required', 'brokers.things.params.topic: is required']);
    expect(validateBroker(mqttBroker, broker({ url: 'tcp://h' }, { topic: 't', qos: 3, retain: 1, extra: 1 }))).to.include.members([
      'brokers.things.conn.url: must match pattern "^(mqtts?|wss?)://"',
      'brokers.things.params.extra: unknown key',
      'brokers.things.params.qos: must be equal to one of the allowed values',
      'brokers.things.params.retain: must be boolean',
    ]);
    expect(validateBroker(mqttBroker, broker({ url: 'mqtt://h', username: 'u', password: 'p', clientId: 'c' }, { topic: '{{ app }}/x', qos: 2, retain: true, mode: 'structured' }))).to.deep.equal([]);
  });

  it('a literal topic with a wildcard, or a malformed template, is a ConfigError naming the key', () => {
    expect(() => mqttBroker.create(broker({ url: 'mqtt://h' }, { topic: 'a/#' }), config)).to.throw(ConfigError, /brokers\.things\.params\.topic: contains a wildcard/);
    expect(() => mqttBroker.create(broker({ url: 'mqtt://h' }, { topic: '{{ App }}' }), config)).to.throw(ConfigError, /brokers\.things\.params\.topic/);
  });

  it('describe() names the broker, URL without credentials, topic and QoS; close() twice without connecting', async () => {
    const sink = mqttBroker.create(broker({ url: 'mqtt://u:s3cret@127.0.0.1:1883', password: 'other' }, { topic: 'cdc/{{ app }}' }), config);
    expect(sink).to.be.instanceOf(MqttSink);
    expect(sink.describe()).to.equal('mqtt broker things (mqtt://127.0.0.1:1883 topic "cdc/{{ app }}" qos 1)');
    await sink.close();
    await sink.close();
  });
});

describe('mqtt sink: which MQTT 5 reason codes are retried', () => {
  const withCode = (code: number) => Object.assign(new Error(`code ${code}`), { code });
  it('final: not authorized, bad credentials, banned, invalid topic, packet too large, unsupported payload/QoS/retain', () => {
    for (const code of [4, 5, 133, 134, 135, 138, 144, 149, 153, 154, 155]) expect(isRetriableMqttError(withCode(code)), String(code)).to.equal(false);
  });
  it('retriable: unspecified, implementation specific, server unavailable/busy, quota, rate, network errors', () => {
    for (const code of [128, 131, 136, 137, 151, 159]) expect(isRetriableMqttError(withCode(code)), String(code)).to.equal(true);
    expect(isRetriableMqttError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).to.equal(true);
  });
});
