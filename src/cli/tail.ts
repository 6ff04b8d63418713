import { createPool } from '../pg/db';
import { createChangeSource } from '../sources';
import type { ChangeConsumer } from '../sources/contract';
import { undecodableRecord } from '../delivery/undecodable';
import { structuredJson } from '../events/structured';
import { ErrorCodes, PgceError } from '../errors';
import { Lifecycle } from '../lifecycle';
import { eventBuilder } from '../events/build';
import type { Command } from './command';
import { configure, inspectAndVerify, withDatabase } from './context';

/**
 * Prints, one JSON line each, the events that changes committed from now on would produce. It
 * reads through a temporary slot of its own, so the real slot is neither read nor acknowledged.
 */
export const tailCommand: Command = {
  summary: 'print the events that would be emitted, without delivering or acknowledging',
  async run(options) {
    const { config, database } = await withDatabase(configure(options), async (client, config) => {
      // tail reads a temporary slot of its own: a lost capture slot does not concern it.
      const { state } = await inspectAndVerify(client, config, { acceptSlotLoss: true });
      // Trigger mode reads the journal without deleting: the triggers must exist to write it.
      if (config.capture.mode === 'trigger' && !state.journal?.functionExists) {
        throw new PgceError(ErrorCodes.JOURNAL, `the journal's function for capture ${config.capture.slot} does not exist yet: run \`pg-cloudevents setup\` first`);
      }
      if (config.capture.mode !== 'trigger' && !state.publication.exists) {
        throw new PgceError(ErrorCodes.REPLICATION,
          `publication ${config.capture.publication} does not exist yet: run \`pg-cloudevents setup\` first`);
      }
      return { config, database: state.database };
    });
    const build = eventBuilder(config, options.env, database);
    const printer: ChangeConsumer = {
      change: (change) => {
        process.stdout.write(`${structuredJson(build(change))}\n`);
      },
      undecodable: (change) => {
        const { eventId, raw, error } = undecodableRecord(change);
        process.stderr.write(`change ${eventId} could not be decoded (run would dead-letter it): ${error}\n  ${raw}\n`);
      },
      commit: () => undefined,
      position: () => undefined,
      reset: async () => undefined,
      stop: async () => undefined,
    };
    const pool = createPool(config.databaseUrl);
    const source = createChangeSource({
      config, pool, ownPool: pool, consumer: printer, lifecycle: new Lifecycle(), preview: `pgce_tail_${process.pid}`,
    });
    const { done } = await source.start();
    process.stderr.write(`tailing ${config.tables.map((t) => t.table).join(', ')} (Ctrl-C to stop)\n`);
    const stopped = new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    await Promise.race([stopped, done]);
    await source.stop();
    await pool.end();
    return 0;
  },
};
