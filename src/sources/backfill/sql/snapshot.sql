-- snapshot: the first statement of a chunk's REPEATABLE READ transaction, so it fixes the
-- snapshot the chunk is read in; also which transactions that snapshot lists in progress
-- although their commit is already written (PostgreSQL makes a commit visible a moment after
-- writing it): the chunk is read again a moment later when there are any (docs/backfill.md).
--
-- Run by: run (the leader), the backfill's chunk reader (src/sources/backfill/chunks.ts).
-- Parameters: none.
-- Returns: one row.
--   snapshot  text    pg_current_snapshot(): xmin:xmax:xip,…
--   settling  text[]  in-progress xids of the snapshot whose commit is already recorded

SELECT pg_current_snapshot()::text AS snapshot,
  ARRAY(SELECT x::text FROM pg_snapshot_xip(pg_current_snapshot()) AS x WHERE pg_xact_status(x) = 'committed') AS settling
