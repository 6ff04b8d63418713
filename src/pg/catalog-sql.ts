/**
 * Catalog queries used by capture's set-up and checks. Named constants; values are always
 * parameters, identifiers are quoted with `quoteIdent`, never spliced from user input raw.
 */

export const WAL_LEVEL_SQL = `SELECT current_setting('wal_level') AS wal_level,
  current_setting('max_replication_slots')::int AS max_slots,
  (SELECT count(*)::int FROM pg_replication_slots) AS used_slots,
  current_database() AS database`;

/**
 * Tables by (schema, name), with their replica identity, whether they have a primary key, and
 * their generated columns (`attgenerated <> ''`), which pgoutput does not publish (README, "The event").
 */
export const TABLES_SQL = `SELECT n.nspname AS schema, c.relname AS name, c.relkind AS kind,
  c.relreplident AS replident,
  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_pk,
  ARRAY(SELECT a.attname::text FROM pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated <> ''
         ORDER BY a.attnum) AS generated_columns
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest($1::text[], $2::text[]))`;

export const ROLE_SQL = `SELECT rolsuper OR rolreplication AS can_replicate
FROM pg_roles WHERE rolname = current_user`;

export const PUBLICATION_SQL = `SELECT p.pubname, p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate, p.puballtables
FROM pg_publication p WHERE p.pubname = $1`;

export const PUBLICATION_TABLES_SQL = `SELECT schemaname AS schema, tablename AS name
FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2`;

/**
 * The slot as PostgreSQL sees it, if it is this database's: a slot name is cluster-wide, and
 * another database's slot of the same name is not ours to report (SLOT_ELSEWHERE_SQL names it).
 * `wal_status` (reserved, extended, unreserved, lost) and `safe_wal_size` say how close max_slot_wal_keep_size is to invalidating it; `lost` means it was
 * (restart_lsn is then NULL, and so is retained_bytes). max_slot_wal_keep_size is in MB, -1 = no limit.
 */
export const SLOT_SQL = `SELECT slot_name, plugin, slot_type, database, active, active_pid,
  confirmed_flush_lsn::text AS confirmed_flush_lsn, restart_lsn::text AS restart_lsn,
  pg_current_wal_lsn()::text AS current_lsn,
  pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained_bytes,
  pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS lag_bytes,
  wal_status, safe_wal_size::text AS safe_wal_size,
  (SELECT CASE WHEN setting::bigint < 0 THEN NULL ELSE setting::bigint * 1048576 END
     FROM pg_settings WHERE name = 'max_slot_wal_keep_size')::text AS max_slot_wal_keep_bytes
FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()`;

/**
 * A slot of that name that is not this database's (slot names are cluster-wide): another
 * database's logical slot, or a physical slot (database NULL).
 */
export const SLOT_ELSEWHERE_SQL = `SELECT slot_type, database FROM pg_replication_slots
WHERE slot_name = $1 AND database IS DISTINCT FROM current_database()`;

export const CURRENT_DATABASE_SQL = `SELECT current_database() AS database`;

/** For resolving the default names: $1 the per-database default, $2 an earlier version's default. */
export const CAPTURE_NAMES_SQL = `SELECT
  EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()) AS default_slot,
  EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $2 AND database = current_database()) AS earlier_slot,
  EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1) AS default_publication,
  EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $2) AS earlier_publication`;

export const CREATE_SLOT_SQL = `SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot($1, 'pgoutput')`;

export const DROP_SLOT_SQL = `SELECT pg_drop_replication_slot($1)`;

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
