/**
 * Runs scheduled instances: reads work pointers through the consumer group, moves the instance to
 * running (start_run.lua), calls the injected `execute`, and records the outcome (finish_run.lua
 * with its cascade, or fail_run.lua with its retries) before acknowledging the pointer. A runner
 * that dies leaves its pointer pending; another runner reclaims it after `reclaimAfterMs` without
 * a heartbeat and runs the instance again (docs/workflows.md, "Durable runs").
 */
import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import { errorMessage } from '../errors';
import type { TaskAction } from './config';
import { callHook, type WorkflowHooks } from './hooks';
import { isPlainObject, mergeRecursive, type JsonObject } from './merge';
import { runIdentity } from './model';
import { WorkQueue, type WorkEntry } from './queue';
import type { RunClaim, WorkflowStore } from './store';

/** One run of an instance, as the task's action sees it. */
export interface RunRequest {
  workflow: string;
  session: string;
  instance: string;
  task: string;
  /** The instance's inputs merged over the task's withParams (templates see it as `inputs`). */
  payload: JsonObject;
  /** The derived event's id: the same on every attempt of this instance. */
  id: string;
  /** `<workflow>/<session>/<task>#<n>` */
  subject: string;
  /** 0, or how many replays lie behind this instance. */
  depth: number;
  /** 1, or more when this run was taken over from a runner that died. */
  attempt: number;
  run: TaskAction;
}

/**
 * Runs a task's action and returns its result (the answer's body when it is a JSON object). Any
 * other value counts as `{}`. A throw means the action failed for good (the delivery engine's own
 * retries are over).
 */
export type Execute = (run: RunRequest) => Promise<unknown>;

export interface RunnerOptions {
  /** Unique per process (default: a random name); a restarted runner of the same name resumes its own pending entries. */
  consumer?: string;
  /** Entries taken per read. */
  batch?: number;
  /** A pending entry idle this long is taken over (its runner stopped heartbeating). */
  reclaimAfterMs?: number;
  /** How often a runner tells the stream its entries are still being worked on. */
  heartbeatMs?: number;
  /** How long start() waits on the stream per read. */
  blockMs?: number;
  hooks?: WorkflowHooks;
  log?: Logger;
}

export const RUNNER_DEFAULTS = { batch: 16, reclaimAfterMs: 60_000, heartbeatMs: 10_000, blockMs: 2_000 } as const;

export class WorkflowRunner {
  readonly consumer: string;
  private readonly options: Required<Pick<RunnerOptions, 'batch' | 'reclaimAfterMs' | 'heartbeatMs' | 'blockMs'>>;
  private readonly inFlight = new Set<string>();
  private resumed = false;
  private cursor = '0-0';
  private loop?: Promise<void>;
  private reader?: Redis;
  private stopping = false;

  constructor(
    private readonly store: WorkflowStore,
    private readonly execute: Execute,
    private readonly runnerOptions: RunnerOptions = {},
  ) {
    this.consumer = runnerOptions.consumer ?? `runner-${randomUUID()}`;
    this.options = {
      batch: runnerOptions.batch ?? RUNNER_DEFAULTS.batch,
      reclaimAfterMs: runnerOptions.reclaimAfterMs ?? RUNNER_DEFAULTS.reclaimAfterMs,
      heartbeatMs: runnerOptions.heartbeatMs ?? RUNNER_DEFAULTS.heartbeatMs,
      blockMs: runnerOptions.blockMs ?? RUNNER_DEFAULTS.blockMs,
    };
  }

  /**
   * Handles what is there now: this consumer's own pending entries (first call only), entries
   * idle past reclaimAfterMs, and new ones. Returns how many entries it handled.
   */
  async runOnce(blockMs?: number): Promise<number> {
    const queue = this.store.queue;
    await queue.ensureGroup();
    const entries: WorkEntry[] = [];
    if (!this.resumed) {
      entries.push(...(await queue.ownPending(this.consumer, this.options.batch)));
      this.resumed = true;
    }
    const reclaimed = await queue.reclaim(this.consumer, this.options.reclaimAfterMs, this.options.batch, this.cursor);
    this.cursor = reclaimed.cursor;
    entries.push(...reclaimed.entries);
    const reader = blockMs !== undefined && entries.length === 0 ? this.blockingQueue() : queue;
    entries.push(...(await reader.read(this.consumer, this.options.batch, entries.length === 0 ? blockMs : undefined)));
    await this.handleAll(entries);
    return entries.length;
  }

