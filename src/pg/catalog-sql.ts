import { join } from 'node:path';
import { loadSql } from './sql-file';

/**
 * Catalog queries used by capture's set-up and checks, each in its own file under sql/ with a
 * contract header (parameters, columns returned, who runs it), read once when this module loads.
 * Values are always parameters; identifiers are quoted with `quoteIdent`, never spliced from user
 * input raw.
 */

const SQL_DIR = join(__dirname, 'sql');

export const WAL_LEVEL_SQL = loadSql(SQL_DIR, 'wal-level.sql');
export const TABLES_SQL = loadSql(SQL_DIR, 'tables.sql');
export const ROLE_SQL = loadSql(SQL_DIR, 'role.sql');
export const PUBLICATION_SQL = loadSql(SQL_DIR, 'publication.sql');
export const PUBLICATION_TABLES_SQL = loadSql(SQL_DIR, 'publication-tables.sql');
/** This database's slot of that name (a slot name is cluster-wide). */
export const SLOT_SQL = loadSql(SQL_DIR, 'slot.sql');
/** A slot of that name that is another database's, or a physical slot. */
export const SLOT_ELSEWHERE_SQL = loadSql(SQL_DIR, 'slot-elsewhere.sql');
export const CURRENT_DATABASE_SQL = loadSql(SQL_DIR, 'current-database.sql');
/** For resolving the default names: $1 the per-database default, $2 an earlier version's default. */
export const CAPTURE_NAMES_SQL = loadSql(SQL_DIR, 'capture-names.sql');
export const CREATE_SLOT_SQL = loadSql(SQL_DIR, 'create-slot.sql');
export const DROP_SLOT_SQL = loadSql(SQL_DIR, 'drop-slot.sql');

/** PostgreSQL's own identifier quoting: double the quotes, wrap in quotes. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteTable(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
