import { quoteIdent, quoteLiteral, quoteTable } from '../../pg/catalog-sql';
import type { JournalNames } from './names';

/**
 * The DDL `setup` generates for a journal capture (README "Capture modes", docs/journal.md). In
 * TypeScript rather than .sql files: a function body holds `;`, and every name in it is the
 * capture's (quoted here, never raw input).
 */

/**
 * The session settings the row's text depends on, pinned for the function's duration (restored
 * when it returns, so the application's session is untouched): the same as the replication
 * session's (REPLICATION_SESSION_OPTIONS), so each value reads as logical mode reads it.
 * SECURITY DEFINER with a fixed search_path: writers of the captured tables need no grant on the
 * journal, and nothing in their search_path can stand in for what the function calls.
 */
const FUNCTION_SETTINGS = [
  "SET search_path = pg_catalog, pg_temp",
  "SET DateStyle = 'ISO'",
  "SET TimeZone = 'UTC'",
  "SET IntervalStyle = 'iso_8601'",
  'SET extra_float_digits = 3',
  "SET bytea_output = 'hex'",
].join('\n');

/** The function's body: compared with pg_proc.prosrc to tell whether setup must replace it. */
export function journalFunctionBody(names: JournalNames): string {
  const journal = quoteTable(names.schema.schema, names.schema.journal);
  const capture = quoteLiteral(names.capture);
  // TG_ARGV[0]: the configured table's OID (a partition's change is journaled under its root).
  // One NOTIFY per transaction and channel at most: PostgreSQL folds identical ones at commit.
  return `
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO ${journal} (capture, relid, op, new_row) VALUES (${capture}, TG_ARGV[0]::oid, 'I', row_to_json(NEW));
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO ${journal} (capture, relid, op, old_row, new_row) VALUES (${capture}, TG_ARGV[0]::oid, 'U', row_to_json(OLD), row_to_json(NEW));
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO ${journal} (capture, relid, op, old_row) VALUES (${capture}, TG_ARGV[0]::oid, 'D', row_to_json(OLD));
  ELSE
    INSERT INTO ${journal} (capture, relid, op) VALUES (${capture}, TG_ARGV[0]::oid, 'T');
  END IF;
  PERFORM pg_notify(${quoteLiteral(names.channel)}, '');
  RETURN NULL;
END
`;
}

export function functionName(names: JournalNames): string {
  return `${quoteIdent(names.schema.schema)}.${quoteIdent(names.function)}`;
}

export function createFunctionSql(names: JournalNames): string {
  return `CREATE OR REPLACE FUNCTION ${functionName(names)}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
${FUNCTION_SETTINGS}
AS $journal$${journalFunctionBody(names)}$journal$`;
}

/** Both triggers of one table, replaced as one step (DROP … IF EXISTS first: PostgreSQL 13 has no CREATE OR REPLACE TRIGGER). */
export function createTriggersSql(names: JournalNames, schema: string, table: string, relid: number): string {
  const target = quoteTable(schema, table);
  const fn = functionName(names);
  const arg = quoteLiteral(String(relid));
  return [
    `DROP TRIGGER IF EXISTS ${quoteIdent(names.rowTrigger)} ON ${target}`,
    `DROP TRIGGER IF EXISTS ${quoteIdent(names.truncateTrigger)} ON ${target}`,
    `CREATE TRIGGER ${quoteIdent(names.rowTrigger)} AFTER INSERT OR UPDATE OR DELETE ON ${target} FOR EACH ROW EXECUTE FUNCTION ${fn}(${arg})`,
    `CREATE TRIGGER ${quoteIdent(names.truncateTrigger)} AFTER TRUNCATE ON ${target} FOR EACH STATEMENT EXECUTE FUNCTION ${fn}(${arg})`,
  ].join(';\n');
}

export function dropTriggerSql(trigger: string, schema: string, table: string): string {
  return `DROP TRIGGER IF EXISTS ${quoteIdent(trigger)} ON ${quoteTable(schema, table)}`;
}

export function dropFunctionSql(names: JournalNames): string {
  return `DROP FUNCTION IF EXISTS ${functionName(names)}()`;
}
