import { emitFunctionWarning, inspectEmitFunction, planEmitFunctionSetup, planEmitFunctionTeardown, type EmitFunctionState } from '../../pg/schema/emit-function';
import { inspectTriggerRulesTable, planTriggerRulesTeardown, type TriggerRulesTableState } from '../../pg/schema/trigger-rules-table';
import { backfillsTableDropped, inspectBackfillsTable, planBackfillsTeardown, type BackfillsTableState } from '../../pg/schema/backfills-table';
import { join } from 'node:path';
import type { Client } from 'pg';
import type { Config, TableConfig } from '../../config/types';
import { inspectDeadLetterTable, planDeadLetterTeardown, type DeadLetterTableState } from '../../delivery/dead-letters/table';
import { knexOn } from '../../pg/schema/knex';
import { ErrorCodes, PgceError } from '../../errors';
import { defaultCaptureName } from '../../config/capture-names';
import { diagnoseSlot } from './slot-guard';
import {
  inspectSlotRecord, planSlotRecordTeardown, recordCreatedSlotStep, recordFoundSlotStep, type SlotRecordState,
} from '../../pg/slot-record';
import {
  CREATE_SLOT_SQL, DROP_SLOT_SQL, PUBLICATION_SQL, PUBLICATION_TABLES_SQL, ROLE_SQL, SLOT_ELSEWHERE_SQL, SLOT_SQL,
  TABLES_SQL, WAL_LEVEL_SQL, quoteIdent, quoteLiteral, quoteTable,
} from '../../pg/catalog-sql';
import { loadSql, withIdentifiers } from '../../pg/sql-file';
import { inspectJournal, journalWarnings, planJournalSetup, planJournalTeardown, type JournalState } from '../journal/setup';

/**
 * What logical capture needs in the database (a publication over the configured tables and a
 * pgoutput slot), inspected, planned as SQL steps, then applied. `setup --dry-run` prints the plan.
 * `capture.mode: trigger` needs the journal's function and triggers instead (src/sources/journal/setup.ts):
 * the same inspection, verification and plan branch on the mode; teardown removes whatever of
 * either exists under the capture's names.
 */

const SQL_DIR = join(__dirname, 'sql');
/** DDL takes no parameters: these name their identifiers as `:publication` and `:tables`. */
const CREATE_PUBLICATION_SQL = loadSql(SQL_DIR, 'create-publication.sql');
const SET_PUBLICATION_TABLES_SQL = loadSql(SQL_DIR, 'set-publication-tables.sql');
const DROP_PUBLICATION_SQL = loadSql(SQL_DIR, 'drop-publication.sql');

export interface SetupStep {
  description: string;
  sql: string;
  params?: string[];
}

export interface TableState {
  schema: string;
  name: string;
  kind: string;
  replident: 'd' | 'n' | 'f' | 'i';
  hasPk: boolean;
  /** Generated columns, in column order: never in events, since pgoutput does not publish them. */
  generatedColumns: string[];
}

export interface SlotState {
  slot_name: string;
  plugin: string;
  database: string;
  active: boolean;
  active_pid: number | null;
  confirmed_flush_lsn: string | null;
  restart_lsn: string | null;
  current_lsn: string;
  retained_bytes: string | null;
  lag_bytes: string | null;
  /** reserved | extended | unreserved | lost (PostgreSQL 13+); lost = invalidated. */
  wal_status: string | null;
  /** Bytes of WAL that may still be written before the slot is invalidated; null without a limit. */
  safe_wal_size: string | null;
  /** max_slot_wal_keep_size in bytes; null when unlimited (-1). */
  max_slot_wal_keep_bytes: string | null;
}

