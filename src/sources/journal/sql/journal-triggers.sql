-- journal-triggers: the triggers that call a capture's journal function, on whichever table
-- (partitions' clones left out: they come and go with their parent's).
--
-- Run by: setup, check, run, status and teardown, in inspectJournal() (src/sources/journal/setup.ts).
-- Parameters:
--   $1  text  the schema of the function (deadLetters.schema)
--   $2  text  the function's name
-- Returns: one row per trigger.
--   trigger  name  the trigger's name
--   relid    int   its table's OID
--   schema   name  its table's schema
--   name     name  its table's name

SELECT t.tgname AS trigger, c.oid::int AS relid, n.nspname AS schema, c.relname AS name
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_proc p ON p.oid = t.tgfoid
JOIN pg_namespace pn ON pn.oid = p.pronamespace
WHERE pn.nspname = $1 AND p.proname = $2 AND p.pronargs = 0 AND t.tgparentid = 0 AND NOT t.tgisinternal
ORDER BY n.nspname, c.relname, t.tgname
