-- set-publication-tables: makes an existing publication publish exactly the configured tables.
--
-- Run by: setup (and run), a step of planSetup() (src/sources/logical/setup.ts), when the
-- publication exists with other tables; `setup --dry-run` prints it.
-- Parameters: none (DDL takes no parameters).
-- Placeholders, replaced with quoted identifiers only (never raw text):
--   :publication  capture.publication, quoteIdent
--   :tables       the configured tables, each quoteTable ("schema"."name"), comma-separated
-- Returns: nothing.

ALTER PUBLICATION :publication SET TABLE :tables;
