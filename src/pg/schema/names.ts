import type { Config } from '../../config/types';
import { ConfigError } from '../../errors';

/**
 * The product's schema and the names in it (README "The pgcloudevents schema"). The schema is
 * `deadLetters.schema` (default pgcloudevents); the dead-letter table is `deadLetters.table`.
 */
export interface SchemaNames {
  schema: string;
  deadLetters: string;
  slotRecord: string;
  /** Trigger rules kept in the database (migration 000005). */
  triggerRules: string;
  /** Backfill requests and their progress (migration 000006). */
  backfills: string;
  /** The trigger-written journal of `capture.mode: trigger` (migration 000007). */
  journal: string;
}

/** The slot record's table: which replication slot this source reads, how far it acknowledged. */
export const SLOT_RECORD_TABLE = 'capture_slots';
/** Trigger rules kept in the database, one per row (README "Triggers"). */
export const TRIGGER_RULES_TABLE = 'triggers';
/** Backfill requests and their progress, one row per (request, table) (README "Backfill"). */
export const BACKFILLS_TABLE = 'backfills';
/** The journal `capture.mode: trigger` reads: one row per captured change (docs/journal.md). */
export const JOURNAL_TABLE = 'journal';
/** knex's migrator records applied migrations here and keeps its lock row in `<this>_lock`. */
export const MIGRATIONS_TABLE = 'knex_migrations';
export const MIGRATIONS_LOCK_TABLE = `${MIGRATIONS_TABLE}_lock`;

export function schemaNames(config: Pick<Config, 'deadLetters'>): SchemaNames {
  return { schema: config.deadLetters.schema, deadLetters: config.deadLetters.table, slotRecord: SLOT_RECORD_TABLE, triggerRules: TRIGGER_RULES_TABLE, backfills: BACKFILLS_TABLE, journal: JOURNAL_TABLE };
}

/** `<table><suffix>` within PostgreSQL's 63 bytes: cutting the table part keeps the suffix readable. */
export function derivedName(table: string, suffix: string): string {
  let name = table.slice(0, 63 - suffix.length);
  while (Buffer.byteLength(name) + suffix.length > 63) name = name.slice(0, -1);
  return `${name}${suffix}`;
}

/** PostgreSQL refuses CREATE SCHEMA pg_…: "The prefix "pg_" is reserved for system schemas". */
export function checkSchemaName(schema: string): void {
  if (schema.startsWith('pg_')) {
    throw new ConfigError([
      `deadLetters.schema: ${JSON.stringify(schema)} starts with pg_, which PostgreSQL reserves for system schemas; choose another (e.g. pgcloudevents)`,
    ]);
  }
}
