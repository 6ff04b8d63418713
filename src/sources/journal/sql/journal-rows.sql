-- journal-rows: journal rows by capture: this capture's (undelivered changes teardown abandons)
-- and the others' (the table stays while they have some).
--
-- Run by: teardown, in inspectJournal() (src/sources/journal/setup.ts), when the table exists.
-- Parameters:
--   $1  text  the capture (capture.slot)
-- Placeholders, replaced with quoted identifiers only (never raw text):
--   :journal  the journal table, quoteTable(deadLetters.schema, 'journal')
-- Returns: one row.
--   own     bigint  this capture's rows
--   others  bigint  the other captures' rows

SELECT count(*) FILTER (WHERE capture = $1) AS own, count(*) FILTER (WHERE capture <> $1) AS others FROM :journal
