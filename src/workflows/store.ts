/**
 * One workflow's state in Redis: each transition is one Lua script on the session's hash
 * (lua/*.lua), and every instance a transition schedules gets a pointer in the work stream
 * before the method returns. So a caller that acknowledges its trigger (the change, the work
 * entry, the operator's command) only after the method returned never leaves a scheduled
 * instance without a pointer; after a crash in between, repeating the trigger writes the
 * pointers again (docs/workflows.md, "Durability").
 */
import type Redis from 'ioredis';
import { parseJsonLossless, stringifyJson } from '../events/json-text';
import type { WorkflowConfig, WorkflowTaskConfig } from './config';
import { WorkflowStateError } from './errors';
import { callHook, type WorkflowHooks } from './hooks';
import { WorkflowKeys } from './keys';
import { isPlainObject, type JsonObject } from './merge';
import type { StoredMeta } from './model';
import { WorkQueue, type WorkPointer } from './queue';
import { Scripts } from './scripts';

export interface StoreOptions {
  /** Before every key (config `redis.prefix`). */
  prefix?: string;
  /** The runners' consumer group on the work stream. */
  group?: string;
  hooks?: WorkflowHooks;
}

export const DEFAULT_GROUP = 'runners';

/** An input that happened: the event's id is the idempotency key. */
export interface InputEvent {
  input: string;
  eventId: string;
  /** The input's value (the event's data); exact numbers (RawJson) stay exact. */
  data: unknown;
}

export interface ApplyResult {
  /** false: this event id was applied before (a redelivery); nothing changed. */
  applied: boolean;
  /** Instances scheduled by it (for a redelivery: those still scheduled, pointed at again). */
  scheduled: string[];
}

export type StartResult =
  | { kind: 'run'; depth: number; attempts: number; sessionCreated: string; firstInputAt: number; task: string; inputs: JsonObject }
  | { kind: 'skip'; status: string }
  | { kind: 'gone' };

export type EndResult = { outcome: 'finished' | 'failed' | 'replayed'; scheduled: string[] } | { outcome: 'stale'; status: string };

export interface RunClaim {
  session: string;
  instance: string;
  /** The work entry id. */
  entry: string;
  consumer: string;
}

export class WorkflowStore {
  readonly keys: WorkflowKeys;
  readonly queue: WorkQueue;
  private readonly scripts: Scripts;
  /** What the scripts need of the configuration (JSON: task names and their input names). */
  readonly graph: string;
  private readonly tasks: Map<string, WorkflowTaskConfig>;
  private readonly hooks?: WorkflowHooks;

  constructor(
    readonly redis: Redis,
    readonly workflow: WorkflowConfig,
    options: StoreOptions = {},
  ) {
    this.keys = new WorkflowKeys(options.prefix ?? '', workflow.name);
    this.queue = new WorkQueue(redis, this.keys.work(), options.group ?? DEFAULT_GROUP);
    this.scripts = new Scripts(redis);
    this.tasks = new Map(workflow.tasks.map((t) => [t.name, t]));
    this.hooks = options.hooks;
    this.graph = JSON.stringify({
      tasks: workflow.tasks.map((t) => ({ name: t.name, after: t.after, unless: t.unless, ...(t.andEvery !== undefined && { every: t.andEvery }) })),
    });
  }

  get ttlMs(): number {
    return this.workflow.ttlMs;
  }

  task(name: string): WorkflowTaskConfig {
    const task = this.tasks.get(name);
    if (!task) throw new WorkflowStateError(`workflow ${this.workflow.name} has no task ${name} (was it removed from the configuration?)`);
    return task;
  }

  /**
   * Applies the input and writes the work pointers of what it scheduled. Acknowledge the change
   * that carried it only after this resolved.
   */
  async fire(session: string, event: InputEvent): Promise<ApplyResult> {
    const result = await this.applyInput(session, event);
    await this.point(session, result.scheduled);
    callHook(this.hooks?.inputApplied, { workflow: this.workflow.name, session, input: event.input, ...result });
    return result;
  }

  /** The script alone (no pointers): fire's first half. */
  async applyInput(session: string, event: InputEvent): Promise<ApplyResult> {
    const [applied, scheduled] = (await this.scripts.run('apply_input', this.keys.session(session), [
      this.graph,
      event.input,
      event.eventId,
      stringifyJson(event.data ?? null),
      this.workflow.name,
      session,
      this.ttlMs,
    ])) as [number, string[]];
    return { applied: applied === 1, scheduled };
  }

