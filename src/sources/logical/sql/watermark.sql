-- watermark: a non-transactional logical message marking a point of the stream for a backfill
-- (README "Backfill"): it is decoded at its own position, outside every transaction, so changes
-- committed before it arrive before it and those committed after it arrive after it. A
-- non-transactional message is not flushed by itself (PostgreSQL before 17), and the walsender
-- sends only flushed WAL: the empty transactional message beside it makes this statement's
-- transaction commit, which flushes both at once instead of after wal_writer_delay. The source
-- ignores that one (transactional, with the watermark prefix).
--
-- Run by: run (the leader), around each backfill chunk, CaptureSource.writeWatermark.
-- Parameters:
--   $1  text  the message prefix (pg-cloudevents.watermark)
--   $2  text  the content: the watermark's token (the backfill chooses it; unguessable per term)
-- Returns: one row.
--   lsn  text  the message's position (X/X)

SELECT pg_logical_emit_message(false, $1, $2)::text AS lsn, pg_logical_emit_message(true, $1, '') AS flush
