-- start-replication: a replication command (Streaming Replication Protocol), sent on the
-- replication connection: stream the slot's changes with pgoutput protocol version 1, logical
-- messages included on PostgreSQL 14+ (application events; the heartbeat's WAL advances the slot
-- either way).
--
-- Run by: run and tail, ReplicationStream.start() (src/sources/logical/stream.ts).
-- Parameters: none (replication commands take no parameters).
-- Placeholders, replaced with text built by the stream, never raw input:
--   :slot               the slot's name, quoteIdent
--   :start_lsn          where to start, formatLsn (hex X/X; 0/0 = the slot's confirmed position)
--   :publication_names  the publication's name, quoteIdent then quoteLiteral (pgoutput splits
--                       the option's value as a list of identifiers)
--   :messages           `, messages 'true'` on PostgreSQL 14+, empty on 13 (pgoutput refuses the
--                       option there)
-- Returns: CopyBothResponse, then the stream (XLogData and keepalives in CopyData).

START_REPLICATION SLOT :slot LOGICAL :start_lsn (proto_version '1':messages, publication_names :publication_names);
