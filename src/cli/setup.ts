import { applySteps, planSetup, renderStep } from '../capture/setup';
import { logger } from '../logger';
import type { Command } from './command';
import { configure, inspectAndVerify, withDatabase } from './context';

export const setupCommand: Command = {
  summary: 'create the publication and replication slot capture needs (idempotent; --dry-run prints the SQL)',
  async run(options) {
    const config = configure(options);
    const log = logger('setup');
    return withDatabase(config, async (client) => {
      const { state, verdict } = await inspectAndVerify(client, config);
      for (const w of verdict.warnings) log.warn(w);
      const steps = planSetup(state, config);
      if (options.dryRun) {
        process.stdout.write(steps.length ? `${steps.map(renderStep).join('\n')}\n` : '-- nothing to do: set-up is complete\n');
        return 0;
      }
      await applySteps(client, steps);
      process.stdout.write(
        steps.length
          ? `${steps.map((s) => `done: ${s.description}`).join('\n')}\n`
          : `nothing to do: publication ${config.capture.publication}, slot ${config.capture.slot} and dead-letter table ${config.deadLetters.schema}.${config.deadLetters.table} are in place\n`,
      );
      return 0;
    });
  },
};
