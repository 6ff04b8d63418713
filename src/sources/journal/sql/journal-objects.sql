-- journal-objects: what exists of a capture's journal: the journal table, the capture's trigger
-- function (and its body, to tell whether it is the current one), and other captures' journal
-- functions beside it (the table and the schema stay while they exist).
--
-- Run by: setup, check, run, status and teardown, in inspectJournal() (src/sources/journal/setup.ts).
-- Parameters:
--   $1  text  the schema (deadLetters.schema)
--   $2  text  the journal table's name
--   $3  text  the capture's trigger function's name
-- Returns: one row.
--   table_exists     bool  the journal table exists
--   function_source  text  the capture's function's body (prosrc), or null when it does not exist
--   other_functions  int   other captures' journal functions in the schema (trigger functions named *_journal)

SELECT to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL AS table_exists,
  (SELECT p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = $1 AND p.proname = $3 AND p.pronargs = 0) AS function_source,
  (SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = $1 AND p.proname <> $3 AND p.proname LIKE '%\_journal'
      AND p.prorettype = 'trigger'::regtype) AS other_functions
