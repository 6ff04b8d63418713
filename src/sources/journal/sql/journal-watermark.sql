-- journal-watermark: a backfill's watermark written into the journal (README "Backfill",
-- docs/journal.md "Watermarks"): a row of its own kind, op W, naming no table (relid 0), the token
-- as a JSON string in new_row. Run on its own, so it is its own short transaction: the reader
-- meets it in the round its transaction becomes visible in, at its id among that round's rows,
-- hands no change over for it, and deletes it once acknowledged like every other row. User tables
-- are not touched.
--
-- Run by: run (the leader), around each backfill chunk, JournalSource.writeWatermark()
-- (src/sources/journal/source.ts).
-- Parameters:
--   $1  text  the capture (capture.slot)
--   $2  text  the watermark's token (the backfill chooses it; unguessable per term)
-- Placeholders, replaced with quoted identifiers only (never raw text):
--   :journal  the journal table, quoteTable(deadLetters.schema, 'journal')
-- Returns: nothing.

INSERT INTO :journal (capture, relid, op, new_row) VALUES ($1, 0, 'W', to_json($2::text))
