import { expect } from 'chai';
import type { CloudEvent } from 'cloudevents';
import { createTestDatabase, waitFor } from './harness/postgres';
import { spawnCli } from './harness/process';
import { startReceiver } from './harness/receiver';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

type Db = Awaited<ReturnType<typeof createTestDatabase>>;
type Receiver = Awaited<ReturnType<typeof startReceiver>>;
type Cli = ReturnType<typeof spawnCli>;
type Data = { data: Record<string, unknown> | null; signal_kwargs: Record<string, unknown>; db_table: string; old?: Record<string, unknown> };

const SCHEMA = `
CREATE TABLE polls_question (id serial PRIMARY KEY, question_text text NOT NULL, pub_date timestamptz);
CREATE TABLE full_row (id int PRIMARY KEY, name text, qty int);
ALTER TABLE full_row REPLICA IDENTITY FULL;
CREATE TABLE shop.line (sku text, order_id int, qty int, PRIMARY KEY (order_id, sku));
ALTER TABLE shop.line REPLICA IDENTITY FULL;
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE every_type (
  id int PRIMARY KEY, b bool, i2 int2, i8_small int8, i8_big int8, f4 float4, f8 float8, n numeric(12,4),
  t text, vc varchar(10), u uuid, j json, jb jsonb, by bytea, d date, ts timestamp, tstz timestamptz,
  iv interval, ia int[], ta text[], m mood, nul text);
`;

