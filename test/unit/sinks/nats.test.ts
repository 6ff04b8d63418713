import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import type { BrokerConfig, Config } from '../../../src/config/types';
import { ConfigError } from '../../../src/errors';
import { validateBroker } from '../../../src/sinks/broker';
import { decodeNats, encodeNats, natsBroker, percentDecode, percentEncode } from '../../../src/sinks/nats';
import { classifyNatsError } from '../../../src/sinks/nats/classify';

const broker = (conn: unknown, params: unknown): BrokerConfig => ({ name: 'bus', type: 'nats', conn, params }) as BrokerConfig;
const config = { sink: { timeoutMs: 1000 } } as unknown as Config;

function headersOf(h: Record<string, string>) {
  return { keys: () => Object.keys(h), get: (k: string) => h[k] ?? '' };
}

const event = () => new CloudEvent<unknown>({
  id: '000000000183A2F8-00000001',
  source: '/pg-cloudevents/app',
  type: 'orm.post_save',
  subject: 'DCE:polls.question/Euro € 😀',
  time: '2024-02-29T11:14:15.500Z',
  datacontenttype: 'application/json',
  app: 'polls',
  partitionkey: 'polls.question/1',
  data: { data: { id: 1, text: 'a "b" 100%' } },
});

describe('sinks/nats configuration', () => {
  it('accepts servers as a string or an array, with user/pass or a token', () => {
    expect(validateBroker(natsBroker, broker({ servers: 'nats://127.0.0.1:4222' }, { subject: 'orders' }))).to.deep.equal([]);
    expect(validateBroker(natsBroker, broker(
      { servers: ['nats://a:4222', 'tls://b:4222'], user: 'u', pass: 'p' },
      { subject: '{{ app }}.{{ model }}', stream: 'ORDERS', streamSubjects: ['polls.>'], mode: 'binary' },
    ))).to.deep.equal([]);
  });

  it('reports every missing, wrongly typed or unknown key at once, by key path', () => {
    const problems = validateBroker(natsBroker, broker(
      { servers: ['nats://a', 'http://b'], user: 'u', token: 5, port: 1 },
      { stream: 'has.dot', mode: 'json', topic: 'x' },
    ));
    expect(problems).to.include.members([
      'brokers.bus.conn.servers[1]: must match pattern "^(nats|tls)://\\S+$"',
      'brokers.bus.conn.token: must be string',
      'brokers.bus.conn.port: unknown key',
      'brokers.bus.conn: must have property pass when property user is present',
      'brokers.bus.params.subject: is required',
      'brokers.bus.params.stream: must match pattern "^[^.*>/\\\\\\s]+$"',
      'brokers.bus.params.mode: must be equal to one of the allowed values',
      'brokers.bus.params.topic: unknown key',
    ]);
    expect(validateBroker(natsBroker, broker({}, { subject: 's' }))).to.deep.equal(['brokers.bus.conn.servers: is required']);
    expect(validateBroker(natsBroker, broker({ servers: [] }, { subject: 's' }))).to.deep.equal(['brokers.bus.conn.servers: must NOT have fewer than 1 items']);
  });

  it('a templated subject with a stream to create needs streamSubjects', () => {
    expect(() => natsBroker.create(broker({ servers: 'nats://127.0.0.1:4222' }, { subject: 'db.{{ model }}', stream: 'DB' }), config))
      .to.throw(ConfigError, /brokers\.bus\.params\.streamSubjects: is required when/);
  });

  it('describe() lists the servers and subject without credentials; close() twice is fine', async () => {
    const sink = natsBroker.create(broker({ servers: ['nats://u:secret@127.0.0.1:4222'] }, { subject: 'orders', stream: 'ORDERS' }), config);
    expect(sink.describe()).to.equal('nats://u:***@127.0.0.1:4222 subject orders (stream ORDERS)');
    await sink.close();
    await sink.close();
  });
});

describe('sinks/nats encoding (CloudEvents NATS binding)', () => {
  it('percent-encodes as the binding\'s example does (§3.1.3.2)', () => {
    expect(percentEncode('Euro € 😀')).to.equal('Euro%20%E2%82%AC%20%F0%9F%98%80');
    expect(percentEncode('a"b%c\r\n')).to.equal('a%22b%25c%0D%0A');
    expect(percentDecode('Euro%20%e2%82%ac%20%F0%9F%98%80')).to.equal('Euro € 😀');
    expect(percentDecode('"quoted \\"value\\""')).to.equal('quoted "value"');
    expect(() => percentDecode('%C0%A0')).to.throw(URIError); // overlong U+0020 must be rejected
  });

  it('structured mode: Content-Type marks it, the payload is the JSON event; it decodes back', () => {
    const msg = encodeNats(event(), 'structured');
    expect(msg.headers).to.deep.equal({ 'Content-Type': 'application/cloudevents+json; charset=utf-8' });
    expect(JSON.parse(Buffer.from(msg.data).toString())).to.deep.include({ id: event().id, app: 'polls' });
    const got = decodeNats({ headers: headersOf(msg.headers), data: msg.data });
    expect(got.toJSON()).to.deep.equal(event().toJSON());
  });

  it('binary mode: every attribute as a ce- header, the data as payload; it decodes back', () => {
    const msg = encodeNats(event(), 'binary');
    expect(msg.headers['ce-subject']).to.equal('DCE:polls.question/Euro%20%E2%82%AC%20%F0%9F%98%80');
    expect(msg.headers).to.include({ 'ce-specversion': '1.0', 'ce-id': event().id, 'ce-datacontenttype': 'application/json', 'ce-partitionkey': 'polls.question/1' });
    expect(msg.headers).not.to.have.any.keys('ce-data', 'Content-Type');
    expect(JSON.parse(Buffer.from(msg.data).toString())).to.deep.equal(event().data);
    const got = decodeNats({ headers: headersOf(msg.headers), data: msg.data });
    expect(got.validate()).to.equal(true);
    expect(got.toJSON()).to.deep.equal(event().toJSON());
  });

  it('a message without headers (NATS < 2.2) is structured', () => {
    const data = Buffer.from(event().toString());
    expect(decodeNats({ data }).id).to.equal(event().id);
  });
});

describe('sinks/nats failure classification', () => {
  const api = (code: number, description: string) => Object.assign(new Error(description), { code: String(code), api_error: { code, err_code: 1, description } });

  it('JetStream API errors follow Knative\'s table by their code', () => {
    expect(classifyNatsError(api(400, 'message size exceeds maximum allowed')).retriable).to.equal(false);
    expect(classifyNatsError(api(503, 'JetStream system temporarily unavailable')).retriable).to.equal(true);
    expect(classifyNatsError(api(429, 'slow down')).retriable).to.equal(true);
  });

  it('no responders and timeouts are retried; permissions and oversized payloads are final', () => {
    expect(classifyNatsError(Object.assign(new Error('503'), { code: '503' }))).to.include({ retriable: true });
    expect(classifyNatsError(Object.assign(new Error('TIMEOUT'), { code: 'TIMEOUT' }))).to.include({ retriable: true });
    expect(classifyNatsError(Object.assign(new Error('x'), { code: 'CONNECTION_REFUSED' }))).to.include({ retriable: true, unreachable: true });
    expect(classifyNatsError(Object.assign(new Error('x'), { code: 'PERMISSIONS_VIOLATION' }))).to.include({ retriable: false });
    expect(classifyNatsError(Object.assign(new Error('x'), { code: 'MAX_PAYLOAD_EXCEEDED' }))).to.include({ retriable: false });
  });
});
