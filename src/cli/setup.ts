import { applySteps, planSetup, renderStep, type Inspection } from '../sources/logical/setup';
import { describeGap, lastKnownPosition } from '../sources/logical/slot-guard';
import { inspectSlotRecord, slotRecordTableName } from '../pg/slot-record';
import { knexOn } from '../pg/schema/knex';
import { migrateSchema, pendingMigrations } from '../pg/schema/migrate';
import { schemaNames } from '../pg/schema/names';
import { BackfillStore, requestOnAdd, tablesJoining } from '../sources/backfill';
import type { Command } from './command';
import { configure, inspectAndVerify, withDatabase } from './context';

/** setup prints what it did on stdout itself. */
const QUIET = { info: () => undefined };

export const setupCommand: Command = {
  summary: 'create the publication, replication slot, and migrate the pgcloudevents schema (slot record, dead letters) (idempotent)',
  options: [
    { flags: '--dry-run', description: 'print the SQL instead of running it' },
    { flags: '--recreate-slot', description: 'replace a lost (dropped, invalidated) slot with a new one, accepting the gap it prints' },
  ],
  async run(options) {
    const recreateSlot = Boolean(options.recreateSlot);
    return withDatabase(configure(options), async (client, config) => {
      // --recreate-slot is how an operator accepts a lost slot: its loss is then no error.
      const { state, verdict } = await inspectAndVerify(client, config, { acceptSlotLoss: recreateSlot });
      for (const w of verdict.warnings) options.report.warn(w);
      const steps = planSetup(state, config, { recreateSlot });
      // tables[].backfill: onAdd — the tables this set-up adds to the publication.
      const joining = tablesJoining(config, state);
      const gap = recreateSlot ? acceptedGap(state) : undefined;
      const schema = config.deadLetters.schema;
      if (options.dryRun) {
        // Migrations are knex code, not SQL text: named, in the order they would run.
        const pending = await pendingMigrations(knexOn(client), config);
        const migrations = pending.map((name) => `-- migrate schema ${schema}: ${name}\n`).join('');
        const backfills = joining.map((t) => `-- request a backfill of ${t.schema}.${t.name} (backfill: onAdd)\n`).join('');
        const text = steps.length || pending.length ? `${migrations}${steps.map((s) => `${renderStep(s)}\n`).join('')}${backfills}` : '-- nothing to do: set-up is complete\n';
        process.stdout.write(gap ? `-- accepts the gap: ${gap}\n${text}` : text);
        return 0;
      }
      // The schema first: the steps record the slot in its table.
      const { ran } = await migrateSchema(config, QUIET);
      await applySteps(client, steps);
      // After the publication lists them: the leader watches their live changes while it backfills.
      const requested = await requestOnAdd(new BackfillStore(knexOn(client), schemaNames(config), config.capture.slot), joining);
      const done = [
        ...ran.map((name) => `migrate schema ${schema}: ${name}`), ...steps.map((s) => s.description),
        ...requested.map((r) => `requested ${r} (backfill: onAdd)`),
      ];
      process.stdout.write(
        done.length
          ? `${done.map((d) => `done: ${d}`).join('\n')}\n`
          : `nothing to do: schema ${schema} is current; publication ${config.capture.publication}, slot ${config.capture.slot}, ` +
            `slot record ${slotRecordTableName(config)} and dead-letter table ${config.deadLetters.schema}.${config.deadLetters.table} are in place\n`,
      );
      if (gap) {
        const begins = (await inspectSlotRecord(knexOn(client), config)).record?.createdLsn;
        const line = `accepted the gap: ${gap}${begins ? ` and before LSN ${begins}, where the new slot begins,` : ''} will not be delivered`;
        // The outcome the operator asked for, so on stdout with the steps, not a warning.
        process.stdout.write(`${line}\n`);
      }
      return 0;
    });
  },
};

/** What replacing the slot gives up, from what was known before: undefined when nothing was there. */
function acceptedGap(state: Inspection): string | undefined {
  const position = lastKnownPosition(state.slot, state.slotRecord.record);
  if (!state.slot && !state.slotRecord.record) return undefined;
  return describeGap(position);
}
