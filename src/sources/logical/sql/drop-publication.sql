-- drop-publication: drops the publication.
--
-- Run by: teardown, a step of planTeardown() (src/sources/logical/setup.ts); `--dry-run` prints it.
-- Parameters: none (DDL takes no parameters).
-- Placeholders, replaced with quoted identifiers only (never raw text):
--   :publication  capture.publication, quoteIdent
-- Returns: nothing.

DROP PUBLICATION IF EXISTS :publication;
