-- 000001: the dead-letter table (issue 3, "Dead letters").
--
-- Placeholders, replaced by ddl.ts with quoteIdent-quoted identifiers only (never raw text):
--   :schema            deadLetters.schema        (default pg_cloudevents)
--   :table             deadLetters.table         (default dead_letters)
--   :created_at_index  <table>_created_at_idx    (index names live in the table's schema)
-- Idempotent: `setup` and `run` apply it whenever the table is missing.
--
-- One row per event that failed for good. `event` is the whole CloudEvent in structured JSON
-- (CloudEvents JSON format §3), so `dead-letters replay` re-sends exactly what failed.

CREATE SCHEMA IF NOT EXISTS :schema;

CREATE TABLE IF NOT EXISTS :schema.:table (
  id               bigserial PRIMARY KEY,
  event_id         text        NOT NULL,
  source           text,
  type             text,
  subject          text,
  partition_key    text,
  event            jsonb       NOT NULL,
  error            text        NOT NULL,
  status           int,
  attempts         int         NOT NULL,
  first_attempt_at timestamptz NOT NULL,
  last_attempt_at  timestamptz NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  commit_lsn       pg_lsn
);

-- `purge --before` and `list` (oldest first) scan by age.
CREATE INDEX IF NOT EXISTS :created_at_index ON :schema.:table (created_at);
