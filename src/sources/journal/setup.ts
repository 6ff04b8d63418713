import { join } from 'node:path';
import type { Client } from 'pg';
import type { Config } from '../../config/types';
import { quoteTable } from '../../pg/catalog-sql';
import { loadSql, withIdentifiers } from '../../pg/sql-file';
import type { SetupStep } from '../logical/setup';
import { createFunctionSql, createTriggersSql, dropFunctionSql, dropTriggerSql, journalFunctionBody } from './ddl';
import { journalNames, type JournalNames } from './names';

const SQL_DIR = join(__dirname, 'sql');
const OBJECTS_SQL = loadSql(SQL_DIR, 'journal-objects.sql');
const TRIGGERS_SQL = loadSql(SQL_DIR, 'journal-triggers.sql');
const ROWS_SQL = loadSql(SQL_DIR, 'journal-rows.sql');
const DEPTH_SQL = loadSql(SQL_DIR, 'journal-depth.sql');
const TABLE_RELIDS_SQL = loadSql(SQL_DIR, 'table-relids.sql');

/** What exists of a capture's journal (setup, teardown, check, status). */
export interface JournalState {
  tableExists: boolean;
  /** The capture's trigger function exists; `functionCurrent`: with the body setup would write. */
  functionExists: boolean;
  functionCurrent: boolean;
  /** Other captures' journal functions in the schema: the journal table stays while they exist. */
  otherFunctions: number;
  /** Triggers calling the capture's function, on whichever table. */
  triggers: { trigger: string; relid: number; schema: string; name: string }[];
  /** The configured tables that exist, with their OIDs. */
  tables: { schema: string; name: string; relid: number }[];
  /** Rows of this capture (undelivered changes) and of other captures; null when the table is missing. */
  ownRows: number | null;
  otherRows: number | null;
}

export async function inspectJournal(client: Pick<Client, 'query'>, config: Config): Promise<JournalState> {
  const names = journalNames(config);
  const { schema, journal } = names.schema;
  const objects = (await client.query(OBJECTS_SQL, [schema, journal, names.function])).rows[0];
  const triggers = (await client.query(TRIGGERS_SQL, [schema, names.function])).rows;
  const tables = (await client.query(TABLE_RELIDS_SQL, [config.tables.map((t) => t.schema), config.tables.map((t) => t.name)])).rows;
  let ownRows: number | null = null;
  let otherRows: number | null = null;
  if (objects.table_exists) {
    const rows = (await client.query(withIdentifiers(ROWS_SQL, { journal: quoteTable(schema, journal) }), [names.capture])).rows[0];
    ownRows = Number(rows.own);
    otherRows = Number(rows.others);
  }
  return {
    tableExists: objects.table_exists,
    functionExists: objects.function_source !== null,
    functionCurrent: objects.function_source === journalFunctionBody(names),
    otherFunctions: objects.other_functions,
    triggers,
    tables,
    ownRows,
    otherRows,
  };
}

/**
 * setup in trigger mode (after the migrations, which make the journal table): the capture's
 * function when missing or not current, both triggers on each configured table that lacks them,
 * and the triggers on tables no longer configured dropped (as the publication's tables are set).
 */
export function planJournalSetup(state: JournalState, config: Config): SetupStep[] {
  const names = journalNames(config);
  const steps: SetupStep[] = [];
  if (!state.functionCurrent) {
    steps.push({ description: `${state.functionExists ? 'replace' : 'create'} journal function ${names.schema.schema}.${names.function}()`, sql: createFunctionSql(names) });
  }
  const has = (relid: number, trigger: string) => state.triggers.some((t) => t.relid === relid && t.trigger === trigger);
  for (const t of state.tables) {
    if (has(t.relid, names.rowTrigger) && has(t.relid, names.truncateTrigger)) continue;
    steps.push({ description: `create journal triggers ${names.rowTrigger} and ${names.truncateTrigger} on ${t.schema}.${t.name}`, sql: createTriggersSql(names, t.schema, t.name, t.relid) });
  }
  const wanted = new Set(state.tables.map((t) => t.relid));
  for (const t of state.triggers) {
    if (wanted.has(t.relid)) continue;
    steps.push({ description: `drop journal trigger ${t.trigger} on ${t.schema}.${t.name} (no longer captured)`, sql: dropTriggerSql(t.trigger, t.schema, t.name) });
  }
  return steps;
}

/**
 * teardown: every trigger calling the capture's function, the function, the capture's rows
 * (changes not delivered yet are abandoned, as dropping a slot abandons them), and the journal
 * table when no other capture uses it. Returns the steps and whether the table is dropped.
 */
export function planJournalTeardown(state: JournalState, config: Config): { steps: SetupStep[]; tableDropped: boolean } {
  const names = journalNames(config);
  const steps: SetupStep[] = state.triggers.map((t) => ({
    description: `drop journal trigger ${t.trigger} on ${t.schema}.${t.name}`, sql: dropTriggerSql(t.trigger, t.schema, t.name),
  }));
  if (state.functionExists) steps.push({ description: `drop journal function ${names.schema.schema}.${names.function}()`, sql: dropFunctionSql(names) });
  const table = quoteTable(names.schema.schema, names.schema.journal);
  const tableDropped = state.tableExists && state.otherRows === 0 && state.otherFunctions === 0;
  if (tableDropped) {
    steps.push({ description: `drop journal table ${names.schema.schema}.${names.schema.journal}${state.ownRows ? ` (abandoning ${state.ownRows} undelivered change(s) of ${names.capture})` : ' (empty)'}`, sql: `DROP TABLE IF EXISTS ${table}` });
  } else if (state.tableExists && state.ownRows) {
    steps.push({
      description: `delete the ${state.ownRows} undelivered journal row(s) of ${names.capture}`,
      sql: `DELETE FROM ${table} WHERE capture = $1`, params: [names.capture],
    });
  }
  return { steps, tableDropped };
}

/** Problems and warnings of a journal capture (check, run, setup): none of logical mode's. */
export function journalWarnings(state: JournalState, config: Config): string[] {
  const names = journalNames(config);
  const warnings: string[] = [];
  if (state.functionExists && !state.functionCurrent) {
    warnings.push(`journal function ${names.schema.schema}.${names.function}() is not the one this version writes; setup (or run) replaces it`);
  }
  return warnings;
}

export interface JournalDepth {
  /** Rows waiting: written, not yet delivered or dead-lettered. */
  depth: number;
  /** Seconds since the oldest waiting row's transaction began; null when none waits. */
  oldestAgeSeconds: number | null;
}

export async function journalDepth(query: (sql: string, params: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>, config: Config): Promise<JournalDepth> {
  const names: JournalNames = journalNames(config);
  const sql = withIdentifiers(DEPTH_SQL, { journal: quoteTable(names.schema.schema, names.schema.journal) });
  const row = (await query(sql, [names.capture])).rows[0];
  return { depth: Number(row.depth), oldestAgeSeconds: row.oldest_age_seconds === null ? null : Number(row.oldest_age_seconds) };
}

export { journalNames };
