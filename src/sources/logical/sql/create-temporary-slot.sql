-- create-temporary-slot: a replication command (Streaming Replication Protocol), sent on the
-- replication connection: a pgoutput slot that vanishes with the connection.
--
-- Run by: tail, ReplicationStream with temporarySlot (src/sources/logical/stream.ts).
-- Parameters: none (replication commands take no parameters).
-- Placeholders, replaced with quoted identifiers only (never raw text):
--   :slot  the slot's name, quoteIdent
-- Returns: one row (slot_name, consistent_point, snapshot_name, output_plugin); not read.

CREATE_REPLICATION_SLOT :slot TEMPORARY LOGICAL pgoutput NOEXPORT_SNAPSHOT;
