import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from 'pg';
import { quoteIdent } from '../../pg/catalog-sql';
import type { SetupStep } from '../../sources/logical/setup';
import type { Config, DeadLettersConfig } from '../../config/types';
import { ConfigError } from '../../errors';

/**
 * The dead-letter table's DDL lives in numbered files beside this module (sql/000001.sql, …;
 * graphile-worker's migrations pattern). tsc does not copy them: the build runs
 * scripts/copy-assets.js, which puts them next to the compiled module, where they are read.
 */
const SQL_FILES = ['000001.sql', '000002.sql'];

// `:name`, but not the `::type` of a cast.
const PLACEHOLDER = /(?<![:\w]):([a-z_]+)\b/g;

export interface DeadLetterTableState {
  schemaExists: boolean;
  tableExists: boolean;
  /** True when the table has no row (or does not exist). EXISTS, not count(*): `run` inspects it at every start. */
  empty: boolean;
  /** Relations in the schema other than the table, its sequence and its indexes. */
  otherObjectsInSchema: number;
  /** The table has the shape of every numbered file (false when it is missing). */
  upToDate: boolean;
}

/** Schema and table existence, for `setup`/`run` (create when missing) and `teardown`. */
export const DEAD_LETTER_STATE_SQL = `SELECT
  EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS schema_exists,
  to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL AS table_exists,
  (SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND c.relname <> $2) AS other_tables`;

/**
 * What 000002.sql adds, read from the catalog: `event` text and nullable, the columns, the check,
 * a unique index on event_id alone and an index led by partition_key. $3 is the check's name.
 */
export const DEAD_LETTER_SHAPE_SQL = `WITH rel AS (SELECT to_regclass(format('%I.%I', $1::text, $2::text)) AS oid),
cols AS (SELECT a.attname::text AS name, a.atttypid, a.attnotnull, a.attnum FROM pg_attribute a, rel
  WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped)
SELECT
  EXISTS (SELECT 1 FROM cols WHERE name = 'event' AND atttypid = 'text'::regtype AND NOT attnotnull) AS event_text,
  (SELECT count(*)::int FROM cols WHERE name IN ('raw_change', 'sequence', 'superseded_by_sequence')) AS new_columns,
  EXISTS (SELECT 1 FROM pg_constraint k, rel WHERE k.conrelid = rel.oid AND k.contype = 'c' AND k.conname = $3) AS event_check,
  EXISTS (SELECT 1 FROM pg_index i, rel, cols WHERE i.indrelid = rel.oid AND i.indisunique AND i.indnatts = 1
    AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indkey[0] = cols.attnum AND cols.name = 'event_id') AS unique_event_id,
  EXISTS (SELECT 1 FROM pg_index i, rel, cols WHERE i.indrelid = rel.oid
    AND i.indkey[0] = cols.attnum AND cols.name = 'partition_key') AS partition_key_index`;

export async function inspectDeadLetterTable(client: Pick<Client, 'query'>, config: Config): Promise<DeadLetterTableState> {
  const { schema, table } = config.deadLetters;
  const { rows } = await client.query(DEAD_LETTER_STATE_SQL, [schema, table]);
  const state = rows[0];
  let empty = true;
  let upToDate = false;
  if (state.table_exists) {
    const res = await client.query(`SELECT EXISTS (SELECT 1 FROM ${quoteIdent(schema)}.${quoteIdent(table)}) AS any`);
    empty = !res.rows[0].any;
    const shape = (await client.query(DEAD_LETTER_SHAPE_SQL, [schema, table, checkName(config.deadLetters)])).rows[0];
    upToDate = shape.event_text && shape.new_columns === 3 && shape.event_check && shape.unique_event_id && shape.partition_key_index;
  }
  return {
    schemaExists: state.schema_exists,
    tableExists: state.table_exists,
    empty,
    otherObjectsInSchema: state.other_tables,
    upToDate,
  };
}

/** `<table><suffix>` within PostgreSQL's 63 bytes: cutting the table part keeps the suffix readable. */
function derivedName(table: string, suffix: string): string {
  let name = table.slice(0, 63 - suffix.length);
  while (Buffer.byteLength(name) + suffix.length > 63) name = name.slice(0, -1);
  return `${name}${suffix}`;
}

function checkName(dl: DeadLettersConfig): string {
  return derivedName(dl.table, '_event_or_raw_change');
}

