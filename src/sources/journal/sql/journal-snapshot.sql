-- journal-snapshot: the reader's current snapshot, the bound of the next round of pages.
--
-- Run by: run and tail in capture.mode trigger, JournalSource (src/sources/journal/source.ts).
-- Parameters: none.
-- Returns: one row.
--   snapshot  text  pg_current_snapshot() as text (xmin:xmax:xip,…)

SELECT pg_current_snapshot()::text AS snapshot
