/**
 * PostgreSQL helpers for integration tests: one database per test file, named by the test
 * (`pgce_d_<area>`), created fresh and dropped only when the test passed, as pg-boss does in its test hooks.
 */
import { Client, type QueryResult } from 'pg';
import { formatLsn, parseLsn } from '../../../src/sources/change';

export function adminUrl(): string {
  return process.env.PGCE_TEST_ADMIN_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
}

/** The admin URL pointed at another database. */
export function databaseUrl(name: string): string {
  const url = new URL(adminUrl());
  url.pathname = `/${encodeURIComponent(name)}`;
  return url.toString();
}

export interface TestDatabase {
  url: string;
  name: string;
  /** Runs on one lazily opened connection to the test database. */
  query(sql: string, params?: unknown[]): Promise<QueryResult>;
  /** Ends that connection (the database stays). */
  close(): Promise<void>;
  /** Ends that connection and drops the database with its replication slots. */
  drop(): Promise<void>;
}

const TERMINATE_BACKENDS_SQL = `
  SELECT pg_terminate_backend(pid) FROM pg_stat_activity
   WHERE datname = $1 AND pid <> pg_backend_pid()`;
const TERMINATE_SLOT_READERS_SQL = `
  SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
   WHERE database = $1 AND active_pid IS NOT NULL`;
const ACTIVE_SLOTS_SQL = `SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = $1 AND active`;
const DROP_SLOTS_SQL = `
  SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
   WHERE database = $1 AND NOT active`;
const DATABASE_EXISTS_SQL = `SELECT 1 FROM pg_database WHERE datname = $1`;
const SLOT_INFO_SQL = `
  SELECT confirmed_flush_lsn::text AS confirmed, restart_lsn::text AS restart, active, active_pid
    FROM pg_replication_slots WHERE slot_name = $1`;

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

async function withAdmin<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: adminUrl(), application_name: 'pgce-test-harness' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Drops database `name` if it exists. A database that still has a replication slot cannot be
 * dropped (even WITH (FORCE)), and an active slot cannot be dropped: end its reader, then drop it.
 */
export async function dropTestDatabase(name: string): Promise<void> {
  await withAdmin(async (admin) => {
    const exists = await admin.query(DATABASE_EXISTS_SQL, [name]);
    if (exists.rowCount === 0) return;
    await admin.query(TERMINATE_SLOT_READERS_SQL, [name]);
    await waitFor(
      async () => (await admin.query(ACTIVE_SLOTS_SQL, [name])).rows[0].n === 0 || undefined,
      { timeoutMs: 10_000, intervalMs: 50, what: `replication slots of database ${name} to become inactive` },
    );
    await admin.query(DROP_SLOTS_SQL, [name]);
    await admin.query(TERMINATE_BACKENDS_SQL, [name]);
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  });
}

/** Creates database `name` afresh, dropping a leftover of an earlier (failed) run first. */
export async function createTestDatabase(name: string): Promise<TestDatabase> {
  if (!/^pgce_[a-z0-9_]+$/.test(name)) {
    throw new Error(`test database name "${name}" must match pgce_[a-z0-9_]+ (tests are isolated by name)`);
  }
  await dropTestDatabase(name);
  await withAdmin((admin) => admin.query(`CREATE DATABASE ${quoteIdent(name)}`));

  const url = databaseUrl(name);
  let client: Promise<Client> | undefined;
  const connection = (): Promise<Client> => {
    client ??= (async () => {
      const c = new Client({ connectionString: url, application_name: 'pgce-test' });
      c.on('error', () => undefined); // e.g. terminated by a test that restarts things; next query says so
      await c.connect();
      return c;
    })();
    return client;
  };
  const close = async (): Promise<void> => {
    const pending = client;
    client = undefined;
    if (pending) await (await pending.catch(() => undefined))?.end().catch(() => undefined);
  };
  return {
    url,
    name,
    query: async (sql, params) => (await connection()).query(sql, params),
    close,
    drop: async () => {
      await close();
      await dropTestDatabase(name);
    },
  };
}

export interface SlotInfo {
  confirmedFlushLsn: bigint | null;
  restartLsn: bigint | null;
  active: boolean;
  activePid: number | null;
}

/** The slot's position and reader, or undefined when the slot does not exist. */
export async function slotInfo(url: string, slot: string): Promise<SlotInfo | undefined> {
  const client = new Client({ connectionString: url, application_name: 'pgce-test-harness' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query(SLOT_INFO_SQL, [slot]);
    if (rows.length === 0) return undefined;
    const row = rows[0] as { confirmed: string | null; restart: string | null; active: boolean; active_pid: number | null };
    return {
      confirmedFlushLsn: row.confirmed === null ? null : parseLsn(row.confirmed),
      restartLsn: row.restart === null ? null : parseLsn(row.restart),
      active: row.active,
      activePid: row.active_pid,
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Names what is awaited, for the failure message: "waiting for <what>". */
  what: string;
}

/**
 * Polls `fn` until it returns something other than undefined/false, and returns that. A throw
 * counts as "not yet" (the thing may still be starting); the last one is named on timeout.
 */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | false>,
  { timeoutMs = 10_000, intervalMs = 100, what }: WaitOptions,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError === undefined ? '' : ` (last error: ${(lastError as Error).message ?? String(lastError)})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, Math.max(0, deadline - Date.now()))));
  }
}

/** The LSN the server has written up to now. */
export async function currentLsn(db: TestDatabase): Promise<string> {
  return (await db.query('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0].lsn;
}

/** Whether `slot` has acknowledged everything up to `lsn`. */
export async function acknowledged(db: TestDatabase, slot: string, lsn: string): Promise<boolean> {
  const info = await slotInfo(db.url, slot);
  if (!info?.confirmedFlushLsn) return false;
  return (await db.query('SELECT $1::pg_lsn >= $2::pg_lsn AS ok', [formatLsn(info.confirmedFlushLsn), lsn])).rows[0].ok;
}

/** Waits until `slot` has acknowledged everything written so far: every delivery done (or dead-lettered). */
export async function acknowledgedEverything(db: TestDatabase, slot: string): Promise<void> {
  const lsn = await currentLsn(db);
  await waitFor(() => acknowledged(db, slot, lsn), { timeoutMs: 30_000, intervalMs: 100, what: `slot ${slot} to acknowledge everything written` });
}
