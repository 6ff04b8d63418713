/**
 * The statements over the backfills table (migration 000006), around its quoted name; every
 * value is a binding (`?`).
 */

const COLUMNS = `id::text AS id, slot_name, schema_name, table_name, where_clause, chunk_size, rate_limit, origin, state,
  last_key, rows_done::text AS rows_done, rows_emitted::text AS rows_emitted, rows_estimated::text AS rows_estimated, error,
  created_at, started_at, updated_at, finished_at`;

/** ? × 7: slot, schema, table, where, chunk, rate, origin. */
export const INSERT_SQL = (table: string) => `INSERT INTO ${table} (slot_name, schema_name, table_name, where_clause, chunk_size, rate_limit, origin)
  VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING ${COLUMNS}`;

/** ? the slot; newest first. */
export const LIST_SQL = (table: string) => `SELECT ${COLUMNS} FROM ${table} WHERE slot_name = ? ORDER BY id DESC LIMIT ?`;

/** ? ? the slot and the id. */
export const GET_SQL = (table: string) => `SELECT ${COLUMNS} FROM ${table} WHERE slot_name = ? AND id = ?`;

/** ? the slot: the backfill to perform next (a running one first: it was interrupted). */
export const NEXT_SQL = (table: string) => `SELECT ${COLUMNS} FROM ${table}
  WHERE slot_name = ? AND state IN ('pending', 'running') ORDER BY (state = 'running') DESC, id LIMIT 1`;

/** ? the slot: pending or running. */
export const ACTIVE_SQL = (table: string) => `SELECT ${COLUMNS} FROM ${table}
  WHERE slot_name = ? AND state IN ('pending', 'running') ORDER BY id`;

/** ? ? the estimate and the id; only a pending or running one (a cancel in between wins). */
export const START_SQL = (table: string) => `UPDATE ${table}
  SET state = 'running', started_at = coalesce(started_at, now()), rows_estimated = coalesce(rows_estimated, ?), updated_at = now()
  WHERE id = ? AND state IN ('pending', 'running') RETURNING ${COLUMNS}`;

/** ? × 4: last key (JSON text), rows read, rows emitted (both added), the id. */
export const PROGRESS_SQL = (table: string) => `UPDATE ${table}
  SET last_key = ?::jsonb, rows_done = rows_done + ?, rows_emitted = rows_emitted + ?, updated_at = now()
  WHERE id = ? AND state = 'running' RETURNING state`;

/** ? ? ? the final state, the error (or null) and the id; only from pending or running. */
export const FINISH_SQL = (table: string) => `UPDATE ${table}
  SET state = ?, error = ?, finished_at = now(), updated_at = now()
  WHERE id = ? AND state IN ('pending', 'running') RETURNING ${COLUMNS}`;

/** ? ? the slot and the id. */
export const STATE_SQL = (table: string) => `SELECT state FROM ${table} WHERE slot_name = ? AND id = ?`;
