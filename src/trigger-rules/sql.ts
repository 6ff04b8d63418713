/**
 * The statements over the trigger rules table (migration 000005: name text primary key, rule
 * jsonb, created_at, updated_at), around its quoted name; every value is a binding (`?`).
 */

/** Every row as JSON, by name: the second column of both snapshots below. */
const ROWS = (table: string) => `coalesce((SELECT json_agg(json_build_object('name', name, 'rule', rule, 'created_at', created_at, 'updated_at', updated_at) ORDER BY name)
              FROM ${table}), '[]'::json) AS rows`;

/**
 * One snapshot: every row and the WAL position, read by one statement, so the rows are exactly
 * those committed before the position (README "Rules at runtime", the activation point).
 */
export const SNAPSHOT_SQL = (table: string) => `SELECT pg_current_wal_lsn()::text AS position,
  ${ROWS(table)}`;

/**
 * The same in capture.mode trigger, where a change's position is its journal row's id: every row
 * and one more than the largest id of the capture's journal rows committed (visible) at the read,
 * one statement. A change written after the read has a larger id (identity values only grow).
 * ? the capture.
 */
export const JOURNAL_SNAPSHOT_SQL = (table: string, journal: string) => `SELECT (coalesce((SELECT max(id) FROM ${journal} WHERE capture = ?), 0) + 1)::text AS position,
  ${ROWS(table)}`;

export const LIST_SQL = (table: string) => `SELECT name, rule, created_at, updated_at FROM ${table} ORDER BY name`;

/** ? the name. */
export const GET_SQL = (table: string) => `SELECT name, rule, created_at, updated_at FROM ${table} WHERE name = ?`;

/** ? ? the name and the rule (JSON text); no row back when the name is taken. */
export const CREATE_SQL = (table: string) => `INSERT INTO ${table} (name, rule) VALUES (?, ?::jsonb)
  ON CONFLICT (name) DO NOTHING
  RETURNING name, rule, created_at, updated_at`;

/** ? ? the name and the rule (JSON text); `created` tells an insert from a replacement. */
export const REPLACE_SQL = (table: string) => `INSERT INTO ${table} AS t (name, rule) VALUES (?, ?::jsonb)
  ON CONFLICT (name) DO UPDATE SET rule = EXCLUDED.rule, updated_at = now()
  RETURNING name, rule, created_at, updated_at, (xmax = 0) AS created`;

/** ? the name. */
export const DELETE_SQL = (table: string) => `DELETE FROM ${table} WHERE name = ? RETURNING name`;
