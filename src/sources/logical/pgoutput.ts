import { ErrorCodes, PgceError } from '../../errors';
import type { ColumnInfo, ReplicaIdentity } from '../change';
import { pgTimeToDate } from './replication-messages';

/**
 * pgoutput protocol version 1 (PostgreSQL docs, "Logical Replication Message Formats"). One
 * XLogData payload holds exactly one message. Integers are big-endian, strings NUL-terminated.
 * The parsed message keeps no reference to the input buffer: strings are decoded and binary
 * values copied, so a caller may hold messages while the socket's buffer is reused.
 */

export type TupleColumn =
  | { readonly kind: 'n' } // NULL
  | { readonly kind: 'u' } // unchanged TOASTed value: not sent
  | { readonly kind: 't'; readonly value: string }
  | { readonly kind: 'b'; readonly value: Buffer };

export type TupleData = TupleColumn[];

export interface BeginMessage {
  tag: 'begin';
  /** LSN of the commit record: the transaction's position in the stream. */
  finalLsn: bigint;
  commitTime: Date;
  /** Commit time in µs since 2000-01-01 UTC, as sent (Date keeps only milliseconds). */
  commitTimeMicros: bigint;
  xid: number;
}

export interface CommitMessage {
  tag: 'commit';
  flags: number;
  commitLsn: bigint;
  /** End of the commit record: confirm this once the transaction is delivered. */
  endLsn: bigint;
  commitTime: Date;
  commitTimeMicros: bigint;
}

export interface OriginMessage {
  tag: 'origin';
  /** LSN of the commit on the origin server. */
  originLsn: bigint;
  name: string;
}

export interface RelationColumn extends ColumnInfo {
  /** Raw flags byte: bit 1 marks a replica identity (key) column. */
  flags: number;
}

export interface RelationMessage {
  tag: 'relation';
  id: number;
  schema: string;
  table: string;
  replicaIdentity: ReplicaIdentity;
  columns: RelationColumn[];
}

export interface TypeMessage {
  tag: 'type';
  id: number;
  schema: string;
  name: string;
}

export interface InsertMessage {
  tag: 'insert';
  relationId: number;
  new: TupleData;
}

export interface UpdateMessage {
  tag: 'update';
  relationId: number;
  /** 'K': the old replica identity, sent only when it changed (other columns come as nulls). */
  key?: TupleData;
  /** 'O': the whole old row (REPLICA IDENTITY FULL). */
  old?: TupleData;
  new: TupleData;
}

export interface DeleteMessage {
  tag: 'delete';
  relationId: number;
  key?: TupleData;
  old?: TupleData;
}

export interface TruncateMessage {
  tag: 'truncate';
  relationIds: number[];
  cascade: boolean;
  restartIdentity: boolean;
}

/** pg_logical_emit_message() output (sent only with the `messages` option). */
export interface LogicalMessage {
  tag: 'message';
  flags: number;
  transactional: boolean;
  lsn: bigint;
  prefix: string;
  content: Buffer;
}

export type PgOutputMessage =
  | BeginMessage
  | CommitMessage
  | OriginMessage
  | RelationMessage
  | TypeMessage
  | InsertMessage
  | UpdateMessage
  | DeleteMessage
  | TruncateMessage
  | LogicalMessage;

const NULL_COLUMN: TupleColumn = Object.freeze({ kind: 'n' });
const UNCHANGED_COLUMN: TupleColumn = Object.freeze({ kind: 'u' });

const REPLICA_IDENTITY: Record<string, ReplicaIdentity> = { d: 'default', n: 'nothing', f: 'full', i: 'index' };

const TRUNCATE_CASCADE = 1;
const TRUNCATE_RESTART_IDENTITY = 2;
const MESSAGE_TRANSACTIONAL = 1;
const COLUMN_IS_KEY = 1;

const NAMES: Record<string, string> = {
  B: 'Begin', C: 'Commit', O: 'Origin', R: 'Relation', Y: 'Type', I: 'Insert', U: 'Update', D: 'Delete',
  T: 'Truncate', M: 'Message',
};

