import { inspect } from '../capture/setup';
import { DeadLetterStore } from '../delivery/dead-letters';
import type { Command } from './command';
import { configure, withDatabase } from './context';

/** The durable state of capture as PostgreSQL sees it (a running process also serves GET /status). */
export const statusCommand: Command = {
  summary: 'capture mode, slot lag, last acknowledged position (--json for machines)',
  async run(options) {
    const config = configure(options);
    const report = await withDatabase(config, async (client) => {
      const state = await inspect(client, config);
      const slot = state.slot;
      return {
        mode: config.capture.mode,
        database: state.database,
        walLevel: state.walLevel,
        publication: { name: config.capture.publication, exists: state.publication.exists, tables: state.publication.tables },
        slot: slot
          ? {
              name: slot.slot_name,
              active: slot.active,
              activePid: slot.active_pid,
              lastAcknowledgedLsn: slot.confirmed_flush_lsn,
              restartLsn: slot.restart_lsn,
              currentWalLsn: slot.current_lsn,
              lagBytes: slot.lag_bytes === null ? null : Number(slot.lag_bytes),
              retainedWalBytes: slot.retained_bytes === null ? null : Number(slot.retained_bytes),
            }
          : { name: config.capture.slot, exists: false },
        tables: config.tables.map((t) => `${t.schema}.${t.name}`),
        deadLetters: {
          table: `${config.deadLetters.schema}.${config.deadLetters.table}`,
          count: state.deadLetters.tableExists ? await new DeadLetterStore(client, config.deadLetters).count() : null,
        },
      };
    });
    if (options.json) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      return 0;
    }
    const s = report.slot as Record<string, unknown>;
    const lines = [
      `capture mode:        ${report.mode} (pgoutput)`,
      `database:            ${report.database} (wal_level ${report.walLevel})`,
      `publication:         ${report.publication.name}${report.publication.exists ? ` (${report.publication.tables.join(', ') || 'no tables'})` : ' (missing: run setup)'}`,
      `slot:                ${s.name}${s.exists === false ? ' (missing: run setup)' : s.active ? ` (active, pid ${s.activePid})` : ' (inactive)'}`,
    ];
    if (s.exists !== false) {
      lines.push(
        `last acknowledged:   ${s.lastAcknowledgedLsn}`,
        `lag:                 ${s.lagBytes} bytes behind ${s.currentWalLsn}`,
        `retained WAL:        ${s.retainedWalBytes} bytes`,
      );
    }
    lines.push(`dead letters:        ${report.deadLetters.count === null ? 'table missing: run setup' : report.deadLetters.count} (${report.deadLetters.table})`);
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  },
};