  /** Runs until nothing is left to do now (tests and one-shot tools). */
  async drain(maxRounds = 1000): Promise<number> {
    let total = 0;
    for (let round = 0; round < maxRounds; round++) {
      const n = await this.runOnce();
      total += n;
      if (n === 0 && this.cursor === '0-0') return total;
    }
    throw new Error(`workflow ${this.store.workflow.name}: still work after ${maxRounds} rounds (a cascade that never ends?)`);
  }

  /** Runs in the background until stop(). */
  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = (async () => {
      while (!this.stopping) {
        try {
          await this.runOnce(this.options.blockMs);
        } catch (err) {
          if (this.stopping) break;
          this.runnerOptions.log?.warn({ workflow: this.store.workflow.name, err: errorMessage(err) }, 'workflow runner: reading work failed; retrying');
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.reader?.disconnect();
    await this.loop;
    this.loop = undefined;
    this.reader = undefined;
  }

  /** A blocking read would hold the shared connection: it gets its own. */
  private blockingQueue(): WorkQueue {
    if (!this.reader) {
      this.reader = this.store.redis.duplicate();
      // Its failures reach the read that meets them (and the loop retries); not ioredis's console.
      this.reader.on('error', () => undefined);
    }
    return new WorkQueue(this.reader, this.store.queue.key, this.store.queue.group);
  }

  private async handleAll(entries: WorkEntry[]): Promise<void> {
    if (entries.length === 0) return;
    for (const e of entries) this.inFlight.add(e.id);
    const timer = setInterval(() => {
      this.store.queue.heartbeat(this.consumer, [...this.inFlight]).catch(() => undefined);
    }, this.options.heartbeatMs);
    try {
      await Promise.all(
        entries.map((e) =>
          this.handle(e)
            .catch((err: unknown) => {
              // Redis failed mid-way: the entry stays pending and is handled again (start_run is idempotent per entry).
              this.runnerOptions.log?.warn({ workflow: this.store.workflow.name, instance: e.instance, err: errorMessage(err) }, 'workflow run not recorded; it will be retried');
            })
            .finally(() => this.inFlight.delete(e.id)),
        ),
      );
    } finally {
      clearInterval(timer);
    }
  }

  private async handle(entry: WorkEntry): Promise<void> {
    const store = this.store;
    const workflow = store.workflow.name;
    const claim: RunClaim = { session: entry.session, instance: entry.instance, entry: entry.id, consumer: this.consumer };
    const start = await store.startRun(claim);
    if (start.kind !== 'run') {
      await store.queue.done(entry.id);
      return;
    }
    const task = store.task(start.task);
    const { id, subject } = runIdentity(workflow, entry.session, entry.instance, start.sessionCreated);
    const began = Date.now();
    const hooks = this.runnerOptions.hooks;
    callHook(hooks?.runStarted, { workflow, session: entry.session, instance: entry.instance, task: task.name, attempt: start.attempts, sinceFirstInputMs: began - start.firstInputAt });
    let end;
    try {
      const result = await this.execute({
        workflow,
        session: entry.session,
        instance: entry.instance,
        task: task.name,
        payload: mergeRecursive(task.withParams, start.inputs),
        id,
        subject,
        depth: start.depth,
        attempt: start.attempts,
        run: task.run,
      });
      end = await store.finishRun(claim, isPlainObject(result) ? result : {});
    } catch (err) {
      if (err instanceof Error && err.name === 'AbortError' && this.stopping) throw err;
      end = await store.failRun(claim, { type: errorType(err), message: errorMessage(err) });
    }
    // A stale claim: the entry now belongs to the runner that took the run over; it acknowledges.
    if (end.outcome !== 'stale') await store.queue.done(entry.id);
    callHook(hooks?.runEnded, { workflow, session: entry.session, instance: entry.instance, task: task.name, outcome: end.outcome, durationMs: Date.now() - began });
  }
}

function errorType(err: unknown): string {
  if (err instanceof Error) return (err as { code?: unknown }).code !== undefined ? `${err.name}(${String((err as { code?: unknown }).code)})` : err.name;
  return typeof err;
}
