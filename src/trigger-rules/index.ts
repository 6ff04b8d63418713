/**
 * Trigger rules kept in the database (README "Rules at runtime"), as a running process holds
 * them: the table (store.ts), the rule sets in force by commit LSN (trigger mode: journal id;
 * schedule.ts), and the watcher that keeps them current (watcher.ts). Every replica runs one
 * (its /status and admin API read it); the leader's router routes with its schedule.
 */
import type { Pool } from 'pg';
import type { Config, TriggerConfig } from '../config/types';
import type { Lifecycle } from '../lifecycle';
import { connect } from '../pg/db';
import { knexOn } from '../pg/schema/knex';
import { schemaNames } from '../pg/schema/names';
import { journalNames } from '../sources/journal/names';
import { RuleSchedule } from './schedule';
import { isMissingTable, RuleStore } from './store';
import { checkRows, type RowContext } from './validate';
import { RuleWatcher, type TableRulesStatus } from './watcher';

export { RuleSchedule, type RuleSet } from './schedule';
export { RuleStore, RuleWriteError, type RuleRow } from './store';
export { checkRule, checkRows, ruleKeyPath, writtenRule, type InvalidRule, type RowContext, type TableRules } from './validate';
export { LISTENER_APPLICATION_NAME, RuleWatcher, type TableRulesStatus } from './watcher';

export interface TableRulesRuntime {
  store: RuleStore;
  schedule: RuleSchedule;
  watcher: RuleWatcher;
  context: RowContext;
  stop(): Promise<void>;
}

/** What checking a rule from outside the file needs from the configuration. */
export function rowContext(config: Config): RowContext {
  return {
    captured: config.tables,
    typePrefix: config.events.typePrefix,
    allow: config.allow,
    brokers: config.brokers,
    limits: config.limits,
    fileRules: new Set((config.triggers ?? []).map((t) => t.name)),
  };
}

/** Starts watching the table (`triggersTable.enabled`); the caller stops it before ending `pool`. */
export function startTableRules(config: Config, pool: Pool, lifecycle: Lifecycle): TableRulesRuntime {
  // Trigger mode: a change's position is its journal row id, so the activation point is one too.
  const store = new RuleStore(knexOn(pool), schemaNames(config), config.capture.mode === 'trigger' ? journalNames(config).capture : undefined);
  const schedule = new RuleSchedule();
  const context = rowContext(config);
  const watcher = new RuleWatcher({
    connectionString: config.databaseUrl, store, schedule, context, lifecycle, reloadIntervalMs: config.triggersTable?.reloadIntervalMs ?? 30_000,
  });
  // Rule sets the stream has passed for good are dropped as the acknowledged position advances
  // (trigger mode: the journal ids done, `through`, since its acknowledged positions are counts).
  const onAcknowledged = ({ lsn, through }: { lsn: bigint; through?: bigint }) => schedule.acknowledged(through ?? lsn);
  lifecycle.on('capture:acknowledged', onAcknowledged);
  watcher.start();
  return {
    store, schedule, watcher, context,
    stop: async () => {
      lifecycle.off('capture:acknowledged', onAcknowledged);
      await watcher.stop();
    },
  };
}

/** The `triggers` part of /status. */
export function triggersStatus(config: Config, table: TableRulesRuntime | undefined): { file: string[]; table: TableRulesStatus | null } {
  return { file: (config.triggers ?? []).map((t) => t.name), table: table?.watcher.status() ?? null };
}

/**
 * The table's valid rules as it holds them now (`dead-letters replay` sends a table rule's dead
 * letter through the rule as it is now, untrusted). Without the table: none.
 */
export async function tableRulesOf(config: Config): Promise<TriggerConfig[]> {
  if (config.triggersTable?.enabled === false) return [];
  const client = await connect(config.databaseUrl);
  try {
    const rows = await new RuleStore(knexOn(client), schemaNames(config)).list();
    const { valid } = checkRows(rows, rowContext(config));
    return valid.map((r) => r.rule);
  } catch (err) {
    if (isMissingTable(err)) return [];
    throw err;
  } finally {
    await client.end().catch(() => undefined);
  }
}
