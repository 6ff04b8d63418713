import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import type { Config } from '../../config/types';
import { ErrorCodes, PgceError, errorMessage } from '../../errors';
import { quoteIdent } from '../catalog-sql';
import { createKnex } from './knex';
import { MIGRATIONS, type SchemaMigration } from './migrations';
import { MIGRATIONS_TABLE, checkSchemaName, schemaNames, type SchemaNames } from './names';

/**
 * Brings the product's schema to the latest migration with knex's migrator (README "The
 * pgcloudevents schema"; docs/schema.md): its record in `<schema>.knex_migrations`, its lock row
 * in `<schema>.knex_migrations_lock`.
 *
 * knex's lock row makes a second migrator wait (its UPDATE of the row waits for the first's
 * transaction) and then find nothing left to do. knex does not guard the creation of its own two
 * tables nor of the schema, though: two first runs at once would both create them and one would
 * fail (or insert a second lock row). So the whole run happens in one transaction that first takes
 * a transaction-level advisory lock on the schema's name, held until it commits.
 */

interface Log {
  info(message: string): void;
}

export interface MigrationOutcome {
  /** The migrations this call ran, in order (none when the schema was current). */
  ran: string[];
}

const ADVISORY_LOCK_SQL = 'SELECT pg_advisory_xact_lock(?::bigint)';
const TABLE_EXISTS_SQL = `SELECT to_regclass(format('%I.%I', ?::text, ?::text)) IS NOT NULL AS exists`;

/** The advisory key: the first 8 bytes of SHA-256(`pg-cloudevents migrations:<schema>`), signed (like leader.ts). */
export function migrationLockKey(schema: string): bigint {
  return createHash('sha256').update(`pg-cloudevents migrations:${schema}`).digest().readBigInt64BE(0);
}

function migrationSource(names: SchemaNames): Knex.MigrationSource<SchemaMigration> {
  return {
    getMigrations: async () => [...MIGRATIONS],
    getMigrationName: (m) => m.name,
    getMigration: async (m) => ({
      up: (knex: Knex) => m.up(knex, names),
      // Forward only: teardown removes what is empty, nothing rolls a migration back.
      down: async () => {
        throw new Error(`migration ${m.name} has no down: pg-cloudevents migrations only go forward`);
      },
    }),
  };
}

function migratorConfig(names: SchemaNames): Knex.MigratorConfig {
  return { schemaName: names.schema, tableName: MIGRATIONS_TABLE, migrationSource: migrationSource(names) };
}

async function tableExists(knex: Knex, schema: string, table: string): Promise<boolean> {
  return (await knex.raw(TABLE_EXISTS_SQL, [schema, table])).rows[0].exists;
}

/** Names of the migrations knex_migrations records (none when the table is missing). */
async function recorded(knex: Knex, names: SchemaNames): Promise<Set<string>> {
  if (!(await tableExists(knex, names.schema, MIGRATIONS_TABLE))) return new Set();
  const rows: { name: string }[] = await knex.withSchema(names.schema).from(MIGRATIONS_TABLE).select('name');
  return new Set(rows.map((r) => r.name));
}

/**
 * Recorded migrations whose table is gone (teardown dropped it empty, someone dropped it by hand,
 * or `deadLetters.table` names a new one): they must run again to make it.
 */
async function gone(knex: Knex, names: SchemaNames, done: Set<string>): Promise<string[]> {
  const missing = new Map<string, boolean>();
  const result: string[] = [];
  for (const m of MIGRATIONS) {
    if (!m.table || !done.has(m.name)) continue;
    const table = m.table(names);
    if (!missing.has(table)) missing.set(table, !(await tableExists(knex, names.schema, table)));
    if (missing.get(table)) result.push(m.name);
  }
  return result;
}

/**
 * The migrations `migrateToLatest` would run now, in order, read without changing anything
 * (`status`, `check`, `setup --dry-run`).
 */
export async function pendingMigrations(knex: Knex, config: Pick<Config, 'deadLetters'>): Promise<string[]> {
  const names = schemaNames(config);
  const done = await recorded(knex, names);
  const again = new Set(await gone(knex, names, done));
  return MIGRATIONS.filter((m) => !done.has(m.name) || again.has(m.name)).map((m) => m.name);
}

/** What `status` and `check` say about a schema with pending migrations (undefined when current). */
export function schemaBehindWarning(pending: readonly string[], config: Pick<Config, 'deadLetters'>): string | undefined {
  if (pending.length === 0) return undefined;
  return `schema ${config.deadLetters.schema} is behind: migration${pending.length > 1 ? 's' : ''} ${pending.join(', ')} ` +
    `pending (pg-cloudevents setup, or run at start, applies them)`;
}

/** Runs every pending migration; safe to call from several replicas at once. */
export async function migrateToLatest(knex: Knex, config: Pick<Config, 'deadLetters'>, log: Log): Promise<MigrationOutcome> {
  const names = schemaNames(config);
  checkSchemaName(names.schema);
  try {
    const ran = await knex.transaction(async (trx) => {
      await trx.raw(ADVISORY_LOCK_SQL, [migrationLockKey(names.schema).toString()]);
      await trx.raw(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(names.schema)}`);
      const again = await gone(trx, names, await recorded(trx, names));
      if (again.length) {
        // Forgotten, so knex runs them again (each is idempotent) and records them anew.
        await trx.withSchema(names.schema).from(MIGRATIONS_TABLE).whereIn('name', again).del();
      }
      const [, files] = (await trx.migrate.latest(migratorConfig(names))) as [number, string[]];
      return files;
    });
    for (const name of ran) log.info(`schema ${names.schema}: ran migration ${name}`);
    return { ran };
  } catch (err) {
    if (err instanceof PgceError) throw err;
    throw new PgceError(ErrorCodes.SCHEMA,
      `could not migrate schema ${names.schema} (deadLetters.schema) to the latest version: ${errorMessage(err)}`,
      { retriable: true, cause: err });
  }
}

/** `migrateToLatest` on a knex of its own, closed afterwards: what `setup` and `run` call. */
export async function migrateSchema(config: Pick<Config, 'databaseUrl' | 'deadLetters'>, log: Log): Promise<MigrationOutcome> {
  const knex = createKnex(config);
  try {
    return await migrateToLatest(knex, config, log);
  } finally {
    await knex.destroy();
  }
}
