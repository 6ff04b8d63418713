-- version: the server's version number; backfill needs PostgreSQL 14 or later (pgoutput sends
-- logical messages, the watermarks, from version 14 on).
--
-- Run by: run (the leader), before each backfill (src/sources/backfill/chunks.ts).
-- Parameters: none.
-- Returns: one row.
--   version  int  server_version_num

SELECT current_setting('server_version_num')::int AS version
