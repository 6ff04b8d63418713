-- version: the server's version, as the replication connection reports it; backfill in logical
-- mode needs PostgreSQL 14 or later (pgoutput sends logical messages, the watermarks, from 14 on;
-- supportsMessages() in src/sources/logical/stream.ts decides).
--
-- Run by: run (the leader), before each backfill (src/sources/backfill/chunks.ts).
-- Parameters: none.
-- Returns: one row.
--   version  text  current_setting('server_version'), e.g. `15.4 (Debian 15.4-1)`

SELECT current_setting('server_version') AS version