export interface Inspection {
  walLevel: string;
  maxSlots: number;
  usedSlots: number;
  database: string;
  canReplicate: boolean;
  tables: Map<string, TableState>;
  publication: { exists: boolean; allTables: boolean; tables: string[] };
  /** This database's slot of that name. */
  slot: SlotState | null;
  /** A slot of that name that is not this database's (another database's, or a physical slot). */
  slotElsewhere: { database: string | null; slotType: string } | null;
  /** What pg-cloudevents remembers of the slot (slot-record.ts). */
  slotRecord: SlotRecordState;
  deadLetters: DeadLetterTableState;
  triggerRules: TriggerRulesTableState;
  /** Backfill requests and progress (README "Backfill"). */
  backfills: BackfillsTableState;
  /** pgcloudevents.emit() and the server version application events need (README "Application events"). */
  emitFunction?: EmitFunctionState;
  /** The trigger journal's objects under the capture's name (capture.mode: trigger). */
  journal?: JournalState;
}

export interface VerifyOptions {
  /** Do not report a lost slot as an error (`setup --recreate-slot` accepts it; `tail` does not read the slot). */
  acceptSlotLoss?: boolean;
}

export interface PlanOptions {
  /** Drop the slot when present, create a new one and record it: the gap in between is accepted. */
  recreateSlot?: boolean;
}

export interface Verdict {
  errors: PgceError[];
  warnings: string[];
}

const tableKey = (schema: string, name: string) => `${schema}.${name}`;

export async function inspect(client: Client, config: Config): Promise<Inspection> {
  if (config.capture.slot === '' || config.capture.publication === '') {
    throw new PgceError(ErrorCodes.INTERNAL, 'the default slot and publication names were not resolved (resolveCaptureNames) before inspecting');
  }
  const wal = (await client.query(WAL_LEVEL_SQL)).rows[0];
  const tables = await client.query(TABLES_SQL, [
    config.tables.map((t) => t.schema),
    config.tables.map((t) => t.name),
  ]);
  const role = await client.query(ROLE_SQL);
  const pub = await client.query(PUBLICATION_SQL, [config.capture.publication]);
  const pubTables = pub.rowCount
    ? (await client.query(PUBLICATION_TABLES_SQL, [config.capture.publication])).rows
    : [];
  const slot = await client.query(SLOT_SQL, [config.capture.slot]);
  const elsewhere = slot.rowCount ? undefined : (await client.query(SLOT_ELSEWHERE_SQL, [config.capture.slot])).rows[0];
  // The product's own tables through knex, on this same connection.
  const knex = knexOn(client);
  return {
    walLevel: wal.wal_level,
    maxSlots: wal.max_slots,
    usedSlots: wal.used_slots,
    database: wal.database,
    canReplicate: Boolean(role.rows[0]?.can_replicate),
    tables: new Map(
      tables.rows.map((r) => [
        tableKey(r.schema, r.name),
        { schema: r.schema, name: r.name, kind: r.kind, replident: r.replident, hasPk: r.has_pk, generatedColumns: r.generated_columns },
      ]),
    ),
    publication: {
      exists: Boolean(pub.rowCount),
      allTables: Boolean(pub.rows[0]?.puballtables),
      tables: pubTables.map((r) => tableKey(r.schema, r.name)),
    },
    slot: slot.rows[0] ?? null,
    slotElsewhere: elsewhere ? { database: elsewhere.database, slotType: elsewhere.slot_type } : null,
    slotRecord: await inspectSlotRecord(knex, config),
    deadLetters: await inspectDeadLetterTable(knex, config),
    triggerRules: await inspectTriggerRulesTable(knex, config),
    backfills: await inspectBackfillsTable(knex, config),
    emitFunction: await inspectEmitFunction(knex, config),
    journal: await inspectJournal(client, config),
  };
}

