import { applySteps, inspect, planTeardown, renderStep } from '../sources/logical/setup';
import { deadLetterTeardownWarning } from '../delivery/dead-letters/table';
import { triggerRulesTeardownWarning } from '../pg/schema/trigger-rules-table';
import { backfillsTeardownWarning } from '../pg/schema/backfills-table';
import type { Command } from './command';
import { configure, withDatabase } from './context';

export const teardownCommand: Command = {
  summary: 'drop the replication slot and publication that setup created (never touches table data)',
  options: [{ flags: '--dry-run', description: 'print the SQL instead of running it' }],
  async run(options) {
    // Needs no tables: it removes what setup created under the slot and publication names.
    return withDatabase(configure(options, { tables: false }), async (client, config) => {
      const state = await inspect(client, config);
      const steps = planTeardown(state, config);
      for (const kept of [deadLetterTeardownWarning(state.deadLetters, config), triggerRulesTeardownWarning(state.triggerRules, config), backfillsTeardownWarning(state.backfills, config)]) {
        if (kept) options.report.warn(kept);
      }
      if (options.dryRun) {
        process.stdout.write(steps.length ? `${steps.map(renderStep).join('\n')}\n` : '-- nothing to do\n');
        return 0;
      }
      await applySteps(client, steps);
      process.stdout.write(steps.length ? `${steps.map((s) => `done: ${s.description}`).join('\n')}\n` : 'nothing to do\n');
      return 0;
    });
  },
};
