import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { Client } from 'pg';
import type { RelationInfo } from '../../../../src/sources/change';
import { parsePgOutput, type PgOutputMessage, type RelationMessage } from '../../../../src/sources/logical/pgoutput';
import { relationFromMessage, tupleToRow } from '../../../../src/sources/logical/rows';
import { REPLICATION_SESSION_OPTIONS } from '../../../../src/sources/logical/stream';
import { registerFromPgType, TypeRegistry, USER_TYPES_SQL } from '../../../../src/pg/types-registry';
import { createTestDatabase, type TestDatabase } from '../../harness/postgres';

/**
 * The real thing: PostgreSQL 15's pgoutput bytes for inserts, updates (REPLICA IDENTITY DEFAULT and
 * FULL), deletes, truncates, a logical message and an unchanged TOAST value, read with
 * pg_logical_slot_get_binary_changes on a session with the replication stream's GUCs, parsed and
 * decoded value by value.
 */

const DB = 'pgce_a_decode';
const SLOT = 'pgce_a_decode';
const PUBLICATION = 'pgce_a_decode_pub';

const SCHEMA_SQL = [
  `CREATE TYPE mood AS ENUM ('happy', 'sad', 'très bien')`,
  `CREATE DOMAIN posint AS int4 CHECK (VALUE > 0)`,
  `CREATE TABLE all_types (
     id int PRIMARY KEY,
     b bool, i2 int2, i4 int4, i8_small int8, i8_big int8, i8_neg int8,
     f4 float4, f8 float8, f8_nan float8, f8_inf float8, f8_ninf float8,
     num numeric, txt text, vc varchar(20), ch char(5), u uuid, j json, jb jsonb, by bytea,
     d date, t time, ttz timetz, ts timestamp, tstz timestamptz, tstz_inf timestamptz, tstz_bc timestamptz,
     iv interval,
     a_i4 int4[], a_txt text[], a_2d int4[], a_bounds int4[], a_jb jsonb[], a_tstz timestamptz[],
     m mood, a_m mood[], pi posint, a_pi posint[])`,
  `CREATE TABLE full_rows (id int PRIMARY KEY, name text, qty int)`,
  `ALTER TABLE full_rows REPLICA IDENTITY FULL`,
  // EXTERNAL: stored out of line uncompressed, so an UPDATE that leaves it alone sends 'u'.
  `CREATE TABLE toasty (id int PRIMARY KEY, big text, n int)`,
  `ALTER TABLE toasty ALTER COLUMN big SET STORAGE EXTERNAL`,
  `CREATE PUBLICATION ${PUBLICATION} FOR TABLE all_types, full_rows, toasty`,
];

const INSERT_FULL_ROW_SQL = `INSERT INTO all_types VALUES (
  1, true, -32768, 2147483647, 42, 9223372036854775807, -9223372036854775808,
  1.1, 0.30000000000000004, 'NaN', 'Infinity', '-Infinity',
  12345678901234567890.1234567890, $1, 'varchar', 'ab', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
  '{"b": 1,   "a": [1, 2]}', '{"nested": {"k": [true, null, 1.5]}, "s": "ü"}', '\\x00ff10',
  '2020-12-01', '09:43:00.5', '09:43:00+02', '2020-12-01 09:43:00.123456',
  '2020-12-01 11:43:00.123456+02', 'infinity', '0044-03-15 12:00:00+00 BC',
  '1 year 2 months 3 days 04:05:06.5',
  '{1,NULL,3}', $2, '{{1,2},{3,4}}', '[2:3]={7,8}', ARRAY['{"a":1}'::jsonb, '[1,"x"]', NULL],
  ARRAY['2020-12-01 09:43:00.5+00'::timestamptz, 'infinity'],
  'très bien', '{happy,"très bien"}', 7, '{1,2}')`;

const TEXT_WITH_EVERYTHING = 'Grüße, 世界 — "quoted" \\ back\nslash';
const TEXT_ARRAY = ['a,b', 'c"d', null, 'NULL', '', 'back\\slash', 'ü {x}'];

// About 12.8 kB of hex: incompressible enough, and well over the 8 kB asked for.
const BIG_SQL = `SELECT string_agg(md5(i::text), '' ORDER BY i) FROM generate_series(1, 400) i`;
const BIG = Array.from({ length: 400 }, (_, i) => createHash('md5').update(String(i + 1)).digest('hex')).join('');

