import type { CloudEvent } from 'cloudevents';
import type { Pool } from 'pg';
import type { Change } from '../capture/change';
import type { ChangeConsumer, ConsumerHooks } from '../delivery/consumer';
import { SLOT_SQL } from '../capture/catalog-sql';
import { createPool } from '../capture/db';
import { LeaderElector } from '../capture/leader';
import { applySteps, planSetup } from '../capture/setup';
import type { Config } from '../config/types';
import { logLifecycle } from '../delivery/log';
import { createDeadLetterHandler, DeadLetterStore } from '../delivery/dead-letters';
import { DeliveryEngine } from '../delivery/engine';
import { errorMessage } from '../errors';
import { Lifecycle } from '../lifecycle';
import { logger } from '../logger';
import { Pipeline } from '../pipeline';
import { eventBuilder } from '../runtime';
import { startServer } from '../server';
import { createMetrics, type DeliveryStats, type PipelineMetrics } from '../server/metrics';
import { StatusTracker } from '../server/status';
import { batchSizeFor, createSink } from '../sinks';
import type { Sink } from '../sinks/types';
import type { Command } from './command';
import { configure, inspectAndVerify, withDatabase } from './context';

const SLOT_POLL_MS = 15_000;

/**
 * `run`: verify, serve health/metrics/status, wait to be the leader, then capture until a signal.
 * Losing the leader lock ends the term (capture stops at once) and the replica waits again.
 */
export const runCommand: Command = {
  summary: 'capture and deliver until SIGTERM/SIGINT (creates the publication and slot when missing)',
  async run(options) {
    const config = configure(options);
    const log = logger('run');

    // Read-only checks first: a standby with a broken configuration must fail now, not at takeover.
    const database = await withDatabase(config, async (client) => {
      const { state, verdict } = await inspectAndVerify(client, config);
      for (const w of verdict.warnings) log.warn(w);
      return state.database;
    });

    const sink = createSink(config.handler, config);
    const lifecycle = new Lifecycle();
    const metrics = createMetrics(lifecycle);
    logLifecycle(lifecycle);
    const status = new StatusTracker(lifecycle, { sink: sink.describe(), sinkConfigured: true });
    const pool = createPool(config.databaseUrl);
    const deadLetters = new DeadLetterStore(pool, config.deadLetters);
    const deadLetter = createDeadLetterHandler({ config, store: deadLetters, destination: sink.describe(), lifecycle });
    let engine: DeliveryEngine | undefined;
    const deliveryStats = () => engine?.stats() ?? { inFlight: 0, buffered: 0, bufferedBytes: 0 };
    metrics.bindDeliveryStats(deliveryStats);
    const slotState = slotStatePoller(config, pool, metrics, deadLetters, deliveryStats);
    const server = await startServer({ port: config.server.port, metrics, status, extraStatus: slotState });
    log.info({ port: server.port }, 'health, metrics and status server listening');
    const poll = setInterval(() => slotState().catch(() => undefined), SLOT_POLL_MS);
    poll.unref();

    const stopping = new AbortController();
    const onSignal = (signal: string) => {
      if (stopping.signal.aborted) return;
      log.info({ signal }, 'stopping: finishing the delivery in flight, then acknowledging');
      stopping.abort();
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);

    const elector = config.leader.enabled
      ? new LeaderElector({ connectionString: config.databaseUrl, slot: config.capture.slot, pollIntervalMs: config.leader.pollIntervalMs, lifecycle })
      : undefined;
    let failure: unknown;
    try {
      await elector?.start();
      while (!stopping.signal.aborted) {
        if (elector) {
          try {
            await elector.waitForLeadership(stopping.signal);
          } catch (err) {
            if (stopping.signal.aborted) break;
            throw err;
          }
        }
        const lost = await captureTerm({
          config, pool, lifecycle, sink, database, env: options.env, elector, stopping: stopping.signal,
          consumer: (hooks, buildEvent) => {
            engine = new DeliveryEngine({
              sink, policy: config.delivery, lifecycle, hooks, buildEvent, deadLetter,
              batchSize: batchSizeFor(config.handler, config),
            });
            return engine;
          },
        });
        if (!lost) break;
      }
    } catch (err) {
      failure = err;
      log.error({ err: errorMessage(err) }, 'capture failed');
    }
    clearInterval(poll);
    await Promise.allSettled([elector?.stop(), server.close(), sink.close(), deadLetter.close()]);
    await pool.end().catch(() => undefined);
    if (failure) throw failure;
    log.info('stopped');
    return 0;
  },
};

