import type { Pool } from 'pg';
import { StopRequested, unlessStopped } from './abort';
import type { Config } from './config/types';
import { createDeadLetterHandler, DeadLetterStore, type ClosableDeadLetterHandler } from './delivery/dead-letters';
import { DeliveryEngine, type EngineStats } from './delivery/engine';
import { logLifecycle } from './delivery/log';
import { errorMessage } from './errors';
import { eventBuilder } from './events/build';
import { Lifecycle } from './lifecycle';
import { logger } from './logger';
import { createPool } from './pg/db';
import { LeaderElector } from './pg/leader';
import { createRouter } from './routing';
import { createRelationResolver, textQuery, type RelationResolver } from './routing/triggers/relations';
import { startServer } from './server';
import type { AdminOptions } from './server/admin';
import { createMetrics } from './server/metrics';
import { SlotHealth } from './server/slot-health';
import { StatusTracker } from './server/status';
import { DEFAULT_DESTINATION, Destinations } from './sinks';
import { createChangeSource } from './sources';
import { BackfillRuntime, requestOnAdd, tablesJoining } from './sources/backfill';
import { REPLICATION_SESSION_OPTIONS } from './sources/logical/stream';
import type { ChangeSource } from './sources/contract';
import { applySteps, planSetup } from './sources/logical/setup';
import { inspectAndVerify, withDatabase } from './sources/logical/database';
import { knexOn } from './pg/schema/knex';
import { migrateSchema } from './pg/schema/migrate';
import { startTableRules, triggersStatus, type TableRulesRuntime } from './trigger-rules';
import { WorkflowsRuntime } from './workflow-runs';
import { connectOperations, type WorkflowOperations } from './workflows/operations';

/**
 * The composition root: the whole running pipeline built from a Config, read top to bottom.
 *
 *   sources (capture.mode) → events (the default event) → routing (deliveries) → delivery (order,
 *   retries, dead letters, acknowledgement) → sinks (destinations)
 *
 * around them: PostgreSQL pools, leader election, the health/metrics/status server and the slot's
 * health. `pg-cloudevents run` (src/cli/run.ts) is this plus configuration, signals and the exit code.
 */

/** Closing connections and servers after capture stopped may take this long each, then we go on. */
export const CLOSE_TIMEOUT_MS = 3_000;

export interface PipelineOptions {
  env: NodeJS.ProcessEnv;
  /** Aborted on SIGTERM/SIGINT: the sends in flight get `delivery.shutdownGracePeriod`, then everything closes. */
  stopping: AbortSignal;
}

type Closer = () => Promise<unknown>;

/**
 * Verify, serve health/metrics/status, wait to be the leader, then capture and deliver until
 * `stopping` aborts. Losing the leader lock ends the term (capture stops at once) and the replica
 * waits again. A final error stops at once and is thrown. Either way every connection is closed
 * before this settles.
 */
export async function runPipeline(config: Config, options: PipelineOptions): Promise<void> {
  const log = logger('run');
  const closers: Closer[] = [];
  let failure: unknown;
  try {
    await runUntilStopped(config, options, closers);
  } catch (err) {
    if (!(err instanceof StopRequested)) {
      failure = err;
      log.error({ err: errorMessage(err) }, 'capture failed');
    }
  }
  await closeAll(closers, log);
  if (failure) throw failure;
}

/** What lives across leadership terms; a term adds the source, the router and the engine. */
interface Running {
  config: Config;
  env: NodeJS.ProcessEnv;
  database: string;
  lifecycle: Lifecycle;
  /** Shared by the heartbeat, dead letters and status. */
  pool: Pool;
  /** The source's own connection(s): a catalog lookup never queues behind a hung dead-letter insert. */
  sourcePool: Pool;
  /** Trigger payloads' relations through foreign keys; undefined when limits.relationDepth is 0. */
  relations?: RelationResolver;
  destinations: Destinations;
  deadLetters: DeadLetterStore;
  deadLetter: ClosableDeadLetterHandler;
  /** The current term's engine, for metrics and /status. */
  engine?: DeliveryEngine;
  /** The triggers table's rules (triggersTable.enabled), watched for the whole process. */
  tableRules?: TableRulesRuntime;
  /** Workflows (README "Workflows"): their stores, which the leader's routing fires inputs into, and the runners of every replica. */
  workflows?: WorkflowsRuntime;
  /** Backfills (README "Backfill"): requested in the table, performed by the leader's term. */
  backfill: BackfillRuntime;
  elector?: LeaderElector;
  stopping: AbortSignal;
}

