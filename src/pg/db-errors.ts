/**
 * One answer to "is this database error worth retrying?", for every connection the product opens
 * (plain queries, pools, the leader session, the replication stream). SQLSTATEs from PostgreSQL's
 * "Appendix A. Error Codes".
 *
 * Three groups:
 * - final: retrying can only fail the same way until a person acts (credentials, a missing
 *   database, a missing privilege, a missing or unusable slot);
 * - transient: the connection or the server went away, the server is starting or stopping, a
 *   query gave up waiting, a serialisation conflict;
 * - neither (a syntax error, a constraint, a bug): happens again the same way on a query, so final
 *   there; but while connecting or streaming, where the server speaks for the whole connection,
 *   we keep trying (a reconnect costs little and an outage must never end capture by itself).
 */
const FINAL_SQLSTATES = new Set([
  '28000', // invalid_authorization_specification (pg_hba.conf refuses)
  '28P01', // invalid_password
  '3D000', // invalid_catalog_name: no such database
  '42501', // insufficient_privilege (e.g. no REPLICATION attribute)
  '42704', // undefined_object: the replication slot does not exist
  '55000', // object_not_in_prerequisite_state: e.g. the slot was invalidated, wal_level too low
]);

const TRANSIENT_SQLSTATES = new Set([
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, recovery)
  '53300', // too_many_connections
  '57014', // query_canceled (statement_timeout)
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available (lock_timeout)
  '55006', // object_in_use: the slot is active for another process (it frees when that one ends)
]);

const TRANSIENT_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

// pg's own wording when the socket closes or a pool cannot hand out a connection in time.
const TRANSIENT_MESSAGES = /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i;

/** Where the error happened: a query's unknown error is final, a connection's is not. */
export type DbErrorContext = 'query' | 'connect' | 'replication';

export function sqlstateOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

export function isTransientDbError(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const code = sqlstateOf(err);
  if (code.startsWith('08') || TRANSIENT_SQLSTATES.has(code) || TRANSIENT_NODE_CODES.has(code)) return true;
  const message = (err as { message?: unknown }).message;
  return typeof message === 'string' && TRANSIENT_MESSAGES.test(message);
}

export function isFinalDbError(err: unknown): boolean {
  return FINAL_SQLSTATES.has(sqlstateOf(err));
}

/** Whether to try again after `err` happened during `context`. */
export function isRetriableDbError(err: unknown, context: DbErrorContext): boolean {
  if (isFinalDbError(err)) return false;
  if (isTransientDbError(err)) return true;
  return context !== 'query';
}