interface TermOptions {
  config: Config;
  pool: Pool;
  lifecycle: Lifecycle;
  sink: Sink;
  database: string;
  env: NodeJS.ProcessEnv;
  elector?: LeaderElector;
  stopping: AbortSignal;
  consumer(hooks: ConsumerHooks, buildEvent: (change: Change) => CloudEvent<unknown>): ChangeConsumer;
}

/** One leadership term. Resolves true when leadership was lost (wait again), false on a signal. */
async function captureTerm(opts: TermOptions): Promise<boolean> {
  const { config, pool, lifecycle, sink, elector, stopping } = opts;
  const log = logger('run');
  // Set-up belongs to the leader: replicas starting together must not race to create the slot.
  await withDatabase(config, async (client) => {
    const { state } = await inspectAndVerify(client, config);
    const steps = planSetup(state, config);
    await applySteps(client, steps);
    for (const s of steps) log.info(`set-up: ${s.description}`);
  });
  const buildEvent = eventBuilder(config, opts.env, opts.database);
  const pipeline = new Pipeline({
    config,
    pool,
    lifecycle,
    consumer: (hooks) => opts.consumer(hooks, buildEvent),
  });
  let lostLeadership = false;
  let onLost: ((err: Error) => void) | undefined;
  const lost = new Promise<void>((resolve) => {
    onLost = (err) => {
      lostLeadership = true;
      log.warn({ err: errorMessage(err) }, 'lost the leader lock: stopping capture at once');
      resolve();
    };
    elector?.once('lost', onLost);
  });
  const signalled = new Promise<void>((resolve) => {
    if (stopping.aborted) resolve();
    stopping.addEventListener('abort', () => resolve(), { once: true });
  });
  try {
    const { done } = await pipeline.start();
    log.info({ sink: sink.describe(), tables: config.tables.map((t) => t.table) }, 'capturing');
    await Promise.race([signalled, lost, done]);
  } finally {
    if (onLost) elector?.off('lost', onLost);
    await pipeline.stop().catch((err) => log.warn({ err: errorMessage(err) }, 'stopping capture'));
  }
  return lostLeadership && !stopping.aborted;
}

/** Slot and dead-letter figures for /status and the metrics, read from PostgreSQL. */
function slotStatePoller(
  config: Config, pool: Pool, metrics: PipelineMetrics, deadLetters: DeadLetterStore, delivery: () => DeliveryStats,
) {
  return async () => {
    const { rows } = await pool.query(SLOT_SQL, [config.capture.slot]);
    const deadLetterCount = await deadLetters.count().catch(() => null);
    if (deadLetterCount !== null) metrics.setDeadLetterCount(deadLetterCount);
    const stats = delivery();
    const oldest = stats.oldestUndeliveredCommitTime;
    const deliveryReport = {
      inFlight: stats.inFlight, buffered: stats.buffered, bufferedBytes: stats.bufferedBytes,
      oldestUndeliveredAgeSeconds: oldest ? (Date.now() - oldest.getTime()) / 1000 : null,
    };
    const slot = rows[0];
    if (!slot) return { slot: null, deadLetters: deadLetterCount, delivery: deliveryReport };
    const retained = slot.retained_bytes === null ? null : Number(slot.retained_bytes);
    if (retained !== null) metrics.setSlotRetainedBytes(retained);
    return {
      deadLetters: deadLetterCount,
      delivery: deliveryReport,
      slot: {
        name: slot.slot_name, active: slot.active, confirmedFlushLsn: slot.confirmed_flush_lsn,
        retainedWalBytes: retained, lagBytes: slot.lag_bytes === null ? null : Number(slot.lag_bytes),
      },
    };
  };
}
