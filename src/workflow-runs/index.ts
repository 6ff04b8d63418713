/**
 * Workflows at runtime (README "Workflows"): one Redis connection per process, each workflow's
 * store (which the routing stage's inputs fire into), and one runner per workflow, on every
 * replica, leader or not. Runners share each workflow's work stream through a consumer group, so
 * any number of them run each scheduled instance once (docs/workflows.md, "Concurrency"): a
 * standby works off runs while the leader captures, and a run whose replica died is taken over by
 * another after `redis.reclaimAfter`.
 *
 * Stopping: the runners stop reading at once; runs in flight get the grace period, then their
 * retries are abandoned without recording anything (the run stays pending: taken over later).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type Redis from 'ioredis';
import type { Config } from '../config/types';
import type { DeadLetterHandler } from '../delivery/dead-letter';
import { errorMessage } from '../errors';
import { eventSource } from '../events/build';
import type { Lifecycle } from '../lifecycle';
import { logger } from '../logger';
import type { Sink } from '../sinks/types';
import type { WorkflowHooks } from '../workflows/hooks';
import { workflowStats, type WorkflowStats } from '../workflows/inspect';
import { closeRedis, connectRedis } from '../workflows/redis';
import { WorkflowRunner } from '../workflows/runner';
import { WorkflowStore } from '../workflows/store';
import { TaskExecutor } from './execute';

export { runContext } from './context';
export { TaskExecutor, taskEventType } from './execute';

/** Gauges over all sessions come from one SCAN per workflow; a scrape within this time reuses the last. */
export const STATS_MAX_AGE_MS = 15_000;

export interface WorkflowsRuntimeOptions {
  config: Config;
  env: NodeJS.ProcessEnv;
  /** The database's name (the events' default source). */
  database: string;
  lifecycle: Lifecycle;
  defaultSink(): Sink;
  deadLetter: DeadLetterHandler;
}

export interface WorkflowStatus {
  name: string;
  /** Runs scheduled or running: work pointers not done yet (null: Redis did not answer). */
  pendingRuns: number | null;
}

export interface WorkflowsStatus {
  runners: 'running' | 'stopped';
  /** ioredis's connection state: ready, connecting, reconnecting, end. */
  redis: string;
  workflows: WorkflowStatus[];
}

export class WorkflowsRuntime {
  /** By workflow name: what the routing stage fires inputs into. */
  readonly stores: ReadonlyMap<string, WorkflowStore>;
  private readonly redis: Redis;
  private readonly runners: WorkflowRunner[];
  private readonly executor: TaskExecutor;
  private readonly abort = new AbortController();
  private running = false;
  private stopping?: Promise<void>;
  private stats?: { at: number; value: Promise<Map<string, WorkflowStats>> };

  private constructor(private readonly options: WorkflowsRuntimeOptions) {
    const { config, lifecycle } = options;
    const redisConfig = config.redis!;
    this.redis = connectRedis(redisConfig);
    // Metrics and logs listen to the lifecycle (src/server/metrics.ts).
    const hooks: WorkflowHooks = {
      inputApplied: (e) => lifecycle.emit('workflow:input', e),
      runStarted: (e) => lifecycle.emit('workflow:runStarted', e),
      runEnded: (e) => lifecycle.emit('workflow:runEnded', e),
    };
    const stores = new Map<string, WorkflowStore>();
    for (const wf of config.workflows ?? []) stores.set(wf.name, new WorkflowStore(this.redis, wf, { prefix: redisConfig.prefix, hooks }));
    this.stores = stores;
    this.executor = new TaskExecutor({
      config,
      source: eventSource(config, options.env, options.database),
      defaultSink: options.defaultSink,
      deadLetter: options.deadLetter,
      lifecycle,
      signal: this.abort.signal,
    });
    const log = logger('workflows');
    // Unique per process: a name reused by two live processes would let each take over the other's runs.
    const consumer = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    this.runners = [...stores.values()].map((store) => new WorkflowRunner(store, this.executor.execute, {
      consumer,
      reclaimAfterMs: redisConfig.reclaimAfterMs,
      heartbeatMs: redisConfig.heartbeatIntervalMs,
      hooks,
      log,
    }));
  }

  /** The runtime of `config.workflows`; undefined when there are none. */
  static create(options: WorkflowsRuntimeOptions): WorkflowsRuntime | undefined {
    if ((options.config.workflows ?? []).length === 0 || options.config.redis === undefined) return undefined;
    return new WorkflowsRuntime(options);
  }

  /** Starts every workflow's runner (in the background; Redis unreachable is retried by each). */
  start(): void {
    if (this.running || this.stopping) return;
    this.running = true;
    for (const runner of this.runners) runner.start();
    logger('workflows').info({ workflows: [...this.stores.keys()], consumer: this.runners[0]?.consumer }, 'workflow runners started');
  }

  /**
   * Stops the runners: no new run starts; runs in flight finish within `graceMs`, then their
   * retries are abandoned (nothing recorded; the runs are taken over later). A second call
   * returns the first's promise.
   */
  stop(graceMs: number): Promise<void> {
    this.stopping ??= (async () => {
      this.running = false;
      const timer = setTimeout(() => this.abort.abort(), graceMs);
      try {
        await Promise.all(this.runners.map((r) => r.stop()));
      } finally {
        clearTimeout(timer);
      }
    })();
    return this.stopping;
  }

  /** Stops at once (when not stopped yet), then closes the actions' connections and Redis. */
  async close(): Promise<void> {
    await this.stop(0);
    await this.executor.close().catch((err) => logger('workflows').warn({ err: errorMessage(err) }, 'closing the workflow actions'));
    await closeRedis(this.redis);
  }

  /** For /status: the runners' state and each workflow's pending runs. */
  async status(): Promise<WorkflowsStatus> {
    const workflows = await Promise.all([...this.stores.values()].map(async (store) => ({
      name: store.workflow.name,
      pendingRuns: await this.redis.xlen(store.queue.key).catch(() => null),
    })));
    return { runners: this.running ? 'running' : 'stopped', redis: this.redis.status, workflows };
  }

  /** Gauges over all sessions, by workflow (one SCAN each, at most every STATS_MAX_AGE_MS). */
  workflowStats(): Promise<Map<string, WorkflowStats>> {
    const now = Date.now();
    if (this.stats === undefined || now - this.stats.at >= STATS_MAX_AGE_MS) {
      const value = (async () => {
        const out = new Map<string, WorkflowStats>();
        for (const store of this.stores.values()) out.set(store.workflow.name, await workflowStats(store));
        return out;
      })();
      // A failed SCAN (Redis away) is not kept: the next scrape tries again.
      value.catch(() => (this.stats = undefined));
      this.stats = { at: now, value };
    }
    return this.stats.value;
  }
}
