import { expect } from 'chai';
import type { CloudEvent } from 'cloudevents';
import { Writable } from 'node:stream';
import { decodeValue } from '../../../src/pg/values';
import { TypeRegistry } from '../../../src/pg/types-registry';
import { defaultFormat } from '../../../src/events/default';
import { structuredForm, structuredJson } from '../../../src/events/structured';
import { ConsoleSink } from '../../../src/sinks/console';
import { encodeBatch, encodeEvent } from '../../../src/sinks/http/encode';
import { encodeKafkaMessages } from '../../../src/sinks/kafka/encode';
import { encodeMqtt } from '../../../src/sinks/mqtt';
import { encodeNats } from '../../../src/sinks/nats';
import { encodeMessage } from '../../../src/sinks/pubsub';
import { encodeAmqp } from '../../../src/sinks/rabbitmq';
import { insertOf, questionsTable, relation } from '../events/fixtures';

// A json and a jsonb column holding numbers a JavaScript number would round (README, "The event").
const BIG = '12345678901234567890';
const LONG = '0.1000000000000000055511151231257827';
const JSONB_TEXT = `{"d": ${LONG}, "big": ${BIG}, "list": [1, ${BIG}, 1.50]}`; // as PostgreSQL prints jsonb
const JSON_TEXT = `{"big":${BIG},"d":${LONG},"e":1e400,"z":-0}`;

const registry = new TypeRegistry();
const rel = relation('public', 'numbers', [
  { name: 'id', typeOid: 23, typeMod: -1, isKey: true },
  { name: 'jb', typeOid: 3802, typeMod: -1, isKey: false },
  { name: 'j', typeOid: 114, typeMod: -1, isKey: false },
]);
const row = { id: 1, jb: decodeValue(JSONB_TEXT, 3802, registry), j: decodeValue(JSON_TEXT, 114, registry) };
const ctx = { source: '/pg-cloudevents/app', typePrefix: 'orm', overrides: {}, table: questionsTable };
const event = defaultFormat.build(insertOf(rel, row), ctx) as CloudEvent<unknown>;

/** The data as it must arrive: every number with the digits PostgreSQL printed. */
const DATA =
  `{"data":{"id":1,"jb":{"d":${LONG},"big":${BIG},"list":[1,${BIG},1.50]},"j":{"big":${BIG},"d":${LONG},"e":1e400,"z":-0}},` +
  '"signal_kwargs":{"created":true,"update_fields":null,"raw":false,"using":"default"},"db_table":"numbers"}';
/** The structured-mode event: the SDK's JSON format shape with DATA as `data`. */
const STRUCTURED = JSON.stringify({ ...structuredForm(event), data: 'DATA' }).replace('"DATA"', DATA);

const text = (body: unknown) => (typeof body === 'string' ? body : Buffer.from(body as Uint8Array).toString('utf8'));

describe('numbers inside json/jsonb keep their exact digits through every encoder', () => {
  it('the expected texts are what lossy JSON would not give (guards the test itself)', () => {
    expect(DATA).to.not.equal(JSON.stringify(event.data));
    expect(() => JSON.parse(STRUCTURED)).to.not.throw();
  });

  it('structuredJson (Redis, NATS, RabbitMQ, Pub/Sub structured, console)', () => {
    expect(structuredJson(event)).to.equal(STRUCTURED);
  });

  it('HTTP binary body, structured body and batch body', () => {
    const binary = encodeEvent(event, 'binary');
    expect(binary.mode).to.equal('binary');
    expect(binary.body).to.equal(DATA);
    expect(encodeEvent(event, 'structured').body).to.equal(STRUCTURED);
    expect(encodeBatch([event, event]).body).to.equal(`[${STRUCTURED},${STRUCTURED}]`);
  });

  it('Kafka binary value and structured value (same timestamp and content type as the SDK gives)', () => {
    const [binary] = encodeKafkaMessages(event, 'binary', false);
    expect(binary.value).to.equal(DATA);
    const [structured] = encodeKafkaMessages(event, 'structured', false);
    expect(structured.value).to.equal(STRUCTURED);
    expect(structured.headers).to.deep.equal({ 'content-type': 'application/cloudevents+json; charset=utf-8' });
    expect(structured.timestamp).to.equal(String(Date.parse(event.time!)));
    expect(structured.key).to.equal(binary.key);
  });

  it('MQTT, RabbitMQ, Pub/Sub and NATS payloads in both modes', () => {
    expect(text(encodeMqtt(event, 'binary').payload)).to.equal(DATA);
    expect(text(encodeMqtt(event, 'structured').payload)).to.equal(STRUCTURED);
    expect(encodeMqtt(event, 'structured').contentType).to.equal('application/cloudevents+json; charset=utf-8');
    expect(text(encodeAmqp(event, 'binary', true).content)).to.equal(DATA);
    expect(text(encodeAmqp(event, 'structured', true).content)).to.equal(STRUCTURED);
    expect(text(encodeMessage(event, 'binary').data)).to.equal(DATA);
    expect(text(encodeMessage(event, 'structured').data)).to.equal(STRUCTURED);
    expect(text(encodeNats(event, 'binary').data)).to.equal(DATA);
    expect(text(encodeNats(event, 'structured').data)).to.equal(STRUCTURED);
  });

  it('the console sink line', async () => {
    const chunks: string[] = [];
    const out = new Writable({ write: (c, _e, cb) => (chunks.push(String(c)), cb()) });
    await new ConsoleSink(out).send(event);
    expect(chunks.join('')).to.equal(`${STRUCTURED}\n`);
  });
});
