import type { CloudEvent } from 'cloudevents';
import type { Pool } from 'pg';
import type { Change } from '../sources/change';
import type { ChangeConsumer, ConsumerHooks } from '../delivery/consumer';
import { createPool } from '../pg/db';
import { knexOn } from '../pg/schema/knex';
import { LeaderElector } from '../pg/leader';
import { applySteps, planSetup } from '../sources/logical/setup';
import { migrateSchema } from '../pg/schema/migrate';
import type { Config } from '../config/types';
import { logLifecycle } from '../delivery/log';
import { createDeadLetterHandler, DeadLetterStore } from '../delivery/dead-letters';
import { DeliveryEngine } from '../delivery/engine';
import { errorMessage } from '../errors';
import { Lifecycle } from '../lifecycle';
import { logger } from '../logger';
import { Pipeline } from '../pipeline';
import { eventBuilder } from '../events/build';
import { startServer } from '../server';
import { createMetrics } from '../server/metrics';
import { SlotHealth } from '../server/slot-health';
import { StatusTracker } from '../server/status';
import { batchSizeFor, createSink, requireSink } from '../sinks';
import type { Sink } from '../sinks/types';
import type { Command } from './command';
import { configure, inspectAndVerify, withDatabase } from './context';
import { StopRequested, unlessStopped, watchSignals } from './signals';

/** Closing connections and servers after capture stopped may take this long, then we exit anyway. */
const CLOSE_TIMEOUT_MS = 3_000;
/** After the first signal the process exits at the latest this long after the grace period. */
const SHUTDOWN_MARGIN_MS = 5_000;

/**
 * `run`: verify, serve health/metrics/status, wait to be the leader, then capture until a signal.
 * Losing the leader lock ends the term (capture stops at once) and the replica waits again. A
 * signal lets the sends in flight finish within `delivery.shutdownGracePeriod`; a final capture
 * error stops at once. Either way every connection is closed before `run` returns.
 */
export const runCommand: Command = {
  summary: 'capture and deliver until SIGTERM/SIGINT (creates the publication and slot when missing)',
  // A pod's logs are collected and parsed: JSON lines, not text.
  output: 'log',
  async run(options) {
    const config = configure(options);
    requireSink(config);
    const log = logger('run');
    const graceMs = config.delivery.shutdownGracePeriodMs ?? 0;
    // From here on a signal is honoured, even while connecting or waiting for a lock.
    const signals = watchSignals(log, graceMs + CLOSE_TIMEOUT_MS + SHUTDOWN_MARGIN_MS);
    const closers: (() => Promise<unknown>)[] = [];
    let failure: unknown;
    try {
      try {
        await runUntilStopped(config, options.env, signals.signal, closers);
      } catch (err) {
        if (!(err instanceof StopRequested)) {
          failure = err;
          log.error({ err: errorMessage(err) }, 'capture failed');
        }
      }
      await closeAll(closers, log);
    } finally {
      signals.dispose();
    }
    if (failure) throw failure;
    log.info('stopped');
    return 0;
  },
};

/**
 * Everything `run` opened, closed one after another in the reverse order of opening (what was
 * opened last may still need what was opened before it: the slot record's last write needs the
 * pool), each given at most CLOSE_TIMEOUT_MS.
 */
async function closeAll(closers: (() => Promise<unknown>)[], log: ReturnType<typeof logger>): Promise<void> {
  for (const close of closers.splice(0).reverse()) {
    try {
      await withDeadline(close(), CLOSE_TIMEOUT_MS);
    } catch (err) {
      log.warn({ err: errorMessage(err) }, 'closing');
    }
  }
}

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

