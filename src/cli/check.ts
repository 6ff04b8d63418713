import type { SlotState } from '../sources/logical/setup';
import { formatBytes } from '../sources/logical/slot-guard';
import { createSink, requireSink } from '../sinks';
import { knexOn } from '../pg/schema/knex';
import { pendingMigrations, schemaBehindWarning } from '../pg/schema/migrate';
import { resolveBrokerConn } from '../config/broker-conn';
import { journalNames } from '../sources/journal/names';
import type { Command } from './command';
import { configure, inspectAndVerify, withDatabase } from './context';

/** Validates configuration, the database and the sink; each failure names what is wrong. */
export const checkCommand: Command = {
  summary: 'validate configuration and connectivity; exits non-zero naming the problem',
  async run(options) {
    const config = await resolveBrokerConn(configure(options));
    // The same refusal as run's, before anything connects.
    requireSink(config);
    const out = (line: string) => process.stdout.write(`${line}\n`);
    out(`ok   configuration (${config.tables.length} table${config.tables.length === 1 ? '' : 's'}, handler ${config.handler})`);
    // The slot and publication names as resolved on the connection (their default is per database).
    const warnings = await withDatabase(config, async (client, config) => {
      const { state, verdict } = await inspectAndVerify(client, config);
      if (config.capture.mode === 'trigger') {
        // The journal needs neither wal_level = logical nor REPLICATION (README "Capture modes").
        out(`ok   database "${state.database}": capture.mode trigger (wal_level ${state.walLevel}; no replication needed)`);
        for (const t of config.tables) out(`ok   table ${t.schema}.${t.name} → ${t.app}.${t.model}`);
        const j = journalNames(config);
        const journal = state.journal!;
        out(`${journal.functionCurrent ? 'ok  ' : 'todo'} journal function ${j.schema.schema}.${j.function}()${journal.functionCurrent ? '' : ' (created by setup or run)'}`);
        const missing = journal.tables.filter((t) => !journal.triggers.some((tr) => tr.relid === t.relid && tr.trigger === j.rowTrigger));
        out(`${missing.length ? 'todo' : 'ok  '} journal triggers ${j.rowTrigger}${missing.length ? ` (missing on ${missing.map((t) => `${t.schema}.${t.name}`).join(', ')}: created by setup or run)` : ` on ${journal.tables.length} table(s)`}`);
      } else {
        out(`ok   database "${state.database}": wal_level = logical, replication allowed`);
        for (const t of config.tables) out(`ok   table ${t.schema}.${t.name} → ${t.app}.${t.model}`);
        out(`${state.publication.exists ? 'ok  ' : 'todo'} publication ${config.capture.publication}${state.publication.exists ? '' : ' (created by setup or run)'}`);
        // A lost slot (dropped, invalidated) is an error above; warnings below name retained WAL.
        out(`${state.slot ? 'ok  ' : 'todo'} replication slot ${config.capture.slot}${state.slot ? ` (${slotSummary(state.slot)})` : ' (created by setup or run)'}`);
      }
      const pending = await pendingMigrations(knexOn(client), config);
      out(`${pending.length ? 'todo' : 'ok  '} schema ${config.deadLetters.schema}${pending.length ? ` (${pending.length} migration(s) pending: applied by setup or run)` : ' (current)'}`);
      const behind = schemaBehindWarning(pending, config);
      return behind ? [...verdict.warnings, behind] : verdict.warnings;
    });
    for (const w of warnings) options.report.warn(w);
    const sink = createSink(config.handler, config);
    try {
      await sink.check?.();
      out(`ok   sink ${sink.describe()}`);
    } finally {
      await sink.close();
    }
    return 0;
  },
};

function slotSummary(slot: SlotState): string {
  const parts = [`wal_status ${slot.wal_status ?? 'unknown'}`];
  if (slot.retained_bytes !== null) parts.push(`retains ${formatBytes(Number(slot.retained_bytes))} of WAL`);
  if (slot.safe_wal_size !== null) parts.push(`${formatBytes(Number(slot.safe_wal_size))} before max_slot_wal_keep_size invalidates it`);
  return parts.join(', ');
}