/** Problems that stop capture, and warnings worth a log line, for the configured tables. */
export function verify(state: Inspection, config: Config, options: VerifyOptions = {}): Verdict {
  if (config.capture.mode === 'trigger') return verifyJournal(state, config);
  const errors: PgceError[] = [];
  const warnings: string[] = [];
  const slotDiagnosis = diagnoseSlot(state.slot, state.slotRecord.record, state.database, config);
  if (!options.acceptSlotLoss) errors.push(...slotDiagnosis.errors);
  warnings.push(...slotDiagnosis.warnings);
  const names = checkNames(state, config);
  errors.push(...names.errors);
  warnings.push(...names.warnings);
  const appEvents = state.emitFunction ? emitFunctionWarning(state.emitFunction) : undefined;
  if (appEvents) warnings.push(appEvents);
  if (state.walLevel !== 'logical') {
    errors.push(new PgceError(ErrorCodes.WAL_LEVEL,
      `PostgreSQL has wal_level = ${state.walLevel}; logical replication needs wal_level = logical ` +
      `(ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL)`));
  }
  if (!state.canReplicate) {
    errors.push(new PgceError(ErrorCodes.REPLICATION,
      'the database user has neither REPLICATION nor SUPERUSER; grant it with ALTER ROLE <user> REPLICATION'));
  }
  if (!state.slot && state.usedSlots >= state.maxSlots) {
    errors.push(new PgceError(ErrorCodes.REPLICATION,
      `no free replication slot: ${state.usedSlots} of max_replication_slots = ${state.maxSlots} are in use`));
  }
  if (state.slot && state.slot.plugin !== 'pgoutput') {
    errors.push(new PgceError(ErrorCodes.REPLICATION,
      `replication slot "${config.capture.slot}" exists with plugin ${state.slot.plugin}, not pgoutput; ` +
      `choose another capture.slot or drop it`));
  }
  const tables = verifyTables(state, config);
  errors.push(...tables.errors);
  warnings.push(...tables.warnings);
  if (state.publication.allTables) {
    warnings.push(`publication "${config.capture.publication}" is FOR ALL TABLES; it is left as it is`);
  }
  return { errors, warnings };
}

/**
 * capture.mode: trigger needs no wal_level, REPLICATION or slot: the configured tables, as in
 * logical mode (events need a key the same way), and the journal's objects. A slot of the
 * capture's name left by logical mode keeps holding WAL: said, since nothing reads it now.
 */
function verifyJournal(state: Inspection, config: Config): Verdict {
  const { errors, warnings } = verifyTables(state, config);
  if (state.journal) warnings.push(...journalWarnings(state.journal, config));
  if (state.slot) {
    warnings.push(`replication slot "${config.capture.slot}" exists, but capture.mode is trigger: nothing reads it and PostgreSQL keeps WAL for it; ` +
      `\`teardown\` (or SELECT pg_drop_replication_slot('${config.capture.slot}')) removes it`);
  }
  return { errors, warnings };
}

/** The configured tables: they exist, are tables, have a key (or REPLICA IDENTITY FULL). */
function verifyTables(state: Inspection, config: Config): Verdict {
  const errors: PgceError[] = [];
  const warnings: string[] = [];
  const trigger = config.capture.mode === 'trigger';
  const unknown = config.tables.filter((t) => !state.tables.has(tableKey(t.schema, t.name)));
  if (unknown.length) {
    errors.push(new PgceError(ErrorCodes.UNKNOWN_TABLE,
      `unknown table${unknown.length > 1 ? 's' : ''} in database "${state.database}": ` +
      unknown.map((t) => `${t.schema}.${t.name}`).join(', ')));
  }
  for (const t of config.tables) {
    const s = state.tables.get(tableKey(t.schema, t.name));
    if (!s) continue;
    const where = `${t.schema}.${t.name}`;
    if (s.kind !== 'r' && s.kind !== 'p') {
      errors.push(new PgceError(ErrorCodes.UNKNOWN_TABLE,
        `${where} is not a table (relkind ${s.kind}); only tables and partitioned tables can be captured`));
    } else if (s.replident === 'n' || (s.replident === 'd' && !s.hasPk)) {
      // PostgreSQL itself then rejects UPDATE and DELETE on the table once it is published; the
      // journal would take them, but its events (subject, per-row order) need the same key.
      errors.push(new PgceError(ErrorCodes.UNKNOWN_TABLE,
        `${where} has no replica identity (REPLICA IDENTITY ${s.replident === 'n' ? 'NOTHING' : 'DEFAULT without a primary key'}); ` +
        (trigger ? 'its events would have no key (subject, partition key, per-row order). ' : 'PostgreSQL would reject UPDATE and DELETE on it once published. ') +
        `Add a primary key or ALTER TABLE ${quoteTable(t.schema, t.name)} REPLICA IDENTITY FULL`));
    } else if (s.replident !== 'f') {
      warnings.push(
        `${where} has REPLICA IDENTITY ${s.replident === 'd' ? 'DEFAULT' : 'USING INDEX'}: updates carry no ` +
        `old row (update_fields is null) and deletes carry only the key columns. For old rows: ` +
        `ALTER TABLE ${quoteTable(t.schema, t.name)} REPLICA IDENTITY FULL`);
    }
  }
  for (const t of config.tables) {
    const columns = state.tables.get(tableKey(t.schema, t.name))?.generatedColumns ?? [];
    if (columns.length === 0) continue;
    // Logical replication leaves generated columns out (PostgreSQL 18 can publish stored ones
    // with publish_generated_columns, which setup does not set): say so rather than let them vanish.
    warnings.push(
      `${t.schema}.${t.name} has generated columns (${columns.join(', ')}): logical replication does not ` +
      `publish generated columns, so its events never carry them${trigger ? ' (trigger mode leaves them out the same way)' : ''}; consumers recompute them from the other columns`);
  }
  return { errors, warnings };
}

