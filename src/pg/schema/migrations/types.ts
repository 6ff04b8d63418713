import type { Knex } from 'knex';
import type { SchemaNames } from '../names';

/**
 * One step of the product's schema (docs/schema.md). Every migration is idempotent against what
 * it may meet: an empty schema, or tables made by a version before knex's migrator (their shape
 * read from the catalog), so it may also run again when its table went missing.
 */
export interface SchemaMigration {
  /** Recorded in knex_migrations: never rename one that shipped. */
  name: string;
  /** The table this migration shapes, if any: when that table is missing, it runs again. */
  table?(names: SchemaNames): string;
  up(knex: Knex, names: SchemaNames): Promise<void>;
}
