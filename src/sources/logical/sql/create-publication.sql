-- create-publication: the publication over the configured tables. Partitioned tables publish
-- under their root's name, as the configuration names them.
--
-- Run by: setup (and run, which applies the same plan), a step of planSetup()
-- (src/sources/logical/setup.ts); `setup --dry-run` prints it.
-- Parameters: none (DDL takes no parameters).
-- Placeholders, replaced with quoted identifiers only (never raw text):
--   :publication  capture.publication, quoteIdent
--   :tables       the configured tables, each quoteTable ("schema"."name"), comma-separated
-- Returns: nothing.

CREATE PUBLICATION :publication FOR TABLE :tables WITH (publish = 'insert, update, delete, truncate', publish_via_partition_root = true);
