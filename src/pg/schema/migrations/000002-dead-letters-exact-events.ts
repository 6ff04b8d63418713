import type { Knex } from 'knex';
import { quoteIdent } from '../../catalog-sql';
import { derivedName, type SchemaNames } from '../names';
import type { SchemaMigration } from './types';

/**
 * Byte-exact events, one row per event id, undecodable changes, newer state (README "Dead
 * letters"). Each change is made only when the catalog shows it missing, so a table already
 * upgraded by an earlier version (or by a run of this migration) is left as it is.
 */

/** The table's shape, from the catalog: ? ? are schema and table, the third ? the check's name. */
export const SHAPE_SQL = `WITH rel AS (SELECT to_regclass(format('%I.%I', ?::text, ?::text)) AS oid),
cols AS (SELECT a.attname::text AS name, a.atttypid, a.attnotnull, a.attnum FROM pg_attribute a, rel
  WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped)
SELECT
  EXISTS (SELECT 1 FROM cols WHERE name = 'event' AND atttypid = 'text'::regtype) AS event_text,
  EXISTS (SELECT 1 FROM cols WHERE name = 'event' AND attnotnull) AS event_not_null,
  EXISTS (SELECT 1 FROM pg_constraint k, rel WHERE k.conrelid = rel.oid AND k.contype = 'c' AND k.conname = ?) AS event_check,
  EXISTS (SELECT 1 FROM pg_index i, rel, cols WHERE i.indrelid = rel.oid AND i.indisunique AND i.indnatts = 1
    AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indkey[0] = cols.attnum AND cols.name = 'event_id') AS unique_event_id`;

export const exactEvents: SchemaMigration = {
  name: '000002_dead_letters_exact_events',
  table: (n) => n.deadLetters,
  async up(knex: Knex, n: SchemaNames) {
    const t = `${quoteIdent(n.schema)}.${quoteIdent(n.deadLetters)}`;
    const checkName = derivedName(n.deadLetters, '_event_or_raw_change');
    const shape = (await knex.raw(SHAPE_SQL, [n.schema, n.deadLetters, checkName])).rows[0];
    // The event as the exact JSON text that was sent: jsonb reorders keys, drops duplicate ones
    // and cannot hold the escape \u0000. Rows stored before keep jsonb's rendering of what they held.
    if (!shape.event_text) await knex.raw(`ALTER TABLE ${t} ALTER COLUMN event TYPE text USING event::text`);
    // An undecodable change has no event: its raw row and the reason are kept instead.
    if (shape.event_not_null) await knex.raw(`ALTER TABLE ${t} ALTER COLUMN event DROP NOT NULL`);
    await knex.raw(`ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS raw_change text`);
    if (!shape.event_check) {
      await knex.raw(`ALTER TABLE ${t} ADD CONSTRAINT ${quoteIdent(checkName)} CHECK (event IS NOT NULL OR raw_change IS NOT NULL)`);
    }
    // The event's `sequence` extension (a string-sortable position in the change stream) and the
    // newest sequence of the same partition key delivered after it (`replay` warns about those).
    await knex.raw(`ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS sequence text`);
    await knex.raw(`ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS superseded_by_sequence text`);
    // Rows stored before: their sequence from the event. Text holding the escape \u0000 (only
    // rows stored after this upgrade, which have their sequence already) is not valid jsonb.
    await knex.raw(`UPDATE ${t} SET sequence = event::jsonb ->> 'sequence'
 WHERE sequence IS NULL AND event IS NOT NULL AND position(E'\\\\u0000' IN event) = 0`);
    if (!shape.unique_event_id) {
      // One row per event id: a crash while dead-lettering (the row stored, the position not
      // yet acknowledged) re-delivers the event, and a second failure must not add a second row.
      // Duplicates stored before are removed first, the oldest row of each id kept.
      await knex.raw(`DELETE FROM ${t} newer USING ${t} older WHERE newer.event_id = older.event_id AND newer.id > older.id`);
      await knex.raw(`CREATE UNIQUE INDEX IF NOT EXISTS ${quoteIdent(derivedName(n.deadLetters, '_event_id_key'))} ON ${t} (event_id)`);
    }
    // The newer-state marking looks rows up by key.
    await knex.raw(`CREATE INDEX IF NOT EXISTS ${quoteIdent(derivedName(n.deadLetters, '_partition_key_idx'))} ON ${t} (partition_key)`);
  },
};
