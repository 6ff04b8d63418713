import type { Client } from 'pg';
import type { Config } from '../config/types';
import { checkNames, inspect, verify, type Inspection } from '../sources/logical/setup';
import { journalDepth } from '../sources/journal/setup';
import { journalNames } from '../sources/journal/names';
import { diagnoseSlot, formatBytes } from '../sources/logical/slot-guard';
import { DeadLetterStore } from '../delivery/dead-letters';
import { knexOn } from '../pg/schema/knex';
import { pendingMigrations, schemaBehindWarning } from '../pg/schema/migrate';
import type { Command } from './command';
import { configure, withDatabase } from './context';

const num = (text: string | null) => (text === null ? null : Number(text));

/**
 * The durable state of capture as PostgreSQL sees it (a running process also serves GET /status).
 * Exits 1 when the slot is lost (the same PGCE_ERR_SLOT_LOST that stops `run`), after the report.
 */
export const statusCommand: Command = {
  summary: 'capture mode, slot lag, WAL status, last acknowledged position (trigger mode: journal depth and age), dead-letter count',
  options: [{ flags: '--json', description: 'print the report as JSON' }],
  async run(options) {
    // Needs only DATABASE_URL: without tables the report lists none.
    const report = await withDatabase(configure(options, { tables: false }), async (client, config) => {
      const state = await inspect(client, config);
      const slot = state.slot;
      const record = state.slotRecord.record;
      const diagnosis = diagnoseSlot(slot, record, state.database, config);
      const names = checkNames(state, config);
      const schemaBehind = schemaBehindWarning(await pendingMigrations(knexOn(client), config), config);
      if (config.capture.mode === 'trigger') return journalReport(client, config, state, schemaBehind);
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
              lagBytes: num(slot.lag_bytes),
              retainedWalBytes: num(slot.retained_bytes),
              walStatus: slot.wal_status,
              safeWalSizeBytes: num(slot.safe_wal_size),
              maxSlotWalKeepBytes: num(slot.max_slot_wal_keep_bytes),
            }
          : { name: config.capture.slot, exists: false },
        recorded: record
          ? {
              createdLsn: record.createdLsn,
              createdAt: record.createdAt.toISOString(),
              acknowledgedLsn: record.acknowledgedLsn,
              acknowledgedAt: record.acknowledgedAt?.toISOString() ?? null,
            }
          : null,
        problems: [...names.errors, ...diagnosis.errors].map((e) => ({ code: e.code, message: e.message })),
        warnings: [...names.warnings, ...diagnosis.warnings, ...(schemaBehind ? [schemaBehind] : [])],
        tables: config.tables.map((t) => `${t.schema}.${t.name}`),
        deadLetters: {
          table: `${config.deadLetters.schema}.${config.deadLetters.table}`,
          count: state.deadLetters.tableExists ? await new DeadLetterStore(knexOn(client), config.deadLetters).count() : null,
        },
      };
    });
    const exitCode = report.problems.length ? 1 : 0;
    if (options.json) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      return exitCode;
    }
    if ('journal' in report) {
      process.stdout.write(`${journalLines(report as JournalReport).join('\n')}\n`);
      return exitCode;
    }
    const s = report.slot as Record<string, unknown>;
    const missing = s.exists === false;
    const lines = [
      `capture mode:        ${report.mode} (pgoutput)`,
      `database:            ${report.database} (wal_level ${report.walLevel})`,
      `publication:         ${report.publication.name}${report.publication.exists ? ` (${report.publication.tables.join(', ') || 'no tables'})` : ' (missing: run setup)'}`,
      `slot:                ${s.name}${missing ? (report.recorded || report.problems.length ? ' (missing: see the problem below)' : ' (missing: run setup)') : s.active ? ` (active, pid ${s.activePid})` : ' (inactive)'}`,
    ];
    if (!missing) {
      const safe = s.safeWalSizeBytes as number | null;
      lines.push(
        `wal status:          ${s.walStatus}${safe === null ? '' : ` (${formatBytes(safe)} of WAL before max_slot_wal_keep_size invalidates it)`}`,
        `last acknowledged:   ${s.lastAcknowledgedLsn}`,
        `lag:                 ${s.lagBytes} bytes behind ${s.currentWalLsn}`,
        `retained WAL:        ${s.retainedWalBytes === null ? 'none: the slot no longer reserves WAL (invalidated)' : `${s.retainedWalBytes} bytes`}`,
      );
    }
    if (report.recorded) {
      const r = report.recorded;
      lines.push(
        `recorded:            ${r.createdLsn ? `created at ${r.createdLsn} on ${r.createdAt}` : `found and recorded on ${r.createdAt}`}` +
          `${r.acknowledgedLsn ? `; last acknowledged ${r.acknowledgedLsn} at ${r.acknowledgedAt}` : ''}`,
      );
    }
    lines.push(`dead letters:        ${report.deadLetters.count === null ? 'table missing: run setup' : report.deadLetters.count} (${report.deadLetters.table})`);
    for (const w of report.warnings) lines.push(`warning:             ${w}`);
    for (const p of report.problems) lines.push(`problem:             ${p.message} [${p.code}]`);
    process.stdout.write(`${lines.join('\n')}\n`);
    return exitCode;
  },
};

