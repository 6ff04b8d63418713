-- journal-read: one page of the journal rows whose transactions committed between two snapshots of
-- the reader: invisible in the previous one, visible in the current one (docs/journal.md says why
-- this never skips a transaction that commits late and keeps each row's changes in order).
--
-- Run by: run and tail in capture.mode trigger, JournalSource.readPage() (src/sources/journal/source.ts).
-- Parameters:
--   $1  text         the capture (capture.slot)
--   $2  pg_snapshot  the previous snapshot (`1:1:` at start: nothing seen yet)
--   $3  pg_snapshot  the current snapshot (taken before the first page of this round)
--   $4  bigint       the last id of the previous page of this round (0 for the first)
--   $5  int          rows per page (capture.batchSize)
-- Placeholders, replaced with quoted identifiers only (never raw text):
--   :journal  the journal table, quoteTable(deadLetters.schema, 'journal')
-- Returns: up to $5 rows in id order.
--   id          text         the row's id (a bigint as text)
--   txid        text         the writing transaction (xid8 as text)
--   relid       int          the captured table's OID
--   op          text         I, U, D or T
--   old_row     text         row_to_json(OLD) as written, or null
--   new_row     text         row_to_json(NEW) as written, or null
--   written_at  timestamptz  the writing transaction's start

-- The table is qualified (j.): a bare `id` in ORDER BY would name the output column, id as text,
-- and order the pages as strings (1, 10, 100, 2, …), which the `id > $4` cursor would then skip.

SELECT j.id::text AS id, j.txid::text AS txid, j.relid::int AS relid, j.op::text AS op,
  j.old_row::text AS old_row, j.new_row::text AS new_row, j.written_at
FROM :journal AS j
WHERE j.capture = $1
  AND j.txid >= pg_snapshot_xmin($2::pg_snapshot)
  AND NOT pg_visible_in_snapshot(j.txid, $2::pg_snapshot)
  AND pg_visible_in_snapshot(j.txid, $3::pg_snapshot)
  AND j.id > $4::bigint
ORDER BY j.id
LIMIT $5