async function runUntilStopped(loaded: Config, options: PipelineOptions, closers: Closer[]): Promise<void> {
  const log = logger('run');
  const { stopping } = options;
  // Read-only checks first: a standby with a broken configuration must fail now, not at takeover.
  const { config, database } = await unlessStopped(withDatabase(loaded, async (client, config) => {
    const { state, verdict } = await inspectAndVerify(client, config);
    for (const w of verdict.warnings) log.warn(w);
    return { config, database: state.database };
  }), stopping);

  // Sinks: the destinations, opened once for the whole process.
  const destinations = new Destinations(config);
  closers.push(() => destinations.close());
  const defaultDestination = destinations.get(DEFAULT_DESTINATION);

  // Observability: every stage reports through the lifecycle; metrics, logs and /status listen.
  const lifecycle = new Lifecycle();
  const metrics = createMetrics(lifecycle);
  logLifecycle(lifecycle);
  const status = new StatusTracker(lifecycle, { sink: defaultDestination.sink.describe(), sinkConfigured: true });
  // Without election this replica is the leader; with it, starting until the lock is answered.
  lifecycle.emit('leader:role', { role: config.leader.enabled ? 'starting' : 'leader' });

  // PostgreSQL: the shared pool, and the source's own (see Running.sourcePool).
  const pool = createPool(config.databaseUrl);
  const sourcePool = createPool(config.databaseUrl, 1);
  closers.push(() => pool.end(), () => sourcePool.end());
  // Relations read rows with the replication session's settings, so values print as in the events.
  // A pool connects on first use only: without a resolver (no payload template, or relations off) it stays empty.
  const relationPool = createPool(config.databaseUrl, 2, REPLICATION_SESSION_OPTIONS);
  closers.push(() => relationPool.end());
  const relations = createRelationResolver(config, textQuery(relationPool));
  void relations?.preload();

  // Dead letters: the table, and the handler the engine gives final failures to.
  const deadLetters = new DeadLetterStore(knexOn(pool), config.deadLetters);
  const deadLetter = createDeadLetterHandler({ config, store: deadLetters, lifecycle });
  closers.push(() => deadLetter.close());

  // Trigger rules: the file's (counted once), and the table's, watched by every replica (its
  // /status and admin API read them); the leader routes with them.
  const fileRules = config.triggers ?? [];
  lifecycle.emit('triggers:rules', { origin: 'file', active: fileRules.filter((t) => t.active).length, inactive: fileRules.filter((t) => !t.active).length, invalid: 0 });
  const tableRules = config.triggersTable?.enabled ? startTableRules(config, pool, lifecycle) : undefined;
  if (tableRules) closers.push(() => tableRules.stop());
  // The admin API's /api/workflows has a Redis connection of its own.
  const workflowOps = config.server.adminToken !== undefined && (config.workflows ?? []).length > 0 ? adminWorkflowOperations(config) : undefined;
  if (workflowOps) closers.push(async () => workflowOps.redis.disconnect());

  // Workflows: one Redis connection; runners on every replica (the work stream's consumer group
  // runs each instance once, whichever replica takes it), inputs from the leader's routing.
  const workflows = WorkflowsRuntime.create({
    config, env: options.env, database, lifecycle, defaultSink: () => defaultDestination.sink, deadLetter,
  });
  if (workflows) closers.push(() => workflows.close());

  // Backfills read chunks with the replication session's settings too: values decode as a live row's.
  const backfillPool = createPool(config.databaseUrl, 2, REPLICATION_SESSION_OPTIONS);
  closers.push(() => backfillPool.end());
  const backfill = new BackfillRuntime(config, knexOn(pool), backfillPool, lifecycle);
  metrics.bindBackfills(() => backfill.status());

  const app: Running = {
    config, env: options.env, database, lifecycle, pool, sourcePool, relations, destinations, deadLetters, deadLetter, stopping, tableRules, workflows, backfill,
  };

  // Health, metrics and /status, and the slot's health (retained WAL, the named gap on loss).
  const deliveryStats = (): EngineStats => app.engine?.stats() ?? { inFlight: 0, buffered: 0, bufferedBytes: 0 };
  metrics.bindDeliveryStats(deliveryStats);
  if (workflows) metrics.bindWorkflowStats(() => workflows.workflowStats());
  const slotHealth = new SlotHealth({ config, pool, lifecycle, metrics, deadLetters, delivery: deliveryStats });
  // With ADMIN_TOKEN the admin API is on: backfills (/api/backfills) are always there to serve.
  const admin: AdminOptions | undefined = config.server.adminToken !== undefined
    ? {
      token: config.server.adminToken, config,
      ...(tableRules && { triggers: { store: tableRules.store, context: tableRules.context } }),
      ...(workflowOps && { workflows: workflowOps }),
      backfills: { store: backfill.store, pool, config },
    }
    : undefined;
  const extraStatus = async () => ({
    ...(await slotHealth.status()),
    triggers: triggersStatus(config, tableRules),
    backfills: backfill.status(),
    ...(workflows && { workflows: await workflows.status() }),
  });
  const server = await unlessStopped(startServer({ port: config.server.port, metrics, status, extraStatus, admin }), stopping);
  closers.push(() => server.close());
  log.info({ port: server.port, adminApi: admin !== undefined }, 'health, metrics and status server listening');
  slotHealth.start();
  closers.push(() => slotHealth.stop());

  // The runners' runs in flight get the grace period from the signal on, as the term's sends do.
  const graceMs = config.delivery.shutdownGracePeriodMs ?? 0;
  const stopRunners = () => void workflows?.stop(graceMs);
  stopping.addEventListener('abort', stopRunners, { once: true });
  workflows?.start();
  try {
    // Leader election: one replica captures, the others wait for the lock.
    const elector = config.leader.enabled
      ? new LeaderElector({ connectionString: config.databaseUrl, slot: config.capture.slot, pollIntervalMs: config.leader.pollIntervalMs, lifecycle })
      : undefined;
    if (elector) closers.push(() => elector.stop());
    app.elector = elector;
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
      const lost = await leadershipTerm(app);
      if (!lost) break;
    }
  } catch (err) {
    // A final capture error about the slot becomes the named gap (what was lost, how to recover).
    throw err instanceof StopRequested ? err : await slotHealth.explain(err);
  } finally {
    stopping.removeEventListener('abort', stopRunners);
    // After a signal: the stop begun then (its grace running); after a failure: at once.
    await workflows?.stop(0);
  }
}