  /** scheduled → running for the runner holding work entry `claim.entry`. */
  async startRun(claim: RunClaim): Promise<StartResult & { again?: string[] }> {
    const reply = (await this.scripts.run('start_run', this.keys.session(claim.session), [claim.instance, claim.entry, claim.consumer, this.ttlMs])) as unknown[];
    if (reply[0] === 'gone') return { kind: 'gone' };
    if (reply[0] === 'skip') {
      const again = reply[2] as string[];
      await this.point(claim.session, again);
      return { kind: 'skip', status: String(reply[1]), again };
    }
    const [, depth, attempts, created, first, task, ...pairs] = reply as [string, number, number, string, string, string, ...string[]];
    const inputs: JsonObject = {};
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      Object.defineProperty(inputs, pairs[i], { value: parseJsonLossless(pairs[i + 1]), enumerable: true, writable: true, configurable: true });
    }
    return { kind: 'run', depth, attempts, sessionCreated: created, firstInputAt: Number(first), task, inputs };
  }

  /** running → finished with `result`, cascading it; writes the pointers of what that scheduled. */
  async finishRun(claim: RunClaim, result: JsonObject): Promise<EndResult> {
    const [status, detail] = (await this.scripts.run('finish_run', this.keys.session(claim.session), [
      this.graph,
      claim.instance,
      claim.entry,
      claim.consumer,
      stringifyJson(isPlainObject(result) ? result : {}),
      this.ttlMs,
    ])) as [string, string[] | string];
    if (status === 'stale') return { outcome: 'stale', status: String(detail) };
    await this.point(claim.session, detail as string[]);
    return { outcome: 'finished', scheduled: detail as string[] };
  }

  /** running → failed, then replayed as a clone while the task's retry.max allows. */
  async failRun(claim: RunClaim, error: { type: string; message: string }): Promise<EndResult> {
    const task = this.task(claim.instance.slice(0, claim.instance.lastIndexOf('#')));
    const [status, detail] = (await this.scripts.run('fail_run', this.keys.session(claim.session), [
      claim.instance,
      claim.entry,
      claim.consumer,
      error.type,
      error.message,
      task.retry.max,
      this.ttlMs,
    ])) as [string, string[] | string];
    if (status === 'stale') return { outcome: 'stale', status: String(detail) };
    await this.point(claim.session, detail as string[]);
    return { outcome: status as 'failed' | 'replayed', scheduled: detail as string[] };
  }

  /**
   * failed → replayed; the clone is scheduled (returned). `params` replace the clone's inputs
   * entirely: `{ paid: {...}, packed: {...} }`.
   */
  async replay(session: string, instance: string, params?: JsonObject): Promise<string> {
    const args: (string | number)[] = [instance, this.ttlMs, params ? '1' : '0'];
    for (const [input, value] of Object.entries(params ?? {})) args.push(input, stringifyJson(value ?? null));
    const [clone] = (await this.scripts.run('replay', this.keys.session(session), args)) as string[];
    await this.point(session, [clone]);
    return clone;
  }

  /** failed → skipped; with cascade, the task's name fires with `result`. Returns what that scheduled. */
  async skip(session: string, instance: string, options: { cascade?: boolean; result?: JsonObject } = {}): Promise<string[]> {
    const scheduled = (await this.scripts.run('skip', this.keys.session(session), [
      this.graph,
      instance,
      this.ttlMs,
      options.cascade ? '1' : '0',
      stringifyJson(options.result ?? {}),
    ])) as string[];
    await this.point(session, scheduled);
    return scheduled;
  }

  /**
   * Writes a pointer for every scheduled instance of the session: the way out after a crash
   * between an operator's replay/skip and its pointer (a duplicate pointer is harmless).
   */
  async requeue(session: string): Promise<string[]> {
    const meta = await this.meta(session);
    const scheduled = Object.entries(meta?.inst ?? {})
      .filter(([, inst]) => inst.status === 'scheduled')
      .map(([name]) => name);
    await this.point(session, scheduled);
    return scheduled;
  }

  /** The session's stored state, or undefined when it has none (never had, or expired). */
  async meta(session: string): Promise<StoredMeta | undefined> {
    const raw = await this.redis.hget(this.keys.session(session), 'meta');
    return raw === null ? undefined : (JSON.parse(raw) as StoredMeta);
  }

  /** The values behind refs (`v:<ref>` fields), parsed. */
  async values(session: string, refs: readonly string[]): Promise<Map<string, unknown>> {
    const unique = [...new Set(refs)];
    if (unique.length === 0) return new Map();
    const raw = await this.redis.hmget(this.keys.session(session), ...unique.map((r) => `v:${r}`));
    return new Map(unique.map((ref, i) => [ref, raw[i] === null ? null : parseJsonLossless(raw[i] as string)]));
  }

  private async point(session: string, instances: readonly string[]): Promise<void> {
    const pointers: WorkPointer[] = instances.map((instance) => ({ session, instance }));
    await this.queue.add(pointers);
  }
}