describe('run: PostgreSQL logical replication → CloudEvents → K_SINK (real PostgreSQL, real receiver)', function () {
  this.timeout(120_000);
  let db: Db;
  let receiver: Receiver;
  let cli: Cli;
  let port: number;

  const eventsFor = (subjectPrefix: string) =>
    receiver.accepted.filter((e: CloudEvent<unknown>) => String(e.subject).startsWith(subjectPrefix));
  const next = async (subjectPrefix: string, count = 1) => {
    await waitFor(async () => eventsFor(subjectPrefix).length >= count, {
      timeoutMs: 20_000, intervalMs: 50, what: `${count} event(s) with subject ${subjectPrefix}`,
    });
    return eventsFor(subjectPrefix)[count - 1] as CloudEvent<Data>;
  };

  before(async () => {
    db = await createTestDatabase('pgce_e2e');
    await db.query('CREATE SCHEMA shop');
    await db.query(SCHEMA);
    receiver = await startReceiver();
    const config = writeTempFile('config.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: pgce_e2e, publication: pgce_e2e, statusInterval: PT1S, reconnectDelay: PT0.2S, reconnectMax: PT1S }
tables:
  - { table: public.polls_question, app: polls, model: question }
  - table: public.full_row
  - table: shop.line
  - table: every_type
`);
    cli = spawnCli(['run'], {
      DATABASE_URL: db.url,
      K_SINK: receiver.url,
      PG_CLOUDEVENTS_CONFIG: config,
      K_CE_OVERRIDES: '{"extensions":{"team":"data","tier":2}}',
      PORT: String((port = await freePort())),
    });
    await cli.waitForLine(/capturing/, 30_000);
  });

  after(async () => {
    if (process.env.PGCE_TEST_DUMP) require('node:fs').writeFileSync(process.env.PGCE_TEST_DUMP, cli?.stderr() ?? '');
    if (cli) {
      cli.kill('SIGTERM');
      const { code } = await cli.exit();
      expect(code, `run exits 0 on SIGTERM; stderr:\n${cli.stderr().slice(-2000)}`).to.equal(0);
    }
    await receiver?.close();
    await db?.drop();
  });

  afterEach(() => {
    expect(receiver.errors ?? [], 'every request parsed as a valid CloudEvent').to.deep.equal([]);
  });

  it('an insert becomes orm.post_save with the exact attributes and data', async () => {
    const before = Date.now();
    const { rows } = await db.query(
      `INSERT INTO polls_question (question_text, pub_date) VALUES ('How are you?', '2020-12-01T09:43:00Z') RETURNING id`);
    const after = Date.now();
    const id = rows[0].id;
    const e = await next(`DCE:polls.question/${id}`);
    expect(e.specversion).to.equal('1.0');
    expect(e.id).to.match(/^[0-9A-F]{16}-\d{8}$/);
    expect(e.source).to.equal('/pg-cloudevents/pgce_e2e');
    expect(e.type).to.equal('orm.post_save');
    expect(e.datacontenttype).to.equal('application/json');
    const time = Date.parse(String(e.time));
    expect(time).to.be.within(before - 1000, after + 1000);
    expect(String(e.time)).to.match(/Z$/);
    expect(e.app).to.equal('polls');
    expect(e.model).to.equal('question');
    expect(e.sequence).to.equal(e.id);
    expect(e.partitionkey).to.equal(`polls.question/${id}`);
    expect(e.team).to.equal('data');
    expect(Number(e.tier)).to.equal(2);
    expect(e.data).to.deep.equal({
      data: { id, question_text: 'How are you?', pub_date: '2020-12-01T09:43:00Z' },
      signal_kwargs: { created: true, update_fields: null, raw: false, using: 'default' },
      db_table: 'polls_question',
    });
    const request = receiver.requests.find((r: { headers: Record<string, string> }) => r.headers['ce-id'] === e.id);
    expect(request?.mode, 'plain ASCII attributes go in binary mode').to.equal('binary');
  });

  it('an update without REPLICA IDENTITY FULL has created=false, update_fields=null and no old row', async () => {
    const { rows } = await db.query(`INSERT INTO polls_question (question_text) VALUES ('a') RETURNING id`);
    await db.query(`UPDATE polls_question SET question_text = 'b' WHERE id = $1`, [rows[0].id]);
    const e = await next(`DCE:polls.question/${rows[0].id}`, 2);
    expect(e.type).to.equal('orm.post_save');
    expect(e.data!.data).to.deep.equal({ id: rows[0].id, question_text: 'b', pub_date: null });
    expect(e.data!.signal_kwargs).to.deep.equal({ created: false, update_fields: null, raw: false, using: 'default' });
    expect(e.data).to.not.have.property('old');
  });

  it('an update with REPLICA IDENTITY FULL carries the old row and the changed columns', async () => {
    await db.query(`INSERT INTO full_row VALUES (7, 'pen', 1)`);
    await db.query(`UPDATE full_row SET qty = 5 WHERE id = 7`);
    const e = await next('DCE:public.full_row/7', 2);
    expect(e.data).to.deep.equal({
      data: { id: 7, name: 'pen', qty: 5 },
      signal_kwargs: { created: false, update_fields: ['qty'], raw: false, using: 'default' },
      db_table: 'full_row',
      old: { id: 7, name: 'pen', qty: 1 },
    });
  });

  it('a delete becomes orm.post_delete whose data is the old row (key columns without FULL)', async () => {
    const { rows } = await db.query(`INSERT INTO polls_question (question_text) VALUES ('bye') RETURNING id`);
    await db.query(`DELETE FROM polls_question WHERE id = $1`, [rows[0].id]);
    const e = await next(`DCE:polls.question/${rows[0].id}`, 2);
    expect(e.type).to.equal('orm.post_delete');
    expect(e.data).to.deep.equal({ data: { id: rows[0].id }, signal_kwargs: { using: 'default' }, db_table: 'polls_question' });

    await db.query(`DELETE FROM full_row WHERE id = 7`);
    const full = await next('DCE:public.full_row/7', 3);
    expect(full.type).to.equal('orm.post_delete');
    expect(full.data!.data).to.deep.equal({ id: 7, name: 'pen', qty: 5 });
  });

  it('a composite key joins its values with "," in key order (not column order, even with REPLICA IDENTITY FULL)', async () => {
    await db.query(`INSERT INTO shop.line (order_id, sku, qty) VALUES (42, 'A-1', 3)`);
    const e = await next('DCE:shop.line/');
    expect(e.subject).to.equal('DCE:shop.line/42,A-1');
    expect(e.partitionkey).to.equal('shop.line/42,A-1');
    expect(e.app).to.equal('shop');
    expect(e.model).to.equal('line');
  });

  it('every common column type keeps its JSON-natural type', async () => {
    await db.query(`INSERT INTO every_type VALUES (1, true, 12, 42, 9007199254740993, 1.5, 2.25, 12.3400,
      'héllo', 'abc', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a":[1,2]}', '{"b": {"c": null}}', '\\xdeadbeef',
      '2024-02-29', '2024-02-29 13:14:15.123456', '2024-02-29 13:14:15.5+02', '1 day 2 hours', '{1,2,NULL}',
      '{"x,y","q\\"uote"}', 'happy', NULL)`);
    const e = await next('DCE:public.every_type/1');
    expect(e.data!.data).to.deep.equal({
      id: 1, b: true, i2: 12, i8_small: 42, i8_big: '9007199254740993', f4: 1.5, f8: 2.25, n: '12.3400',
      t: 'héllo', vc: 'abc', u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', j: { a: [1, 2] }, jb: { b: { c: null } },
      by: Buffer.from('deadbeef', 'hex').toString('base64'), d: '2024-02-29', ts: '2024-02-29T13:14:15.123456',
      tstz: '2024-02-29T11:14:15.5Z', iv: 'P1DT2H', ia: [1, 2, null], ta: ['x,y', 'q"uote'], m: 'happy', nul: null,
    });
  });

  it('a non-ASCII attribute value is sent in structured mode', async () => {
    const { rows } = await db.query(`INSERT INTO shop.line (order_id, sku, qty) VALUES (1, 'größe', 1) RETURNING order_id`);
    expect(rows).to.have.length(1);
    const e = await next('DCE:shop.line/1,größe');
    const request = receiver.requests.find((r: { body: unknown; mode: string }) =>
      r.mode === 'structured' && JSON.stringify(r.body).includes(e.id));
    expect(request, 'a structured-mode request carried the event').to.not.equal(undefined);
    expect(e.data!.data).to.deep.equal({ order_id: 1, sku: 'größe', qty: 1 });
  });

  it('a truncate becomes one orm.post_truncate per table', async () => {
    await db.query(`INSERT INTO full_row VALUES (8, 'x', 1)`);
    await db.query(`TRUNCATE full_row`);
    await waitFor(async () => receiver.accepted.some((e: CloudEvent<unknown>) => e.type === 'orm.post_truncate'), {
      timeoutMs: 20_000, intervalMs: 50, what: 'a truncate event',
    });
    const e = receiver.accepted.find((x: CloudEvent<unknown>) => x.type === 'orm.post_truncate') as CloudEvent<Data>;
    expect(e.subject).to.equal('DCE:public.full_row');
    expect(e.partitionkey).to.equal('public.full_row');
    expect(e.data!.db_table).to.equal('full_row');
  });

  it('acknowledges delivered changes: the slot catches up with the WAL', async () => {
    await db.query(`INSERT INTO full_row VALUES (9, 'ack', 1)`);
    const { rows } = await db.query('SELECT pg_current_wal_lsn()::text AS lsn');
    await next('DCE:public.full_row/9');
    await waitFor(async () => {
      const r = await db.query(`SELECT confirmed_flush_lsn >= $1::pg_lsn AS done FROM pg_replication_slots WHERE slot_name = 'pgce_e2e'`, [rows[0].lsn]);
      return r.rows[0]?.done === true;
    }, { timeoutMs: 15_000, intervalMs: 100, what: 'confirmed_flush_lsn to pass the delivered commit' });
  });

  it('/status reports the server WAL end after a burst (reports are throttled, the latest one always goes out)', async () => {
    await db.query(`DO $$ BEGIN FOR i IN 1000..1999 LOOP INSERT INTO full_row VALUES (i, 'burst', i); COMMIT; END LOOP; END $$`);
    const last = await next('DCE:public.full_row/1999');
    // The id starts with the commit LSN (16 hex digits): the server's WAL end was at least there.
    const commitLsn = BigInt(`0x${last.id.slice(0, 16)}`);
    const lsnText = `${(commitLsn >> 32n).toString(16)}/${(commitLsn & 0xffffffffn).toString(16)}`;
    await waitFor(async () => {
      const status = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as { capture: { lastWalEnd: string | null } };
      if (!status.capture.lastWalEnd) return false;
      const r = await db.query('SELECT $1::pg_lsn >= $2::pg_lsn AS caught_up', [status.capture.lastWalEnd, lsnText]);
      return r.rows[0].caught_up === true;
    }, { timeoutMs: 10_000, intervalMs: 100, what: '/status capture.lastWalEnd to reach the last commit of the burst' });
  });
});