/** The identifiers the .sql files may name, each already quoted. */
export function ddlIdentifiers(dl: DeadLettersConfig): Record<string, string> {
  return {
    schema: quoteIdent(dl.schema),
    table: quoteIdent(dl.table),
    created_at_index: quoteIdent(derivedName(dl.table, '_created_at_idx')),
    event_id_index: quoteIdent(derivedName(dl.table, '_event_id_key')),
    partition_key_index: quoteIdent(derivedName(dl.table, '_partition_key_idx')),
    event_check: quoteIdent(checkName(dl)),
  };
}

/** A .sql file's statements with comments removed and placeholders replaced. */
export function renderDdl(text: string, identifiers: Record<string, string>): string {
  const body = text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n')
    .replace(PLACEHOLDER, (_m, name: string) => {
      const value = identifiers[name];
      if (value === undefined) throw new Error(`dead-letter DDL names an unknown placeholder :${name}`);
      return value;
    });
  // One step's SQL; `renderStep` adds the final semicolon itself.
  return body.replace(/\n{3,}/g, '\n\n').trim().replace(/;$/, '');
}

let cachedFiles: { name: string; text: string }[] | undefined;

function sqlFiles(): { name: string; text: string }[] {
  if (cachedFiles) return cachedFiles;
  const dir = join(__dirname, 'sql');
  cachedFiles = SQL_FILES.map((name) => {
    try {
      return { name, text: readFileSync(join(dir, name), 'utf8') };
    } catch (err) {
      throw new Error(
        `${join(dir, name)} is missing: the build must copy the .sql files next to the compiled code ` +
          `(node scripts/copy-assets.js after tsc) (${(err as Error).message})`,
      );
    }
  });
  return cachedFiles;
}

/**
 * What `setup` (and `run`) must do for the dead-letter table: when it is missing, the numbered
 * files in order; when it exists without the shape of the later files (an install set up by an
 * older version), those files; nothing when it is up to date. Each file is one idempotent step.
 */
export function planDeadLetterSetup(state: Pick<DeadLetterTableState, 'tableExists' | 'upToDate'>, config: Config): SetupStep[] {
  if (state.tableExists && state.upToDate) return [];
  checkSchemaName(config.deadLetters.schema);
  const ids = ddlIdentifiers(config.deadLetters);
  const where = `${config.deadLetters.schema}.${config.deadLetters.table}`;
  // 000001 creates the table (IF NOT EXISTS); the later files bring an existing one up to date.
  const files = state.tableExists ? sqlFiles().slice(1) : sqlFiles();
  return files.map(({ name, text }) => ({
    description: `${state.tableExists ? 'upgrade' : 'create'} dead-letter table ${where} (${name})`,
    sql: renderDdl(text, ids),
  }));
}

/** PostgreSQL refuses CREATE SCHEMA pg_…: "The prefix "pg_" is reserved for system schemas". */
export function checkSchemaName(schema: string): void {
  if (schema.startsWith('pg_')) {
    throw new ConfigError([
      `deadLetters.schema: ${JSON.stringify(schema)} starts with pg_, which PostgreSQL reserves for system schemas; choose another (e.g. pgcloudevents)`,
    ]);
  }
}

/**
 * What `teardown` may remove: the table only while it is empty (dead letters are events nobody
 * received; they are never dropped silently), and its schema only when nothing else lives there.
 * `teardownWarning` says why a table was kept.
 */
export function planDeadLetterTeardown(state: DeadLetterTableState, config: Config): SetupStep[] {
  const { schema, table } = config.deadLetters;
  if (!state.tableExists || !state.empty) return [];
  const steps: SetupStep[] = [
    { description: `drop dead-letter table ${schema}.${table} (empty)`, sql: `DROP TABLE IF EXISTS ${quoteIdent(schema)}.${quoteIdent(table)}` },
  ];
  if (state.schemaExists && state.otherObjectsInSchema === 0 && schema !== 'public') {
    // RESTRICT (the default): fails rather than dropping anything we did not create.
    steps.push({ description: `drop schema ${schema} (empty)`, sql: `DROP SCHEMA IF EXISTS ${quoteIdent(schema)}` });
  }
  return steps;
}

export function deadLetterTeardownWarning(state: DeadLetterTableState, config: Config): string | undefined {
  if (!state.tableExists || state.empty) return undefined;
  const { schema, table } = config.deadLetters;
  return `dead-letter table ${schema}.${table} holds dead letters and is kept; ` +
    `replay or purge them (pg-cloudevents dead-letters), then run teardown again to drop it`;
}