/** A cursor over one message; Buffer's own readers do the bounds checks (RangeError). */
class Reader {
  pos = 1;
  constructor(readonly buf: Buffer) {}

  u8(): number {
    if (this.pos >= this.buf.length) throw new RangeError('end of message');
    return this.buf[this.pos++];
  }
  i16(): number {
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  i32(): number {
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u32(): number {
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  lsn(): bigint {
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  i64(): bigint {
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  string(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw new RangeError('unterminated string');
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }
  bytes(len: number): Buffer {
    const end = this.take(len);
    return Buffer.from(this.buf.subarray(end - len, end));
  }
  text(len: number): string {
    const end = this.take(len);
    return this.buf.toString('utf8', end - len, end);
  }
  /** Advances over `len` bytes, returning the end offset; refuses to run past the message. */
  private take(len: number): number {
    const end = this.pos + len;
    if (len < 0 || end > this.buf.length) throw new RangeError(`length ${len} runs past the message`);
    this.pos = end;
    return end;
  }
}

export function parsePgOutput(buf: Buffer): PgOutputMessage {
  if (!buf.length) throw new PgceError(ErrorCodes.PROTOCOL, 'empty pgoutput message');
  const tag = String.fromCharCode(buf[0]);
  const r = new Reader(buf);
  try {
    switch (tag) {
      case 'B': return begin(r);
      case 'C': return commit(r);
      case 'O': return { tag: 'origin', originLsn: r.lsn(), name: r.string() };
      case 'R': return relation(r);
      case 'Y': return { tag: 'type', id: r.u32(), schema: r.string() || 'pg_catalog', name: r.string() };
      case 'I': return insert(r);
      case 'U': return update(r);
      case 'D': return del(r);
      case 'T': return truncate(r);
      case 'M': return message(r);
    }
  } catch (err) {
    if (err instanceof PgceError) throw err;
    throw new PgceError(
      ErrorCodes.PROTOCOL,
      `malformed pgoutput ${NAMES[tag]} message at offset ${r.pos} of ${buf.length}: ${(err as Error).message}`,
      { cause: err, detail: { tag, offset: r.pos, length: buf.length } },
    );
  }
  throw new PgceError(
    ErrorCodes.PROTOCOL,
    `unknown pgoutput message tag ${JSON.stringify(tag)} (0x${buf[0].toString(16)}) at offset 0; only protocol version 1 is supported`,
    { detail: { tag, offset: 0, length: buf.length } },
  );
}

function begin(r: Reader): BeginMessage {
  const finalLsn = r.lsn();
  const commitTimeMicros = r.i64();
  return { tag: 'begin', finalLsn, commitTime: pgTimeToDate(commitTimeMicros), commitTimeMicros, xid: r.u32() };
}

function commit(r: Reader): CommitMessage {
  const flags = r.u8();
  const commitLsn = r.lsn();
  const endLsn = r.lsn();
  const commitTimeMicros = r.i64();
  return { tag: 'commit', flags, commitLsn, endLsn, commitTime: pgTimeToDate(commitTimeMicros), commitTimeMicros };
}

function relation(r: Reader): RelationMessage {
  const id = r.u32();
  // An empty namespace stands for pg_catalog (here and in Type messages).
  const schema = r.string() || 'pg_catalog';
  const table = r.string();
  const identityAt = r.pos;
  const identityChar = String.fromCharCode(r.u8());
  const replicaIdentity = REPLICA_IDENTITY[identityChar];
  if (!replicaIdentity) {
    throw new PgceError(ErrorCodes.PROTOCOL, `pgoutput Relation message: unknown replica identity ${JSON.stringify(identityChar)} at offset ${identityAt}`, {
      detail: { tag: 'R', offset: identityAt },
    });
  }
  const count = r.i16();
  const columns: RelationColumn[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const flags = r.u8();
    const name = r.string();
    const typeOid = r.u32();
    const typeMod = r.i32();
    columns[i] = { name, typeOid, typeMod, isKey: (flags & COLUMN_IS_KEY) !== 0, flags };
  }
  return { tag: 'relation', id, schema, table, replicaIdentity, columns };
}

function insert(r: Reader): InsertMessage {
  const relationId = r.u32();
  expectSubmessage(r, 'I', 'N');
  return { tag: 'insert', relationId, new: tuple(r) };
}

function update(r: Reader): UpdateMessage {
  const msg: UpdateMessage = { tag: 'update', relationId: r.u32(), new: [] };
  let kind = r.u8();
  if (kind === 0x4b /* 'K' */ || kind === 0x4f /* 'O' */) {
    if (kind === 0x4b) msg.key = tuple(r);
    else msg.old = tuple(r);
    kind = r.u8();
  }
  if (kind !== 0x4e /* 'N' */) throw badSubmessage('U', r.pos - 1, kind, "'K', 'O' or 'N'");
  msg.new = tuple(r);
  return msg;
}

function del(r: Reader): DeleteMessage {
  const relationId = r.u32();
  const kind = r.u8();
  if (kind === 0x4b) return { tag: 'delete', relationId, key: tuple(r) };
  if (kind === 0x4f) return { tag: 'delete', relationId, old: tuple(r) };
  throw badSubmessage('D', r.pos - 1, kind, "'K' or 'O'");
}

function truncate(r: Reader): TruncateMessage {
  const count = r.u32();
  const options = r.u8();
  if (count * 4 > r.buf.length - r.pos) throw new RangeError(`${count} relation ids do not fit`);
  const relationIds: number[] = new Array(count);
  for (let i = 0; i < count; i++) relationIds[i] = r.u32();
  return {
    tag: 'truncate',
    relationIds,
    cascade: (options & TRUNCATE_CASCADE) !== 0,
    restartIdentity: (options & TRUNCATE_RESTART_IDENTITY) !== 0,
  };
}

function message(r: Reader): LogicalMessage {
  const flags = r.u8();
  const lsn = r.lsn();
  const prefix = r.string();
  const content = r.bytes(r.i32());
  return { tag: 'message', flags, transactional: (flags & MESSAGE_TRANSACTIONAL) !== 0, lsn, prefix, content };
}

/** TupleData: Int16 column count, then per column a kind byte and, for 't'/'b', Int32 length + bytes. */
function tuple(r: Reader): TupleData {
  const count = r.i16();
  const columns: TupleData = new Array(count);
  for (let i = 0; i < count; i++) {
    const kind = r.u8();
    switch (kind) {
      case 0x74: // 't'
        columns[i] = { kind: 't', value: r.text(r.i32()) };
        break;
      case 0x6e: // 'n'
        columns[i] = NULL_COLUMN;
        break;
      case 0x75: // 'u'
        columns[i] = UNCHANGED_COLUMN;
        break;
      case 0x62: // 'b'
        columns[i] = { kind: 'b', value: r.bytes(r.i32()) };
        break;
      default:
        throw new PgceError(
          ErrorCodes.PROTOCOL,
          `pgoutput tuple column ${i}: unknown kind ${JSON.stringify(String.fromCharCode(kind))} at offset ${r.pos - 1}`,
          { detail: { offset: r.pos - 1, column: i } },
        );
    }
  }
  return columns;
}

function expectSubmessage(r: Reader, tag: string, want: 'N'): void {
  const kind = r.u8();
  if (kind !== want.charCodeAt(0)) throw badSubmessage(tag, r.pos - 1, kind, `'${want}'`);
}

function badSubmessage(tag: string, offset: number, kind: number, expected: string): PgceError {
  return new PgceError(
    ErrorCodes.PROTOCOL,
    `pgoutput ${NAMES[tag]} message: expected ${expected} at offset ${offset}, got ${JSON.stringify(String.fromCharCode(kind))}`,
    { detail: { tag, offset } },
  );
}
