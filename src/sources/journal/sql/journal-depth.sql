-- journal-depth: how many journal rows of a capture wait, and the age of the oldest.
--
-- Run by: status and run's /status in capture.mode trigger (src/sources/journal/setup.ts).
-- Parameters:
--   $1  text  the capture (capture.slot)
-- Placeholders, replaced with quoted identifiers only (never raw text):
--   :journal  the journal table, quoteTable(deadLetters.schema, 'journal')
-- Returns: one row.
--   depth               bigint  rows waiting (written, not yet delivered or dead-lettered)
--   oldest_age_seconds  float8  seconds since the oldest waiting row's transaction began; null when none

SELECT count(*) AS depth, extract(epoch FROM now() - min(written_at))::float8 AS oldest_age_seconds
FROM :journal WHERE capture = $1
