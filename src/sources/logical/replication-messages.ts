import { ErrorCodes, PgceError } from '../../errors';

/**
 * The streaming replication sub-protocol carried inside CopyData (PostgreSQL docs, "Streaming
 * Replication Protocol"): the server sends XLogData ('w') and Primary keepalive ('k'); we answer
 * with Standby status update ('r'). All integers are big-endian; times are microseconds since
 * 2000-01-01 00:00:00 UTC (the PostgreSQL epoch).
 */

/** Milliseconds between the Unix epoch and the PostgreSQL epoch (2000-01-01T00:00:00Z). */
export const PG_EPOCH_MS = 946_684_800_000;

export interface XLogData {
  kind: 'xlogdata';
  /** Start of the WAL data in this message. */
  walStart: bigint;
  /** Current end of WAL on the server. */
  walEnd: bigint;
  /** Server clock at transmission, µs since 2000-01-01 UTC. */
  sendTime: bigint;
  /** The pgoutput message: a view into the CopyData chunk, not a copy. */
  data: Buffer;
}

export interface PrimaryKeepalive {
  kind: 'keepalive';
  walEnd: bigint;
  sendTime: bigint;
  /** The server asks for an immediate status update (or it may time the connection out). */
  replyRequested: boolean;
}

export type ReplicationMessage = XLogData | PrimaryKeepalive;

// Header sizes: tag byte + the fixed fields listed in the protocol docs.
const XLOGDATA_HEADER = 1 + 8 + 8 + 8;
const KEEPALIVE_SIZE = 1 + 8 + 8 + 1;
const STATUS_UPDATE_SIZE = 1 + 8 + 8 + 8 + 8 + 1;

export function parseReplicationMessage(buf: Buffer): ReplicationMessage {
  const tag = buf.length ? buf[0] : -1;
  if (tag === 0x77 /* 'w' */) {
    if (buf.length < XLOGDATA_HEADER) throw short('XLogData', buf.length, XLOGDATA_HEADER);
    return {
      kind: 'xlogdata',
      walStart: buf.readBigUInt64BE(1),
      walEnd: buf.readBigUInt64BE(9),
      sendTime: buf.readBigInt64BE(17),
      data: buf.subarray(XLOGDATA_HEADER),
    };
  }
  if (tag === 0x6b /* 'k' */) {
    if (buf.length < KEEPALIVE_SIZE) throw short('Primary keepalive', buf.length, KEEPALIVE_SIZE);
    return {
      kind: 'keepalive',
      walEnd: buf.readBigUInt64BE(1),
      sendTime: buf.readBigInt64BE(9),
      replyRequested: buf[17] === 1,
    };
  }
  const shown = tag < 0 ? 'an empty message' : `tag ${JSON.stringify(String.fromCharCode(tag))} (0x${tag.toString(16)})`;
  throw new PgceError(ErrorCodes.PROTOCOL, `unknown replication message: ${shown}`, { detail: { tag, length: buf.length } });
}

/**
 * Standby status update ('r'): the positions written, flushed and applied, and our clock.
 * `now` is in milliseconds since the Unix epoch (Date.now()).
 */
export function standbyStatusUpdate(
  write: bigint,
  flush: bigint,
  apply: bigint,
  replyRequested = false,
  now: number = Date.now(),
): Buffer {
  const buf = Buffer.allocUnsafe(STATUS_UPDATE_SIZE);
  buf[0] = 0x72; // 'r'
  buf.writeBigUInt64BE(write, 1);
  buf.writeBigUInt64BE(flush, 9);
  buf.writeBigUInt64BE(apply, 17);
  buf.writeBigInt64BE(BigInt(Math.floor(now) - PG_EPOCH_MS) * 1000n, 25);
  buf[33] = replyRequested ? 1 : 0;
  return buf;
}

/** µs since the PostgreSQL epoch → Date (millisecond precision). */
export function pgTimeToDate(micros: bigint): Date {
  let ms = micros / 1000n; // truncates toward zero: floor it for times before 2000
  if (micros % 1000n < 0n) ms -= 1n;
  return new Date(PG_EPOCH_MS + Number(ms));
}

function short(what: string, got: number, need: number): PgceError {
  return new PgceError(ErrorCodes.PROTOCOL, `${what} message too short: ${got} bytes, need ${need}`, {
    detail: { length: got },
  });
}
