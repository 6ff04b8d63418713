import { Client, Pool } from 'pg';
import { ErrorCodes, PgceError } from '../errors';
import { scrubSecrets } from '../logger';
import { isRetriableDbError } from './db-errors';

/**
 * Bounds for every plain connection: connecting may take CONNECT_TIMEOUT_MS, and each statement
 * STATEMENT_TIMEOUT_MS (PostgreSQL's statement_timeout, which also ends a wait for a lock), so a
 * hung query fails and is retried instead of holding a pooled connection for ever. The TCP
 * keepalive notices a vanished server.
 */
export const CONNECT_TIMEOUT_MS = 10_000;
export const STATEMENT_TIMEOUT_MS = 30_000;
const BOUNDS = { connectionTimeoutMillis: CONNECT_TIMEOUT_MS, statement_timeout: STATEMENT_TIMEOUT_MS, keepAlive: true };

/** A plain (non-replication) connection for set-up, checks and status; the caller ends it. */
export async function connect(connectionString: string): Promise<Client> {
  // No statement_timeout: set-up may wait for locks (CREATE PUBLICATION) and runs once.
  const client = new Client({ connectionString, application_name: 'pg-cloudevents', connectionTimeoutMillis: CONNECT_TIMEOUT_MS, keepAlive: true });
  client.on('error', () => undefined); // surfaced by the next query instead of crashing the process
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw connectError(err, connectionString);
  }
  return client;
}

/**
 * A small pool for the long-running process: reconnects by itself after a database restart.
 * Waiting for a free connection also counts against connectionTimeoutMillis. `options`: session
 * settings (`-c name=value …`) for every connection.
 */
export function createPool(connectionString: string, max = 2, options?: string): Pool {
  const pool = new Pool({ connectionString, max, application_name: 'pg-cloudevents', idleTimeoutMillis: 30_000, ...BOUNDS, ...(options === undefined ? {} : { options }) });
  pool.on('error', () => undefined);
  return pool;
}

export function connectError(err: unknown, connectionString: string): PgceError {
  const e = err as { message?: string; code?: string };
  let where = 'the database';
  try {
    const u = new URL(connectionString);
    where = `${u.hostname || 'localhost'}:${u.port || 5432}${u.pathname}`;
  } catch {
    /* not a URL: keep the generic wording */
  }
  const retriable = isRetriableDbError(err, 'connect');
  return new PgceError(
    ErrorCodes.DB_CONNECT,
    `could not connect to PostgreSQL at ${where} (DATABASE_URL): ${scrubSecrets(e.message ?? String(err))}`,
    { retriable, cause: err },
  );
}

export function databaseName(connectionString: string): string | undefined {
  try {
    const name = decodeURIComponent(new URL(connectionString).pathname.replace(/^\//, ''));
    return name || undefined;
  } catch {
    return undefined;
  }
}