/**
 * The slot's name: taken by another database (slot names are cluster-wide), and what resolving
 * the default names found (sources/logical/names.ts). `status` reports these beside the slot's diagnosis.
 */
export function checkNames(state: Inspection, config: Config): Verdict {
  return { errors: state.slotElsewhere ? [slotNameTaken(state, config)] : [], warnings: [...(config.capture.names.notes ?? [])] };
}

/** Slot names are cluster-wide: this one is another database's (or a physical slot). */
function slotNameTaken(state: Inspection, config: Config): PgceError {
  const name = config.capture.slot;
  const other = state.slotElsewhere?.database;
  const whose = other ? `belongs to database "${other}"` : `is a ${state.slotElsewhere?.slotType ?? 'physical'} slot (a standby's or a backup's)`;
  const source = config.capture.names.slot;
  const chosen = source === 'environment' ? 'PG_CLOUDEVENTS_SLOT' : source === 'file' ? 'capture.slot' : 'the default name';
  const perDatabase = defaultCaptureName(state.database);
  const suggestion = perDatabase === name ? `${name.slice(0, 61)}_2` : perDatabase;
  return new PgceError(ErrorCodes.SLOT_NAME_TAKEN,
    `replication slot "${name}" (${chosen}) ${whose}, not to this database "${state.database}": slot names are shared ` +
    `by every database of a PostgreSQL cluster. Choose another name for this database with PG_CLOUDEVENTS_SLOT ` +
    `(or capture.slot), e.g. PG_CLOUDEVENTS_SLOT=${suggestion}` +
    (suggestion === perDatabase ? ' (the per-database default, used when neither is set)' : ''),
    { detail: { slot: name, database: state.database, owner: other ?? null } });
}

function tableList(tables: readonly TableConfig[]): string {
  return tables.map((t) => quoteTable(t.schema, t.name)).join(', ');
}

/**
 * The publication and slot steps, and the slot's record. The product's tables are the schema's
 * migrations' (src/pg/schema/), which `setup` and `run` apply before these steps.
 */
export function planSetup(state: Inspection, config: Config, options: PlanOptions = {}): SetupStep[] {
  // Trigger mode: the journal's function and triggers (the journal table is a migration's).
  if (config.capture.mode === 'trigger') return state.journal ? planJournalSetup(state.journal, config) : [];
  const steps: SetupStep[] = [];
  const pub = quoteIdent(config.capture.publication);
  const wanted = config.tables.map((t) => tableKey(t.schema, t.name)).sort();
  if (!state.publication.exists) {
    steps.push({
      description: `create publication ${config.capture.publication}`,
      // Partitioned tables publish under their root's name, as the configuration names them.
      sql: withIdentifiers(CREATE_PUBLICATION_SQL, { publication: pub, tables: tableList(config.tables) }),
    });
  } else if (!state.publication.allTables && [...state.publication.tables].sort().join('\n') !== wanted.join('\n')) {
    steps.push({
      description: `set the tables of publication ${config.capture.publication}`,
      sql: withIdentifiers(SET_PUBLICATION_TABLES_SQL, { publication: pub, tables: tableList(config.tables) }),
    });
  }
  if (state.slot && options.recreateSlot) {
    if (state.slot.active) {
      throw new PgceError(ErrorCodes.REPLICATION,
        `replication slot "${config.capture.slot}" is in use by process ${state.slot.active_pid}; stop pg-cloudevents run first`);
    }
    steps.push({ description: `drop replication slot ${config.capture.slot}`, sql: DROP_SLOT_SQL, params: [config.capture.slot] });
  }
  if (!state.slot || options.recreateSlot) {
    steps.push({
      description: `create replication slot ${config.capture.slot} (pgoutput)`,
      sql: CREATE_SLOT_SQL,
      params: [config.capture.slot],
    });
    steps.push(recordCreatedSlotStep(config));
  } else if (!state.slotRecord.record) {
    steps.push(recordFoundSlotStep(config));
  }
  // After the migrations (setup runs them first): the function lives in the product's schema.
  if (state.emitFunction) steps.push(...planEmitFunctionSetup(state.emitFunction, config));
  return steps;
}

