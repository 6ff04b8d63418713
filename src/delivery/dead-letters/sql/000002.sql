-- 000002: byte-exact events, one row per event id, undecodable changes, newer state (README
-- "Dead letters").
--
-- Placeholders, replaced by ddl.ts with quoteIdent-quoted identifiers only (never raw text):
--   :schema, :table           as in 000001.sql
--   :event_id_index           <table>_event_id_key          (unique: one row per event id)
--   :partition_key_index      <table>_partition_key_idx     (the newer-state marking looks rows up by key)
--   :event_check              <table>_event_or_raw_change   (a row holds an event or a raw change)
-- `setup` and `run` apply it after 000001.sql when the catalog shows the table lacks it (ddl.ts
-- DEAD_LETTER_SHAPE_SQL). It is sent as one multi-statement query, which PostgreSQL runs as one
-- transaction, and every statement is idempotent: a second run (another replica, a later
-- `setup`) changes nothing. The first ALTER takes the table's exclusive lock, so two runs at once
-- follow each other.

-- The event as the exact JSON text that was sent: jsonb reorders keys, drops duplicate ones and
-- cannot hold the escape \u0000. Rows stored before keep jsonb's rendering of what they held.
-- On a column already text, the cast changes nothing and rewrites nothing.
ALTER TABLE :schema.:table ALTER COLUMN event TYPE text USING event::text;

-- An undecodable change has no event: its raw row and the reason are kept instead.
ALTER TABLE :schema.:table ALTER COLUMN event DROP NOT NULL;
ALTER TABLE :schema.:table ADD COLUMN IF NOT EXISTS raw_change text;
ALTER TABLE :schema.:table DROP CONSTRAINT IF EXISTS :event_check,
  ADD CONSTRAINT :event_check CHECK (event IS NOT NULL OR raw_change IS NOT NULL);

-- The event's `sequence` extension (a string-sortable position in the change stream) and the
-- newest sequence of the same partition key delivered after it (`replay` warns about those).
ALTER TABLE :schema.:table ADD COLUMN IF NOT EXISTS sequence text;
ALTER TABLE :schema.:table ADD COLUMN IF NOT EXISTS superseded_by_sequence text;
-- Rows stored before this file: their sequence from the event. Text holding the escape \u0000
-- (only rows stored after this file, which have their sequence already) is not valid jsonb.
UPDATE :schema.:table SET sequence = event::jsonb ->> 'sequence'
 WHERE sequence IS NULL AND event IS NOT NULL AND position(E'\\u0000' IN event) = 0;

-- One row per event id: a crash while dead-lettering (the row stored, the position not yet
-- acknowledged) re-delivers the event, and a second failure must not add a second row.
-- Duplicates stored before this file are removed first, the oldest row of each id kept.
DELETE FROM :schema.:table newer USING :schema.:table older
 WHERE newer.event_id = older.event_id AND newer.id > older.id;
CREATE UNIQUE INDEX IF NOT EXISTS :event_id_index ON :schema.:table (event_id);
CREATE INDEX IF NOT EXISTS :partition_key_index ON :schema.:table (partition_key);
