import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { Client } from 'pg';
import { PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { parsePgOutput, type PgOutputMessage, type RelationMessage, type TupleData } from '../../../../src/sources/logical/pgoutput';
import { REPLICATION_SESSION_OPTIONS } from '../../../../src/sources/logical/stream';
import { createTestDatabase, type TestDatabase } from '../../harness/postgres';
import { tuple, w } from '../../../unit/sources/logical/pgoutput-writer';

/**
 * Our pgoutput decoder (src/sources/logical/pgoutput.ts) against pg-logical-replication 2.5's
 * parser (the devDependency, through its public PgoutputPlugin#parse) on the same real bytes:
 * PostgreSQL 15's pgoutput messages for a varied workload, read with
 * pg_logical_slot_peek_binary_changes (one bytea per message, exactly the XLogData payload the
 * stream hands to the decoder). Every message goes to both; both results are mapped to one neutral
 * shape (`Neutral` below) and compared field by field. docs/replication.md says why the product
 * keeps its own decoder.
 *
 * Normalisation (the two name and type things differently; each mapping is explicit below):
 * - LSNs: theirs 'XXXXXXXX/XXXXXXXX' strings (null for 0), ours bigint → bigint.
 * - Times: theirs bigint µs since the Unix epoch, ours µs since 2000-01-01 (commitTimeMicros) →
 *   µs since the Unix epoch.
 * - Names: begin commitLsn/finalLsn, commit commitEndLsn/endLsn, relation relationOid/id and
 *   name/table, type typeOid/id, typeSchema/schema, typeName/name, message messageLsn/lsn,
 *   truncate relations (cached Relation objects)/relationIds.
 * - Tuples: theirs an object by column name, ours an array in column order; ours is keyed by the
 *   column names of the last Relation message for that id (the decoder is stateless, the library
 *   keeps a relation cache).
 * - Values: the library runs pg's type parsers on text values (numbers, Dates, …); that is type
 *   conversion, not protocol decoding, so each Relation's column parsers are replaced with the
 *   identity after parsing, and text is compared as text, byte for byte.
 *
 * Known, justified divergences (asserted, not hidden):
 * - Unchanged TOAST ('u'): ours keeps the marker ({ kind: 'u' }); the library substitutes the old
 *   tuple's value when an 'O' tuple came with the update (REPLICA IDENTITY FULL), else undefined.
 *   Checked as such: with an old tuple theirs must equal the old value, without one undefined.
 *   Ours keeps the marker because the event must say the value was not sent (rows.ts decides).
 * - Key tuple ('K'): PostgreSQL sends every column, non-key ones as NULL; ours keeps them as 'n',
 *   the library keeps only the key columns. Checked: the non-key columns of ours are all 'n'.
 * - OIDs and xids: the library reads them as signed 32-bit (BinaryReader#readInt32), ours
 *   unsigned. Real values here are far below 2^31; the synthetic case at the end shows the
 *   difference at 2^31 (a bug in the library, not exercised by this server's OIDs).
 * - An empty namespace in Relation/Type messages: PostgreSQL writes pg_catalog as '' to save
 *   bytes; ours says 'pg_catalog', the library ''. Real bytes carry it: a domain's Type message
 *   names its base type (posint → int4, in pg_catalog). Mapped: theirs '' → 'pg_catalog'.
 */

const SUFFIX = randomBytes(4).toString('hex');
const DB = `pgce_h11pins_diff_${SUFFIX}`;
const SLOT = `pgce_h11pins_diff_${SUFFIX}`;
const PUBLICATION = `pgce_h11pins_diff_${SUFFIX}`;

const BIG = `(SELECT string_agg(md5(i::text), '' ORDER BY i) FROM generate_series(1, 400) i)`;

const SCHEMA_SQL = [
  `CREATE TYPE mood AS ENUM ('happy', 'sad', 'très bien')`,
  `CREATE DOMAIN posint AS int4 CHECK (VALUE > 0)`,
  `CREATE TABLE plain (
     id int PRIMARY KEY,
     b bool, i2 int2, i8 int8, f4 float4, f8 float8, num numeric(30,10), txt text, vc varchar(20), ch char(5),
     u uuid, j json, jb jsonb, by bytea, d date, t time, ttz timetz, ts timestamp(3), tstz timestamptz,
     iv interval, ip inet, a_i4 int4[], a_txt text[], m mood, a_m mood[], pi posint, big text)`,
  // EXTERNAL: stored out of line uncompressed, so an UPDATE that leaves it alone sends 'u'.
  `ALTER TABLE plain ALTER COLUMN big SET STORAGE EXTERNAL`,
  `CREATE TABLE full_rows (id int PRIMARY KEY, name text, qty int, big text)`,
  `ALTER TABLE full_rows REPLICA IDENTITY FULL`,
  `ALTER TABLE full_rows ALTER COLUMN big SET STORAGE EXTERNAL`,
  `CREATE TABLE pairs (a int, b text, note text, PRIMARY KEY (a, b))`,
  `CREATE PUBLICATION "${PUBLICATION}" FOR TABLE plain, full_rows, pairs`,
];

const WORKLOAD_SQL: Array<[string, unknown[]?]> = [
  [`INSERT INTO plain VALUES (1, true, -32768, 9223372036854775807, 1.5, 0.30000000000000004, 12345678901234567890.0123456789,
     $1, 'varchar', 'ab', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b": 1,   "a": [1, 2]}', '{"s": "ü", "n": null}', '\\x00ff10',
     '2020-12-01', '09:43:00.5', '09:43:00+02', '2020-12-01 09:43:00.123', '2020-12-01 11:43:00.123456+02',
     '1 year 2 months 3 days 04:05:06.5', '192.168.0.1/24', '{1,NULL,3}', $2, 'très bien', '{happy,"très bien"}', 7, ${BIG})`,
    ['Grüße, 世界 — "quoted" \\ back\nslash', ['a,b', 'c"d', null, 'NULL', '']]],
  [`INSERT INTO plain (id) VALUES (2)`], // NULLs everywhere but the key
  [`UPDATE plain SET txt = 'changed', f4 = NULL WHERE id = 1`], // big unchanged: 'u', no old tuple
  [`UPDATE plain SET id = 3 WHERE id = 2`], // key changed: 'K'
  [`DELETE FROM plain WHERE id = 3`], // 'K'
  [`INSERT INTO full_rows VALUES (1, 'a', 1, ${BIG})`],
  [`UPDATE full_rows SET qty = 2 WHERE id = 1`], // 'O' and 'N', big unchanged in the new tuple
  [`UPDATE full_rows SET name = NULL, big = 'short now' WHERE id = 1`],
  [`DELETE FROM full_rows WHERE id = 1`], // 'O'
  [`INSERT INTO pairs VALUES (1, 'x', 'n')`],
  // Several relations and a logical message in one transaction.
  [`BEGIN`],
  [`INSERT INTO full_rows VALUES (2, 'in a txn', 5, NULL)`],
  [`UPDATE pairs SET b = 'y' WHERE a = 1`], // composite key changed: 'K' with two key columns
  [`SELECT pg_logical_emit_message(true, 'pgce-diff', 'transactional ü')`],
  [`INSERT INTO plain (id, txt) VALUES (10, 'ten')`],
  [`DELETE FROM pairs`],
  [`COMMIT`],
  [`SELECT pg_logical_emit_message(false, 'pgce-diff', '\\x00ff'::bytea)`], // outside any transaction
  // The relation changes mid-stream: a new Relation message for the same id, then rows of the new shape.
  [`ALTER TABLE plain ADD COLUMN extra text, DROP COLUMN ch`],
  [`INSERT INTO plain (id, extra) VALUES (20, 'added')`],
  [`UPDATE plain SET extra = 'again' WHERE id = 20`],
  [`TRUNCATE full_rows`],
  [`TRUNCATE plain, pairs RESTART IDENTITY CASCADE`],
];

const PEEK_SQL = `SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL,
  'proto_version', '1', 'publication_names', $2, 'messages', 'true')`;

const PG_EPOCH_MICROS = 946_684_800_000_000n;

/** An unchanged TOAST value in the neutral shape (ours without an old tuple to take it from). */
const UNCHANGED = undefined;

type Value = string | Buffer | null | undefined;
type Row = Record<string, Value>;

/** The one shape both parsers' results are mapped to. */
type Neutral =
  | { tag: 'begin'; finalLsn: bigint; commitTimeUnixMicros: bigint; xid: number }
  | { tag: 'commit'; flags: number; commitLsn: bigint; endLsn: bigint; commitTimeUnixMicros: bigint }
  | { tag: 'origin'; originLsn: bigint; name: string }
  | {
      tag: 'relation'; id: number; schema: string; table: string; replicaIdentity: string;
      columns: { name: string; flags: number; typeOid: number; typeMod: number }[]; keyColumns: string[];
    }
  | { tag: 'type'; id: number; schema: string; name: string }
  | { tag: 'insert'; relationId: number; new: Row }
  | { tag: 'update'; relationId: number; key: Row | null; old: Row | null; new: Row }
  | { tag: 'delete'; relationId: number; key: Row | null; old: Row | null }
  | { tag: 'truncate'; relationIds: number[]; cascade: boolean; restartIdentity: boolean }
  | { tag: 'message'; flags: number; transactional: boolean; lsn: bigint; prefix: string; content: Buffer };

function lsnOf(text: string | null): bigint {
  if (text === null) return 0n;
  const [hi, lo] = text.split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

/** PostgreSQL writes the pg_catalog namespace as '' (divergence 4). */
const namespaceOf = (schema: string): string => schema || 'pg_catalog';

/** The library's tuple: text as text (identity parsers), bytes as a Buffer copy. */
function theirRow(row: Record<string, unknown> | null): Row | null {
  if (row === null) return null;
  const out: Row = {};
  for (const [name, value] of Object.entries(row)) out[name] = value instanceof Uint8Array ? Buffer.from(value) : (value as Value);
  return out;
}

function theirs(msg: Pgoutput.Message): Neutral {
  switch (msg.tag) {
    case 'begin':
      return { tag: 'begin', finalLsn: lsnOf(msg.commitLsn), commitTimeUnixMicros: msg.commitTime as bigint, xid: msg.xid };
    case 'commit':
      return { tag: 'commit', flags: msg.flags, commitLsn: lsnOf(msg.commitLsn), endLsn: lsnOf(msg.commitEndLsn), commitTimeUnixMicros: msg.commitTime as bigint };
    case 'origin':
      return { tag: 'origin', originLsn: lsnOf(msg.originLsn), name: msg.originName };
    case 'relation':
      return {
        tag: 'relation', id: msg.relationOid, schema: namespaceOf(msg.schema), table: msg.name, replicaIdentity: msg.replicaIdentity,
        columns: msg.columns.map((c) => ({ name: c.name, flags: c.flags, typeOid: c.typeOid, typeMod: c.typeMod })),
        keyColumns: msg.keyColumns,
      };
    case 'type':
      return { tag: 'type', id: msg.typeOid, schema: namespaceOf(msg.typeSchema), name: msg.typeName };
    case 'insert':
      return { tag: 'insert', relationId: msg.relation.relationOid, new: theirRow(msg.new)! };
    case 'update':
      return { tag: 'update', relationId: msg.relation.relationOid, key: theirRow(msg.key), old: theirRow(msg.old), new: theirRow(msg.new)! };
    case 'delete':
      return { tag: 'delete', relationId: msg.relation.relationOid, key: theirRow(msg.key), old: theirRow(msg.old) };
    case 'truncate':
      return { tag: 'truncate', relationIds: msg.relations.map((r) => r.relationOid), cascade: msg.cascade, restartIdentity: msg.restartIdentity };
    case 'message':
      return { tag: 'message', flags: msg.flags, transactional: msg.transactional, lsn: lsnOf(msg.messageLsn), prefix: msg.prefix, content: Buffer.from(msg.content) };
  }
}

/** Our decoder's results, mapped with the relations it announced (`relations`, by id). */
class Ours {
  readonly relations = new Map<number, RelationMessage>();
  /** What the test saw, so it can insist the workload covered every case. */
  readonly seen = new Set<string>();

  map(msg: PgOutputMessage): Neutral {
    this.seen.add(msg.tag);
    switch (msg.tag) {
      case 'begin':
        return { tag: 'begin', finalLsn: msg.finalLsn, commitTimeUnixMicros: msg.commitTimeMicros + PG_EPOCH_MICROS, xid: msg.xid };
      case 'commit':
        return { tag: 'commit', flags: msg.flags, commitLsn: msg.commitLsn, endLsn: msg.endLsn, commitTimeUnixMicros: msg.commitTimeMicros + PG_EPOCH_MICROS };
      case 'origin':
        return { tag: 'origin', originLsn: msg.originLsn, name: msg.name };
      case 'relation': {
        if (this.relations.has(msg.id)) this.seen.add('relation changed');
        this.relations.set(msg.id, msg);
        for (const c of msg.columns) expect(c.isKey, `${msg.table}.${c.name}: isKey is flag bit 1`).to.equal((c.flags & 1) === 1);
        return {
          tag: 'relation', id: msg.id, schema: msg.schema, table: msg.table, replicaIdentity: msg.replicaIdentity,
          columns: msg.columns.map((c) => ({ name: c.name, flags: c.flags, typeOid: c.typeOid, typeMod: c.typeMod })),
          keyColumns: msg.columns.filter((c) => c.isKey).map((c) => c.name),
        };
      }
      case 'type':
        if (msg.schema === 'pg_catalog') this.seen.add('type in pg_catalog');
        return { tag: 'type', id: msg.id, schema: msg.schema, name: msg.name };
      case 'insert':
        return { tag: 'insert', relationId: msg.relationId, new: this.row(msg.relationId, msg.new)! };
      case 'update': {
        const old = this.row(msg.relationId, msg.old);
        const key = this.keyRow(msg.relationId, msg.key);
        this.seen.add(msg.key ? 'update K' : msg.old ? 'update O' : 'update N');
        return { tag: 'update', relationId: msg.relationId, key, old, new: this.row(msg.relationId, msg.new, old)! };
      }
      case 'delete':
        this.seen.add(msg.key ? 'delete K' : 'delete O');
        return { tag: 'delete', relationId: msg.relationId, key: this.keyRow(msg.relationId, msg.key), old: this.row(msg.relationId, msg.old) };
      case 'truncate':
        if (msg.relationIds.length > 1) this.seen.add('truncate several');
        return { tag: 'truncate', relationIds: msg.relationIds, cascade: msg.cascade, restartIdentity: msg.restartIdentity };
      case 'message':
        this.seen.add(msg.transactional ? 'message transactional' : 'message not transactional');
        return { tag: 'message', flags: msg.flags, transactional: msg.transactional, lsn: msg.lsn, prefix: msg.prefix, content: msg.content };
    }
  }

  /** A tuple by column name; an unchanged value is the old tuple's when there is one (divergence 1). */
  private row(relationId: number, data: TupleData | undefined, old?: Row | null): Row | null {
    if (!data) return null;
    const relation = this.relations.get(relationId);
    expect(relation, `relation ${relationId} announced before its rows`).to.not.equal(undefined);
    expect(data.length, `${relation!.table}: one value per column`).to.equal(relation!.columns.length);
    const out: Row = {};
    data.forEach((col, i) => {
      const name = relation!.columns[i].name;
      this.seen.add(`column ${col.kind}`);
      out[name] = col.kind === 'n' ? null : col.kind === 'u' ? (old ? old[name] : UNCHANGED) : col.value;
    });
    return out;
  }

  /** A 'K' tuple: the key columns only; every other column must have come as NULL (divergence 2). */
  private keyRow(relationId: number, data: TupleData | undefined): Row | null {
    const row = this.row(relationId, data);
    if (!row) return null;
    const relation = this.relations.get(relationId)!;
    const out: Row = {};
    relation.columns.forEach((c, i) => {
      if (c.isKey) out[c.name] = row[c.name];
      else expect(data![i].kind, `${relation.table}.${c.name}: a non-key column in a 'K' tuple`).to.equal('n');
    });
    return out;
  }
}

describe('sources/logical/pgoutput: our decoder and pg-logical-replication 2.5 agree on real pgoutput bytes', function () {
  this.timeout(30_000);
  let db: TestDatabase;
  let client: Client;
  let messages: Buffer[] = [];

  before(async () => {
    db = await createTestDatabase(DB);
    client = new Client({ connectionString: db.url, options: REPLICATION_SESSION_OPTIONS, application_name: 'pgce-test' });
    client.on('error', () => undefined);
    await client.connect();
    for (const sql of SCHEMA_SQL) await client.query(sql);
    await client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [SLOT]);
    for (const [sql, params] of WORKLOAD_SQL) await client.query(sql, params);
    const { rows } = await client.query(PEEK_SQL, [SLOT, PUBLICATION]);
    messages = rows.map((r: { data: Buffer }) => r.data);
  });

  after(async () => {
    await client?.end().catch(() => undefined);
    // Always dropped (its slot with it): the name is random, so a later run would never clean it up.
    await db?.drop();
  });

  it('decodes every message to the same structure (after the documented normalisation)', () => {
    const library = new PgoutputPlugin({ protoVersion: 1, publicationNames: [PUBLICATION], messages: true });
    const ours = new Ours();
    expect(messages.length, 'messages peeked from the slot').to.be.greaterThan(40);
    messages.forEach((bytes, i) => {
      const mine = parsePgOutput(bytes);
      const their = library.parse(bytes) as Pgoutput.Message;
      // Type conversion is not decoding: compare text as text (see the header).
      if (their.tag === 'relation') for (const c of their.columns) c.parser = (text: unknown) => text;
      const where = `message ${i} of ${messages.length} (${mine.tag}, ${bytes.length} bytes: ${bytes.subarray(0, 32).toString('hex')}…)`;
      expect(their.tag, where).to.equal(mine.tag);
      expect(theirs(their), where).to.deep.equal(ours.map(mine));
    });
    // The workload really covered what the comparison is meant to cover.
    expect([...ours.seen].sort()).to.include.members([
      'begin', 'commit', 'relation', 'relation changed', 'type', 'insert', 'update', 'delete', 'truncate', 'message',
      'update N', 'update K', 'update O', 'delete K', 'delete O', 'truncate several',
      'message transactional', 'message not transactional', 'column t', 'column n', 'column u', 'type in pg_catalog',
    ]);
  });

  it('a transaction over several relations arrives as one Begin…Commit with each Relation before its rows', () => {
    const tags = messages.map((m) => parsePgOutput(m));
    const begins = tags.flatMap((m, i) => (m.tag === 'begin' ? [i] : []));
    const bodies = begins.map((b) => tags.slice(b + 1, tags.findIndex((m, i) => i > b && m.tag === 'commit')));
    const several = bodies.find((body) => new Set(body.flatMap((m) => ('relationId' in m ? [m.relationId] : []))).size >= 3);
    expect(several, 'a transaction touching three relations').to.not.equal(undefined);
  });

  it('synthetic bytes (no server can be made to produce them here): OIDs and xids at 2^31 and above', () => {
    // A Relation for OID 2^31 + 1 and a Begin with xid 2^31 + 5: legal values on an old cluster.
    const relation = Buffer.concat([w.tag('R'), w.u32(0x80000001), w.str('public'), w.str('t'), w.tag('d'), w.i16(1),
      w.u8(1), w.str('id'), w.u32(23), w.i32(-1)]);
    const begin = Buffer.concat([w.tag('B'), w.u64(0x1000n), w.i64(0n), w.u32(0x80000005)]);
    const insert = Buffer.concat([w.tag('I'), w.u32(0x80000001), w.tag('N'), tuple([['t', '1']])]);
    const library = new PgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
    expect((parsePgOutput(relation) as RelationMessage).id).to.equal(2_147_483_649);
    expect((parsePgOutput(begin) as Extract<PgOutputMessage, { tag: 'begin' }>).xid).to.equal(2_147_483_653);
    // The library reads them signed (a known bug in 2.5.0, harmless below 2^31): documented, not copied.
    expect((library.parse(relation) as Pgoutput.MessageRelation).relationOid).to.equal(-2_147_483_647);
    expect((library.parse(begin) as Pgoutput.MessageBegin).xid).to.equal(-2_147_483_643);
    // It still finds the relation again, since it uses the same signed number as the cache key.
    expect((library.parse(insert) as Pgoutput.MessageInsert).relation.name).to.equal('t');
  });
});
