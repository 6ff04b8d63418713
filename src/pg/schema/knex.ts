import knexFactory, { type Knex } from 'knex';
import type { Client, Pool } from 'pg';
import type { Config } from '../../config/types';
import { logger, scrubSecrets } from '../../logger';
import { CONNECT_TIMEOUT_MS, STATEMENT_TIMEOUT_MS } from '../db';

/**
 * knex is the product's SQL library for its own tables (README "The pgcloudevents schema"); the
 * replication stream stays on `pg`. Two ways to get an instance:
 * - `createKnex(config)`: its own small pool on DATABASE_URL (the migrator's);
 * - `knexOn(poolOrClient)`: queries on connections the caller already holds (run's bounded pool,
 *   a command's set-up connection), so the product opens no extra connection for them.
 */

/** Connections of `createKnex`: few, opened only when used (min 0). */
const POOL = { min: 0, max: 2, idleTimeoutMillis: 30_000 };

export function createKnex(config: Pick<Config, 'databaseUrl'>): Knex {
  return withPlainErrors(knexFactory({
    client: 'pg',
    // The same bounds as the pg pools (src/pg/db.ts): a hung statement fails instead of holding a connection.
    connection: {
      connectionString: config.databaseUrl,
      application_name: 'pg-cloudevents',
      statement_timeout: STATEMENT_TIMEOUT_MS,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      keepAlive: true,
    },
    pool: POOL,
    acquireConnectionTimeout: CONNECT_TIMEOUT_MS,
    ...COMMON,
  }));
}

/** knex over a pg Pool or Client the caller owns (and ends): `destroy()` leaves it open. */
export function knexOn(db: Pool | Client): Knex {
  const connectionPool = 'totalCount' in db ? db : singleConnection(db);
  return withPlainErrors(knexFactory({ client: 'pg', connectionPool, ...COMMON }));
}

const COMMON: Partial<Knex.Config> = {
  // Never the values in an error message: events and errors may carry anything (withPlainErrors).
  compileSqlOnError: false,
  log: knexLog(),
};

/** One Client as a pool of one: knex takes it for every query and never closes it. */
function singleConnection(client: Client) {
  return {
    acquire: () => ({ promise: Promise.resolve(client) }),
    release: () => true,
    destroy: () => Promise.resolve(),
    numFree: () => 1,
    numUsed: () => 0,
    numPendingAcquires: () => 0,
  };
}

/**
 * knex prefixes every failed query's message with its SQL text. Our messages (and the
 * PostgreSQL text they quote) name the problem; the SQL would only bury it. The listener runs
 * before knex rethrows, so callers see PostgreSQL's own message again.
 */
function withPlainErrors(knex: Knex): Knex {
  knex.on('query-error', (err: Error, query: { sql?: string }) => {
    const prefix = `${query.sql ?? ''} - `;
    if (query.sql && typeof err?.message === 'string' && err.message.startsWith(prefix)) err.message = err.message.slice(prefix.length);
  });
  return knex;
}

/** knex's own warnings (a held migration lock, a failed migration) through our logger, scrubbed. */
function knexLog(): Knex.Logger {
  const log = logger('schema');
  const text = (message: unknown) => scrubSecrets(typeof message === 'string' ? message : String(message));
  return {
    warn: (message) => log.warn(text(message)),
    error: (message) => log.error(text(message)),
    debug: (message) => log.debug(text(message)),
    deprecate: (method, alternative) => log.debug(`knex: ${method} is deprecated, use ${alternative}`),
  };
}
