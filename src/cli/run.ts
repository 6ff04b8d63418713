import { Heartbeat } from '../capture/heartbeat';
import { CaptureSource } from '../capture/source';
import { createPool } from '../capture/db';
import { SLOT_SQL } from '../capture/catalog-sql';
import { applySteps, planSetup } from '../capture/setup';
import { logLifecycle } from '../delivery/log';
import { SequentialConsumer } from '../delivery/sequential';
import { errorMessage } from '../errors';
import { Lifecycle } from '../lifecycle';
import { logger } from '../logger';
import { eventBuilder } from '../runtime';
import { startServer } from '../server';
import { createMetrics } from '../server/metrics';
import { StatusTracker } from '../server/status';
import { createSink } from '../sinks';
import type { Command } from './command';
import { configure, inspectAndVerify, withDatabase } from './context';

const SLOT_POLL_MS = 15_000;

export const runCommand: Command = {
  summary: 'capture and deliver until SIGTERM/SIGINT (creates the publication and slot when missing)',
  async run(options) {
    const config = configure(options);
    const log = logger('run');

    const database = await withDatabase(config, async (client) => {
      const { state, verdict } = await inspectAndVerify(client, config);
      for (const w of verdict.warnings) log.warn(w);
      const steps = planSetup(state, config);
      await applySteps(client, steps);
      for (const s of steps) log.info(`set-up: ${s.description}`);
      return state.database;
    });

    const sink = createSink(config.handler, config);
    const lifecycle = new Lifecycle();
    const metrics = createMetrics(lifecycle);
    logLifecycle(lifecycle);
    const status = new StatusTracker(lifecycle, { sink: sink.describe(), sinkConfigured: true });
    const pool = createPool(config.databaseUrl);
    const slotState = async () => {
      const { rows } = await pool.query(SLOT_SQL, [config.capture.slot]);
      const slot = rows[0];
      if (!slot) return { slot: null };
      const retained = slot.retained_bytes === null ? null : Number(slot.retained_bytes);
      if (retained !== null) metrics.setSlotRetainedBytes(retained);
      return {
        slot: {
          name: slot.slot_name, active: slot.active, confirmedFlushLsn: slot.confirmed_flush_lsn,
          retainedWalBytes: retained, lagBytes: slot.lag_bytes === null ? null : Number(slot.lag_bytes),
        },
      };
    };
    const server = await startServer({ port: config.server.port, metrics, status, extraStatus: slotState });
    log.info({ port: server.port }, 'health, metrics and status server listening');

    let source: CaptureSource | undefined;
    const consumer = new SequentialConsumer({
      sink,
      policy: config.delivery,
      lifecycle,
      buildEvent: eventBuilder(config, options.env, database),
      hooks: {
        acknowledge: (lsn, idle) => source?.acknowledge(lsn, idle),
        onPressure: (full) => source?.setPressure(full),
      },
    });
    source = new CaptureSource({ config, pool, consumer, lifecycle });

    const heartbeat = new Heartbeat(pool, config.capture.heartbeatIntervalMs, lifecycle);
    const poll = setInterval(() => slotState().catch(() => undefined), SLOT_POLL_MS);
    poll.unref();
    let signalled = false;
    const stopped = new Promise<void>((resolve) => {
      const onSignal = (signal: string) => {
        if (signalled) return;
        signalled = true;
        log.info({ signal }, 'stopping: finishing the delivery in flight, then acknowledging');
        resolve();
      };
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
    });

    let failure: unknown;
    try {
      const { done } = await source.start();
      heartbeat.start();
      log.info({ sink: sink.describe(), tables: config.tables.map((t) => t.table) }, 'capturing');
      await Promise.race([stopped, done]);
    } catch (err) {
      failure = err;
      log.error({ err: errorMessage(err) }, 'capture failed');
    }
    clearInterval(poll);
    heartbeat.stop();
    await source.stop().catch((err) => log.warn({ err: errorMessage(err) }, 'stopping capture'));
    await Promise.allSettled([server.close(), sink.close(), pool.end()]);
    if (failure) throw failure;
    log.info('stopped');
    return 0;
  },
};
