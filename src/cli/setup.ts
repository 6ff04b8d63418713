import { applySteps, planSetup, renderStep, type Inspection } from '../sources/logical/setup';
import { describeGap, lastKnownPosition } from '../sources/logical/slot-guard';
import { inspectSlotRecord, slotRecordTableName } from '../pg/slot-record';
import type { Command } from './command';
import { configure, inspectAndVerify, withDatabase } from './context';

export const setupCommand: Command = {
  summary: 'create the publication, replication slot, slot record and dead-letter table capture needs (idempotent)',
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
      const gap = recreateSlot ? acceptedGap(state) : undefined;
      if (options.dryRun) {
        const text = steps.length ? `${steps.map(renderStep).join('\n')}\n` : '-- nothing to do: set-up is complete\n';
        process.stdout.write(gap ? `-- accepts the gap: ${gap}\n${text}` : text);
        return 0;
      }
      await applySteps(client, steps);
      process.stdout.write(
        steps.length
          ? `${steps.map((s) => `done: ${s.description}`).join('\n')}\n`
          : `nothing to do: publication ${config.capture.publication}, slot ${config.capture.slot}, ` +
            `slot record ${slotRecordTableName(config)} and dead-letter table ${config.deadLetters.schema}.${config.deadLetters.table} are in place\n`,
      );
      if (gap) {
        const begins = (await inspectSlotRecord(client, config)).record?.createdLsn;
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