async function runUntilStopped(
  loaded: Config, env: NodeJS.ProcessEnv, stopping: AbortSignal, closers: (() => Promise<unknown>)[],
): Promise<void> {
  const log = logger('run');
  // Read-only checks first: a standby with a broken configuration must fail now, not at takeover.
  const { config, database } = await unlessStopped(withDatabase(loaded, async (client, config) => {
    const { state, verdict } = await inspectAndVerify(client, config);
    for (const w of verdict.warnings) log.warn(w);
    return { config, database: state.database };
  }), stopping);

  const sink = createSink(config.handler, config);
  closers.push(() => sink.close());
  const lifecycle = new Lifecycle();
  const metrics = createMetrics(lifecycle);
  logLifecycle(lifecycle);
  const status = new StatusTracker(lifecycle, { sink: sink.describe(), sinkConfigured: true });
  // Without election this replica is the leader; with it, starting until the lock is answered.
  lifecycle.emit('leader:role', { role: config.leader.enabled ? 'starting' : 'leader' });
  const pool = createPool(config.databaseUrl);
  // Capture's catalog lookups never wait behind the shared pool's queries (see Pipeline).
  const catalogPool = createPool(config.databaseUrl, 1);
  closers.push(() => pool.end(), () => catalogPool.end());
  const deadLetters = new DeadLetterStore(knexOn(pool), config.deadLetters);
  const deadLetter = createDeadLetterHandler({ config, store: deadLetters, destination: sink.describe(), lifecycle });
  closers.push(() => deadLetter.close());
  let engine: DeliveryEngine | undefined;
  const deliveryStats = () => engine?.stats() ?? { inFlight: 0, buffered: 0, bufferedBytes: 0 };
  metrics.bindDeliveryStats(deliveryStats);
  const slotHealth = new SlotHealth({ config, pool, lifecycle, metrics, deadLetters, delivery: deliveryStats });
  const server = await unlessStopped(startServer({ port: config.server.port, metrics, status, extraStatus: slotHealth.status }), stopping);
  closers.push(() => server.close());
  log.info({ port: server.port }, 'health, metrics and status server listening');
  slotHealth.start();
  closers.push(() => slotHealth.stop());

  try {
    const elector = config.leader.enabled
      ? new LeaderElector({ connectionString: config.databaseUrl, slot: config.capture.slot, pollIntervalMs: config.leader.pollIntervalMs, lifecycle })
      : undefined;
    if (elector) closers.push(() => elector.stop());
    await elector?.start();
    while (!stopping.aborted) {
      if (elector) {
        try {
          await elector.waitForLeadership(stopping);
        } catch (err) {
          if (stopping.aborted) break;
          throw err;
        }
      }
      const lost = await captureTerm({
        config, pool, catalogPool, lifecycle, sink, database, env, elector, stopping,
        consumer: (hooks, buildEvent) => {
          engine = new DeliveryEngine({
            sink, policy: config.delivery, lifecycle, hooks, buildEvent, deadLetter,
            undecodable: async (record) => {
            await deadLetters.insertUndecodable(record);
          },
            batchSize: batchSizeFor(config.handler, config),
          });
          return engine;
        },
      });
      if (!lost) break;
    }
  } catch (err) {
    // A final capture error about the slot becomes the named gap (what was lost, how to recover).
    throw err instanceof StopRequested ? err : await slotHealth.explain(err);
  }
}

interface TermOptions {
  config: Config;
  pool: Pool;
  catalogPool: Pool;
  lifecycle: Lifecycle;
  sink: Sink;
  database: string;
  env: NodeJS.ProcessEnv;
  elector?: LeaderElector;
  stopping: AbortSignal;
  consumer(hooks: ConsumerHooks, buildEvent: (change: Change) => CloudEvent<unknown>): ChangeConsumer;
}

/**
 * One leadership term. Resolves true when leadership was lost (wait again), false on a signal;
 * rejects on a final capture error. A signal lets the sends in flight finish within the grace
 * period; a lost lock or a failure stops capture at once.
 */
async function captureTerm(opts: TermOptions): Promise<boolean> {
  const { config, pool, catalogPool, lifecycle, sink, elector, stopping } = opts;
  const log = logger('run');
  // Set-up belongs to the leader: replicas starting together must not race to create the slot.
  await unlessStopped(withDatabase(config, async (client) => {
    const { state } = await inspectAndVerify(client, config);
    const steps = planSetup(state, config);
    await migrateSchema(config, log);
    await applySteps(client, steps);
    for (const s of steps) log.info(`set-up: ${s.description}`);
  }), stopping);
  const buildEvent = eventBuilder(config, opts.env, opts.database);
  const pipeline = new Pipeline({
    config,
    pool,
    catalogPool,
    lifecycle,
    consumer: (hooks) => opts.consumer(hooks, buildEvent),
  });
  let lostLeadership = false;
  // Listeners of this term only: removed when it ends, so terms do not pile them up.
  const cleanups: (() => void)[] = [];
  const interrupted = new Promise<void>((resolve) => {
    const onLost = (err: Error) => {
      lostLeadership = true;
      log.warn({ err: errorMessage(err) }, 'lost the leader lock: stopping capture at once');
      resolve();
    };
    const onAbort = () => resolve();
    elector?.once('lost', onLost);
    stopping.addEventListener('abort', onAbort, { once: true });
    cleanups.push(() => elector?.off('lost', onLost), () => stopping.removeEventListener('abort', onAbort));
    if (stopping.aborted) resolve();
  });
  try {
    // Opening the stream may wait (a slot busy elsewhere is retried): a signal must not.
    const starting = pipeline.start();
    starting.catch(() => undefined);
    const started = await Promise.race([starting, interrupted.then(() => undefined)]);
    if (started) {
      log.info({ sink: sink.describe(), tables: config.tables.map((t) => t.table) }, 'capturing');
      await Promise.race([interrupted, started.done]);
    }
  } finally {
    for (const cleanup of cleanups) cleanup();
    const graceMs = stopping.aborted && !lostLeadership ? config.delivery.shutdownGracePeriodMs ?? 0 : 0;
    await pipeline.stop(graceMs).catch((err) => log.warn({ err: errorMessage(err) }, 'stopping capture'));
  }
  return lostLeadership && !stopping.aborted;
}
