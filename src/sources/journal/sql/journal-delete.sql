-- journal-delete: removes journal rows whose deliveries are all delivered or dead-lettered.
--
-- Run by: run in capture.mode trigger, JournalSource.flushDeletes() (src/sources/journal/source.ts).
-- Parameters:
--   $1  bigint[]  the rows' ids
-- Placeholders, replaced with quoted identifiers only (never raw text):
--   :journal  the journal table, quoteTable(deadLetters.schema, 'journal')
-- Returns: nothing.

DELETE FROM :journal WHERE id = ANY($1::bigint[])
