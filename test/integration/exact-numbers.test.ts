import { expect } from 'chai';
import Redis from 'ioredis';
import { readKafkaRecords, startKafkaMock, type KafkaMock } from './harness/kafka-mock';
import { createTestDatabase, waitFor, type TestDatabase } from './harness/postgres';
import { spawnCli, type CliProcess } from './harness/process';
import { startReceiver, type Receiver } from './harness/receiver';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

/**
 * Numbers inside json/jsonb columns arrive with the digits PostgreSQL holds (README, "The event"),
 * byte-compared in the body each sink receives: `run` against a real PostgreSQL, delivering to the
 * real HTTP receiver, Redis, and librdkafka's mock Kafka cluster.
 */
const BIG = '12345678901234567890';
const LONG = '0.1000000000000000055511151231257827';
const VALUE = `{"big":${BIG},"d":${LONG}}`;

const TABLE_SQL = 'CREATE TABLE docs (id int PRIMARY KEY, jb jsonb, j json, ja jsonb[])';
const INSERT_SQL = 'INSERT INTO docs VALUES (1, $1, $2, ARRAY[$3::jsonb])';

/**
 * The event's data as it must arrive. jsonb prints its keys shortest first ("d" before "big");
 * json keeps the inserted text, whose spacing the compact serialisation drops.
 */
const DATA =
  `{"data":{"id":1,"jb":{"d":${LONG},"big":${BIG}},"j":{"big":${BIG},"d":${LONG}},"ja":[[${BIG},${LONG}]]},` +
  '"signal_kwargs":{"created":true,"update_fields":null,"raw":false,"using":"default"},"db_table":"docs"}';

/**
 * The structured-mode text the body must be: its own attributes (strings, which JSON.parse keeps
 * exactly, in their order) with DATA as `data`.
 */
function structuredExpected(body: string): string {
  const attributes = JSON.parse(body) as Record<string, unknown>;
  expect(attributes).to.have.property('data');
  return JSON.stringify({ ...attributes, data: 'DATA' }).replace('"DATA"', DATA);
}

interface Capture {
  db: TestDatabase;
  cli: CliProcess;
}

/** A database of its own with the table, `run` capturing it with `yaml` added; then the row is inserted. */
async function captureAndInsert(name: string, yaml: string, env: Record<string, string>): Promise<Capture> {
  const db = await createTestDatabase(`pgce_exact_${name}`);
  await db.query(TABLE_SQL);
  const config = writeTempFile('config.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: pgce_exact_${name}, publication: pgce_exact_${name}, statusInterval: PT0.2S }
tables: [ docs ]
${yaml}
`);
  const cli = spawnCli(['run'], { DATABASE_URL: db.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(await freePort()), ...env });
  await cli.waitForLine(/capturing/, 30_000);
  await db.query(INSERT_SQL, [VALUE, VALUE, `[${BIG}, ${LONG}]`]);
  return { db, cli };
}

async function stop(capture: Capture | undefined): Promise<void> {
  if (!capture) return;
  capture.cli.kill('SIGTERM');
  const { code } = await capture.cli.exit();
  expect(code, `run exits 0 on SIGTERM; stderr:\n${capture.cli.stderr().slice(-2000)}`).to.equal(0);
  await capture.db.drop();
}

describe('numbers inside json/jsonb keep their exact digits end to end (real PostgreSQL)', function () {
  this.timeout(90_000);
  let capture: Capture | undefined;
  let receiver: Receiver | undefined;
  let mock: KafkaMock | undefined;

  afterEach(async () => {
    await stop(capture);
    capture = undefined;
    await receiver?.close();
    receiver = undefined;
    await mock?.stop();
    mock = undefined;
  });

  for (const mode of ['binary', 'structured'] as const) {
    it(`HTTP ${mode} mode: the raw request body carries the exact digits`, async () => {
      receiver = await startReceiver();
      capture = await captureAndInsert(`http_${mode}`, `sink: { mode: ${mode} }`, { K_SINK: receiver.url });
      await receiver.waitFor(1, 20_000);
      expect(receiver.errors).to.deep.equal([]);
      const [request] = receiver.requests;
      expect(request.mode).to.equal(mode);
      expect(request.body).to.equal(mode === 'binary' ? DATA : structuredExpected(request.body));
    });
  }

  for (const mode of ['binary', 'structured'] as const) {
    it(`Kafka ${mode} mode (librdkafka mock cluster): the record value carries the exact digits`, async () => {
      const topic = `pgce_exact_${mode}_${process.pid}`;
      mock = await startKafkaMock([{ name: topic, partitions: 1 }]);
      capture = await captureAndInsert(`kafka_${mode}`, `brokers:
  k: { type: kafka, conn: { brokers: [ "${mock.brokers[0]}" ] }, params: { topic: ${topic}, mode: ${mode} } }
handler: k`, {});
      const [record] = await readKafkaRecords(mock, topic, 1, 20_000);
      const value = record.value!.toString('utf8');
      expect(value).to.equal(mode === 'binary' ? DATA : structuredExpected(value));
    });
  }

  it('Redis stream: the stored event carries the exact digits', async () => {
    const redis = new Redis('redis://127.0.0.1:6379');
    const stream = `pgce_exact_stream_${process.pid}_${Date.now().toString(36)}`;
    try {
      capture = await captureAndInsert('redis', `brokers:
  r: { type: redis, conn: { url: "redis://127.0.0.1:6379" }, params: { stream: ${stream} } }
handler: r`, {});
      const fields = await waitFor(async () => (await redis.xrange(stream, '-', '+'))[0]?.[1], {
        timeoutMs: 20_000, intervalMs: 50, what: `an entry in ${stream}`,
      });
      const event = fields[fields.indexOf('event') + 1];
      expect(event).to.equal(structuredExpected(event));
    } finally {
      await redis.del(stream);
      redis.disconnect();
    }
  });

  it('tail: the printed event line carries the exact digits', async () => {
    const db = await createTestDatabase('pgce_exact_tail');
    await db.query(TABLE_SQL);
    const config = writeTempFile('config.yaml', 'capture: { slot: pgce_exact_tail, publication: pgce_exact_tail }\ntables: [ docs ]\n');
    const env = { DATABASE_URL: db.url, PG_CLOUDEVENTS_CONFIG: config, LOG_LEVEL: 'warn' };
    const setup = spawnCli(['setup'], env);
    expect((await setup.exit()).code, setup.stderr()).to.equal(0);
    const tail = spawnCli(['tail'], env);
    try {
      await tail.waitForLine(/tailing/, 30_000);
      await db.query(INSERT_SQL, [VALUE, VALUE, `[${BIG}, ${LONG}]`]);
      const line = await tail.waitForLine(/"subject":"DCE:public\.docs\/1"/, 20_000);
      expect(line).to.equal(structuredExpected(line));
    } finally {
      tail.kill('SIGINT');
      await tail.exit();
      await db.drop();
    }
  });
});
