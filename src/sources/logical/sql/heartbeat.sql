-- heartbeat: a transactional logical message in the captured database. It reaches the slot as a
-- small transaction of its own, and acknowledging its commit moves the slot forward even when the
-- captured tables are idle and other tables (or databases) fill the WAL.
--
-- Run by: run, every capture.heartbeatInterval, Heartbeat (src/sources/logical/heartbeat.ts).
-- Parameters:
--   $1  text  the message prefix (pg-cloudevents.heartbeat)
--   $2  text  the content: the time it was sent (ISO 8601)
-- Returns: one row.
--   lsn  text  the message's position (X/X)

SELECT pg_logical_emit_message(true, $1, $2)::text AS lsn;