export function planTeardown(state: Inspection, config: Config): SetupStep[] {
  const steps: SetupStep[] = [];
  if (state.slot) {
    if (state.slot.active) {
      throw new PgceError(ErrorCodes.REPLICATION,
        `replication slot "${config.capture.slot}" is in use by process ${state.slot.active_pid}; stop pg-cloudevents run first`);
    }
    steps.push({ description: `drop replication slot ${config.capture.slot}`, sql: DROP_SLOT_SQL, params: [config.capture.slot] });
  }
  if (state.publication.exists) {
    steps.push({
      description: `drop publication ${config.capture.publication}`,
      sql: withIdentifiers(DROP_PUBLICATION_SQL, { publication: quoteIdent(config.capture.publication) }),
    });
  }
  if (state.emitFunction) steps.push(...planEmitFunctionTeardown(state.emitFunction, config));
  const journal = state.journal ? planJournalTeardown(state.journal, config) : { steps: [], tableDropped: false };
  steps.push(...journal.steps);
  steps.push(...planSlotRecordTeardown(state.slotRecord, config));
  const rulesSteps = planTriggerRulesTeardown(state.triggerRules, config);
  steps.push(...rulesSteps);
  steps.push(...planBackfillsTeardown(state.backfills, config));
  // The slot record, trigger rules, journal and backfills tables share the schema: once dropped they no longer keep it.
  const recordTableDropped = state.slotRecord.tableExists && state.slotRecord.otherRecords === 0;
  const dropped = (recordTableDropped ? 1 : 0) + (rulesSteps.length > 0 ? 1 : 0) + (journal.tableDropped ? 1 : 0) + (backfillsTableDropped(state.backfills) ? 1 : 0);
  steps.push(...planDeadLetterTeardown({
    ...state.deadLetters,
    otherObjectsInSchema: state.deadLetters.otherObjectsInSchema - dropped,
  }, config));
  return steps;
}

/** SQL as `--dry-run` prints it: parameters inlined as quoted literals. */
export function renderStep(step: SetupStep): string {
  let sql = step.sql;
  (step.params ?? []).forEach((p, i) => {
    sql = sql.replace(new RegExp(`\\$${i + 1}(?!\\d)`, 'g'), quoteLiteral(p));
  });
  return `-- ${step.description}\n${sql};`;
}

export async function applySteps(client: Client, steps: SetupStep[]): Promise<void> {
  for (const step of steps) {
    try {
      await client.query(step.sql, step.params);
    } catch (err) {
      // Another replica may have created the same object a moment ago: setup stays idempotent.
      if ((err as { code?: string }).code === '42710') continue;
      throw new PgceError(ErrorCodes.REPLICATION, `could not ${step.description}: ${(err as Error).message}`, { cause: err });
    }
  }
}

export function raiseErrors(verdict: Verdict): void {
  if (verdict.errors.length === 1) throw verdict.errors[0];
  if (verdict.errors.length > 1) {
    throw new PgceError(verdict.errors[0].code, verdict.errors.map((e) => e.message).join('\n'), {
      detail: { codes: verdict.errors.map((e) => e.code) },
    });
  }
}
