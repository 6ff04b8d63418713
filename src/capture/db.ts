import { Client, Pool } from 'pg';
import { ErrorCodes, PgceError } from '../errors';
import { scrubSecrets } from '../logger';

/** A plain (non-replication) connection for set-up, checks and status; the caller ends it. */
export async function connect(connectionString: string): Promise<Client> {
  const client = new Client({ connectionString, application_name: 'pg-cloudevents' });
  client.on('error', () => undefined); // surfaced by the next query instead of crashing the process
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw connectError(err, connectionString);
  }
  return client;
}

/** A small pool for the long-running process: reconnects by itself after a database restart. */
export function createPool(connectionString: string): Pool {
  const pool = new Pool({ connectionString, max: 2, application_name: 'pg-cloudevents', idleTimeoutMillis: 30_000 });
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
  const retriable = !['28000', '28P01', '3D000'].includes(e.code ?? '');
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