const WORKLOAD_SQL: Array<[string, unknown[]?]> = [
  [INSERT_FULL_ROW_SQL, [TEXT_WITH_EVERYTHING, TEXT_ARRAY]],
  [`INSERT INTO all_types (id) VALUES (2)`],
  [`UPDATE all_types SET txt = 'changed' WHERE id = 1`],
  [`UPDATE all_types SET id = 3 WHERE id = 2`],
  [`DELETE FROM all_types WHERE id = 3`],
  [`INSERT INTO full_rows VALUES (1, 'a', 1)`],
  [`UPDATE full_rows SET qty = 2 WHERE id = 1`],
  [`DELETE FROM full_rows WHERE id = 1`],
  [`INSERT INTO toasty VALUES (1, (${BIG_SQL}), 1)`],
  [`UPDATE toasty SET n = 2 WHERE id = 1`],
  [`BEGIN`],
  [`SELECT pg_logical_emit_message(true, 'pgce', 'hello')`],
  [`INSERT INTO full_rows VALUES (2, 'in a txn', 5)`],
  [`COMMIT`],
  [`TRUNCATE full_rows, toasty RESTART IDENTITY CASCADE`],
];

const READ_CHANGES_SQL = `SELECT xid::text AS xid, data FROM pg_logical_slot_get_binary_changes($1, NULL, NULL,
  'proto_version', '1', 'publication_names', $2, 'messages', 'true')`;

const ATTRIBUTES_SQL = `SELECT attname, atttypid::int AS typoid, atttypmod AS typmod FROM pg_attribute
  WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`;

const BUILTIN_ARRAYS_SQL = `SELECT a.oid::int AS oid, a.typelem::int AS elem FROM pg_type a JOIN pg_type e ON e.oid = a.typelem
  WHERE a.typcategory = 'A' AND a.typdelim = ',' AND a.oid < 10000 AND e.typtype <> 'c' AND a.typname LIKE '\\_%'`;

interface Txn {
  xid: number;
  begin: Extract<PgOutputMessage, { tag: 'begin' }>;
  commit: Extract<PgOutputMessage, { tag: 'commit' }>;
  body: PgOutputMessage[];
}