// --- capture.mode: trigger ---------------------------------------------------------------------

type JournalReport = Awaited<ReturnType<typeof journalReport>>;

/** The journal's state instead of a slot's: its function, triggers, depth and the age of its oldest row. */
async function journalReport(client: Client, config: Config, state: Inspection, schemaBehind: string | undefined) {
  const names = journalNames(config);
  const journal = state.journal!;
  const depth = journal.tableExists ? await journalDepth((sql, params) => client.query(sql, params), config) : null;
  const verdict = verify(state, config);
  return {
    mode: config.capture.mode,
    database: state.database,
    walLevel: state.walLevel,
    journal: {
      table: `${names.schema.schema}.${names.schema.journal}`,
      exists: journal.tableExists,
      capture: names.capture,
      function: journal.functionExists ? `${names.schema.schema}.${names.function}()` : null,
      channel: names.channel,
      triggers: journal.triggers.map((t) => `${t.schema}.${t.name}: ${t.trigger}`),
      depth: depth?.depth ?? null,
      oldestAgeSeconds: depth?.oldestAgeSeconds ?? null,
    },
    problems: verdict.errors.map((e) => ({ code: e.code, message: e.message })),
    warnings: [...verdict.warnings, ...(schemaBehind ? [schemaBehind] : [])],
    tables: config.tables.map((t) => `${t.schema}.${t.name}`),
    deadLetters: {
      table: `${config.deadLetters.schema}.${config.deadLetters.table}`,
      count: state.deadLetters.tableExists ? await new DeadLetterStore(knexOn(client), config.deadLetters).count() : null,
    },
  };
}

function journalLines(report: JournalReport): string[] {
  const j = report.journal;
  const lines = [
    `capture mode:        trigger (journal)`,
    `database:            ${report.database} (wal_level ${report.walLevel}; not needed in trigger mode)`,
    `journal:             ${j.table}${j.exists ? '' : ' (missing: run setup)'}, capture ${j.capture}`,
    `journal function:    ${j.function ?? 'missing: run setup'} (NOTIFY channel ${j.channel})`,
    `journal triggers:    ${j.triggers.length ? j.triggers.join(', ') : 'none: run setup'}`,
    `journal depth:       ${j.depth === null ? 'unknown' : `${j.depth} change(s) waiting`}${j.oldestAgeSeconds === null ? '' : `, the oldest ${j.oldestAgeSeconds.toFixed(1)} s old`}`,
    `dead letters:        ${report.deadLetters.count === null ? 'table missing: run setup' : report.deadLetters.count} (${report.deadLetters.table})`,
  ];
  for (const w of report.warnings) lines.push(`warning:             ${w}`);
  for (const p of report.problems) lines.push(`problem:             ${p.message} [${p.code}]`);
  return lines;
}