/**
 * One leadership term: source → events → routing → delivery, built fresh each time this replica
 * becomes the leader, so nothing of a previous term (queues, relations, positions) leaks into the
 * next. Resolves true when leadership was lost (wait again), false on a signal; rejects on a final
 * capture error. A signal lets the sends in flight finish within the grace period; a lost lock or
 * a failure stops capture at once.
 */
async function leadershipTerm(app: Running): Promise<boolean> {
  const { config, lifecycle, elector, stopping } = app;
  const log = logger('run');
  // Set-up belongs to the leader: replicas starting together must not race to create the slot.
  await unlessStopped(withDatabase(config, async (client) => {
    const { state } = await inspectAndVerify(client, config);
    const steps = planSetup(state, config);
    const joining = tablesJoining(config, state);
    // The product's own tables first (knex migrations, with their own lock), then slot and publication.
    await migrateSchema(config, log);
    await applySteps(client, steps);
    for (const s of steps) log.info(`set-up: ${s.description}`);
    // tables[].backfill: onAdd — after the publication lists them, so their live changes are watched.
    for (const r of await requestOnAdd(app.backfill.store, joining)) log.info(`set-up: requested ${r} (backfill: onAdd)`);
  }), stopping);
  // The table's rules as they are now (the migrations above may just have made the table), before
  // any change is routed: unacknowledged changes meet the rules read at start.
  if (app.tableRules) {
    await unlessStopped(app.tableRules.watcher.reload(), stopping);
    await unlessStopped(app.tableRules.watcher.ready, stopping);
  }

  // Events: a change's default event, in the configured format.
  const buildEvent = eventBuilder(config, app.env, app.database);
  // Routing: a change → its deliveries (today the default route: the default event to the handler).
  const router = createRouter({
    config, buildEvent, destination: (name) => app.destinations.get(name), relations: app.relations, tableRules: app.tableRules?.schedule,
    workflows: app.workflows?.stores,
  });
  // Delivery: per-(destination, key) order, retries, dead letters; it acknowledges to the source.
  let source: ChangeSource | undefined;
  let backfillTerm: ReturnType<BackfillRuntime['beginTerm']> | undefined;
  const engine = new DeliveryEngine({
    router,
    policy: config.delivery,
    lifecycle,
    feedback: {
      acknowledge: (position, idle) => {
        source?.acknowledge(position, idle);
        // A backfill chunk's progress is recorded once this passes its high watermark.
        backfillTerm?.acknowledged(position);
      },
      setPressure: (full) => source?.setPressure(full),
    },
    deadLetter: app.deadLetter,
    undecodable: async (record) => {
      await app.deadLetters.insertUndecodable(record);
    },
  });
  app.engine = engine;
  // Backfill: the DBLog window around the engine (docs/backfill.md); every call passes through.
  backfillTerm = app.backfill.beginTerm(engine);
  // Source: the change stream of `capture.mode`, handed to the engine in commit order.
  source = createChangeSource({ config, pool: app.pool, ownPool: app.sourcePool, consumer: backfillTerm.window, lifecycle });

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
    const starting = source.start();
    starting.catch(() => undefined);
    const started = await Promise.race([starting, interrupted.then(() => undefined)]);
    if (started) {
      log.info({ sink: router.destinations.map((d) => d.sink.describe()).join(', '), tables: config.tables.map((t) => t.table) }, 'capturing');
      app.backfill.startTerm(backfillTerm, source);
      await Promise.race([interrupted, started.done]);
    }
  } finally {
    for (const cleanup of cleanups) cleanup();
    // No watermark is written once capture stops; the backfill in progress stays running in its table.
    await app.backfill.endTerm(backfillTerm);
    const graceMs = stopping.aborted && !lostLeadership ? config.delivery.shutdownGracePeriodMs ?? 0 : 0;
    await source.stop(graceMs).catch((err) => log.warn({ err: errorMessage(err) }, 'stopping capture'));
    // The trigger actions' own connections (webhooks, brokers): each term makes its own.
    await router.close?.().catch((err) => log.warn({ err: errorMessage(err) }, 'closing the trigger actions'));
  }
  return lostLeadership && !stopping.aborted;
}

/**
 * Everything opened, closed one after another in the reverse order of opening (what was opened
 * last may still need what was opened before it: the slot record's last write needs the pool),
 * each given at most CLOSE_TIMEOUT_MS.
 */
async function closeAll(closers: Closer[], log: ReturnType<typeof logger>): Promise<void> {
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

/**
 * The admin API's workflow operations: a request fails at once (503) while Redis is away rather
 * than waiting in the offline queue; the connection keeps reconnecting, and says so once.
 */
function adminWorkflowOperations(config: Config): WorkflowOperations {
  const log = logger('admin');
  const ops = connectOperations(config.redis!, config.workflows!, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  let down = false;
  ops.redis.on('error', (err: Error) => {
    if (!down) log.warn({ err: errorMessage(err) }, 'admin API: the workflows\' Redis is not reachable; reconnecting');
    down = true;
  });
  ops.redis.on('ready', () => {
    if (down) log.info('admin API: the workflows\' Redis is reachable again');
    down = false;
  });
  return ops;
}