describe('capture: pgoutput from a real PostgreSQL, decoded', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let client: Client;
  let failed = false;
  const registry = new TypeRegistry();
  const relations = new Map<number, RelationInfo>();
  const relationMessages: RelationMessage[] = [];
  let txns: Txn[] = [];
  let started: Date;
  let finished: Date;

  /** As the capture does it: resolve OIDs the registry does not know from pg_type, transitively. */
  async function resolveTypes(oids: number[]): Promise<void> {
    let todo = oids.filter((oid) => !registry.has(oid));
    while (todo.length) {
      const { rows } = await client.query(USER_TYPES_SQL, [todo]);
      registerFromPgType(registry, rows);
      todo = rows.flatMap((r) => [Number(r.typelem), Number(r.typbasetype)]).filter((oid) => oid && !registry.has(oid));
    }
  }

  before(async () => {
    db = await createTestDatabase(DB);
    client = new Client({ connectionString: db.url, options: REPLICATION_SESSION_OPTIONS, application_name: 'pgce-test' });
    client.on('error', () => undefined);
    await client.connect();
    for (const sql of SCHEMA_SQL) await client.query(sql);
    await client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [SLOT]);
    started = new Date(Date.now() - 1000);
    for (const [sql, params] of WORKLOAD_SQL) await client.query(sql, params);
    finished = new Date(Date.now() + 1000);

    const { rows } = await client.query(READ_CHANGES_SQL, [SLOT, PUBLICATION]);
    let current: Partial<Txn> | undefined;
    for (const row of rows as Array<{ xid: string; data: Buffer }>) {
      const msg = parsePgOutput(row.data);
      if (msg.tag === 'begin') {
        expect(current, 'nested Begin').to.equal(undefined);
        current = { xid: Number(row.xid), begin: msg, body: [] };
      } else if (msg.tag === 'commit') {
        txns.push({ ...(current as Txn), commit: msg });
        current = undefined;
      } else {
        current!.body!.push(msg);
      }
      if (msg.tag === 'relation') {
        relationMessages.push(msg);
        await resolveTypes(msg.columns.map((c) => c.typeOid));
        relations.set(msg.id, relationFromMessage(msg));
      }
    }
    expect(current, 'unterminated transaction').to.equal(undefined);
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async () => {
    await client?.end().catch(() => undefined);
    if (!failed) await db?.drop(); // a failed run keeps its database for a look (the next run drops it)
  });

  /** Row changes (insert/update/delete) of transaction `i`, decoded. */
  function changesOf(i: number) {
    return txns[i].body
      .filter((m): m is Extract<PgOutputMessage, { tag: 'insert' | 'update' | 'delete' }> =>
        m.tag === 'insert' || m.tag === 'update' || m.tag === 'delete')
      .map((m) => {
        const relation = relations.get(m.relationId)!;
        const decode = (t: Parameters<typeof tupleToRow>[1] | undefined) => (t ? tupleToRow(relation, t, registry) : undefined);
        return {
          tag: m.tag,
          table: relation.table,
          new: 'new' in m ? decode(m.new) : undefined,
          key: decode(m.tag === 'insert' ? undefined : m.key),
          old: decode(m.tag === 'insert' ? undefined : m.old),
        };
      });
  }

  it('frames every transaction with Begin/Commit that agree with each other and the server', () => {
    // One transaction per workload statement, BEGIN…COMMIT counted once.
    expect(txns).to.have.length(12);
    let lastEnd = 0n;
    for (const t of txns) {
      expect(t.begin.finalLsn).to.equal(t.commit.commitLsn);
      expect(t.commit.endLsn > t.commit.commitLsn).to.equal(true);
      expect(t.commit.commitLsn > lastEnd).to.equal(true);
      lastEnd = t.commit.endLsn;
      expect(t.begin.xid).to.equal(t.xid);
      expect(t.begin.commitTimeMicros).to.equal(t.commit.commitTimeMicros);
      expect(t.begin.commitTime.getTime()).to.be.within(started.getTime(), finished.getTime());
      expect(t.commit.commitTime.getTime()).to.equal(t.begin.commitTime.getTime());
    }
  });

  it('announces each relation with the catalog’s columns, types, modifiers and key', async () => {
    const names = relationMessages.map((r) => r.table);
    expect(names).to.include.members(['all_types', 'full_rows', 'toasty']);
    for (const msg of relationMessages) {
      const { rows: [{ oid }] } = await client.query(`SELECT $1::regclass::oid::int AS oid`, [`public.${msg.table}`]);
      expect(msg.id).to.equal(oid);
      expect(msg.schema).to.equal('public');
      const { rows: attrs } = await client.query(ATTRIBUTES_SQL, [`public.${msg.table}`]);
      expect(msg.columns.map((c) => [c.name, c.typeOid, c.typeMod])).to.deep.equal(attrs.map((a) => [a.attname, a.typoid, a.typmod]));
      const relation = relationFromMessage(msg);
      if (msg.table === 'full_rows') {
        expect(msg.replicaIdentity).to.equal('full');
        // With REPLICA IDENTITY FULL pgoutput flags every column as part of the identity.
        expect(relation.keyColumns).to.deep.equal(['id', 'name', 'qty']);
      } else {
        expect(msg.replicaIdentity).to.equal('default');
        expect(relation.keyColumns).to.deep.equal(['id']);
      }
    }
    const vc = relationMessages.find((r) => r.table === 'all_types')!.columns.find((c) => c.name === 'vc')!;
    expect(vc.typeMod).to.equal(20 + 4); // varchar(n) typmod = n + VARHDRSZ
  });

  it('sends Type messages for the user types', () => {
    const types = txns[0].body.filter((m) => m.tag === 'type').map((m) => m.tag === 'type' && `${m.schema}.${m.name}`);
    expect(types).to.include.members(['public.mood', 'public._mood', 'public._posint']);
    // A domain's Type message names its base type; pg_catalog comes as an empty namespace.
    expect(types).to.include('pg_catalog.int4');
  });

  it('decodes every common column type to its JSON-natural value', () => {
    const [insert] = changesOf(0);
    expect(insert.tag).to.equal('insert');
    expect(insert.new!.missingColumns).to.deep.equal([]);
    const row = insert.new!.row;
    const expected: Record<string, unknown> = {
      id: 1,
      b: true,
      i2: -32768,
      i4: 2147483647,
      i8_small: 42,
      i8_big: '9223372036854775807',
      i8_neg: '-9223372036854775808',
      f4: 1.1,
      f8: 0.1 + 0.2,
      f8_nan: 'NaN',
      f8_inf: 'Infinity',
      f8_ninf: '-Infinity',
      num: '12345678901234567890.1234567890',
      txt: TEXT_WITH_EVERYTHING,
      vc: 'varchar',
      ch: 'ab   ',
      u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      j: { b: 1, a: [1, 2] },
      jb: { nested: { k: [true, null, 1.5] }, s: 'ü' },
      by: Buffer.from([0x00, 0xff, 0x10]).toString('base64'),
      d: '2020-12-01',
      t: '09:43:00.5',
      ttz: '09:43:00+02:00',
      ts: '2020-12-01T09:43:00.123456',
      tstz: '2020-12-01T09:43:00.123456Z',
      tstz_inf: 'infinity',
      tstz_bc: '0044-03-15 12:00:00+00 BC',
      iv: 'P1Y2M3DT4H5M6.5S',
      a_i4: [1, null, 3],
      a_txt: TEXT_ARRAY,
      a_2d: [[1, 2], [3, 4]],
      a_bounds: [7, 8],
      a_jb: [{ a: 1 }, [1, 'x'], null],
      a_tstz: ['2020-12-01T09:43:00.5Z', 'infinity'],
      m: 'très bien',
      a_m: ['happy', 'très bien'],
      pi: 7,
      a_pi: [1, 2],
    };
    expect(Object.keys(row)).to.deep.equal(Object.keys(expected));
    for (const [column, value] of Object.entries(expected)) {
      expect(row[column], column).to.deep.equal(value);
    }
    // The timestamptz is the same instant JavaScript reads from the literal inserted.
    expect(Date.parse(row.tstz as string)).to.equal(Date.parse('2020-12-01T11:43:00.123+02:00'));
  });

  it('decodes an all-NULL row as nulls, not as missing columns', () => {
    const [insert] = changesOf(1);
    const { row, missingColumns } = insert.new!;
    expect(missingColumns).to.deep.equal([]);
    expect(row.id).to.equal(2);
    const others = Object.entries(row).filter(([k]) => k !== 'id');
    expect(others).to.have.length(relations.get([...relations.values()].find((r) => r.table === 'all_types')!.id)!.columns.length - 1);
    for (const [column, value] of others) expect(value, column).to.equal(null);
  });

  it('REPLICA IDENTITY DEFAULT: an update keeping the key sends no old row; changing it sends the key', () => {
    const [plain] = changesOf(2);
    expect(plain.tag).to.equal('update');
    expect(plain.key).to.equal(undefined);
    expect(plain.old).to.equal(undefined);
    expect(plain.new!.row).to.include({ id: 1, txt: 'changed', i8_small: 42 });

    const [rekeyed] = changesOf(3);
    expect(rekeyed.tag).to.equal('update');
    expect(rekeyed.old).to.equal(undefined);
    expect(rekeyed.key!.row.id).to.equal(2);
    // A key tuple carries the other columns as nulls.
    expect(Object.entries(rekeyed.key!.row).filter(([k, v]) => k !== 'id' && v !== null)).to.deep.equal([]);
    expect(rekeyed.new!.row.id).to.equal(3);

    const [deleted] = changesOf(4);
    expect(deleted.tag).to.equal('delete');
    expect(deleted.old).to.equal(undefined);
    expect(deleted.key!.row.id).to.equal(3);
  });

  it('REPLICA IDENTITY FULL: updates and deletes carry the whole old row', () => {
    expect(changesOf(5)).to.deep.equal([
      { tag: 'insert', table: 'full_rows', new: { row: { id: 1, name: 'a', qty: 1 }, missingColumns: [] }, key: undefined, old: undefined },
    ]);
    const [update] = changesOf(6);
    expect(update.old).to.deep.equal({ row: { id: 1, name: 'a', qty: 1 }, missingColumns: [] });
    expect(update.key).to.equal(undefined);
    expect(update.new).to.deep.equal({ row: { id: 1, name: 'a', qty: 2 }, missingColumns: [] });
    const [del] = changesOf(7);
    expect(del.tag).to.equal('delete');
    expect(del.old).to.deep.equal({ row: { id: 1, name: 'a', qty: 2 }, missingColumns: [] });
  });

  it('an UPDATE leaving a TOASTed value alone sends it as unchanged: omitted and listed as missing', () => {
    const [insert] = changesOf(8);
    expect(insert.new!.row.big).to.equal(BIG);
    expect(BIG.length).to.be.greaterThan(8 * 1024);
    const [update] = changesOf(9);
    expect(update.new).to.deep.equal({ row: { id: 1, n: 2 }, missingColumns: ['big'] });
  });

  it('passes a transactional logical message inside its transaction, in order', () => {
    const body = txns[10].body.filter((m) => m.tag === 'message' || m.tag === 'insert');
    expect(body.map((m) => m.tag)).to.deep.equal(['message', 'insert']);
    const msg = body[0] as Extract<PgOutputMessage, { tag: 'message' }>;
    expect(msg).to.include({ transactional: true, prefix: 'pgce' });
    expect(msg.content.toString()).to.equal('hello');
    expect(msg.lsn > 0n && msg.lsn < txns[10].commit.commitLsn).to.equal(true);
  });

  it('decodes TRUNCATE with its relations and options', () => {
    const [truncate] = txns[11].body.filter((m) => m.tag === 'truncate');
    if (truncate?.tag !== 'truncate') throw new Error('no Truncate message');
    expect(truncate.relationIds.map((id) => relations.get(id)!.table).sort()).to.deep.equal(['full_rows', 'toasty']);
    expect(truncate).to.include({ cascade: true, restartIdentity: true });
  });

  it('the registry maps every built-in array type the server has to its element type', async () => {
    const { rows } = await client.query(BUILTIN_ARRAYS_SQL);
    expect(rows.length).to.be.greaterThan(60);
    const missing = rows.filter((r) => registry.elementOf(r.oid) !== r.elem).map((r) => r.oid);
    expect(missing).to.deep.equal([]);
  });
});
