/**
 * The operator's side of workflows (docs/workflows.md, "Recovery"), shared by `pg-cloudevents
 * workflows …` and `/api/workflows`: list and show sessions, replay or skip a failed instance.
 * The workflow, its session and the instance are looked up first, so that "there is no such
 * thing" (WorkflowNotFoundError) is told apart from "it may not make that transition"
 * (WorkflowStateError, from the script itself). The transitions are the store's: each writes the
 * work pointers of what it scheduled before it returns, so a runner picks the clone (replay) or
 * the cascade (skip) up.
 */
import type { Redis, RedisOptions } from 'ioredis';
import type { WorkflowConfig, WorkflowRedisConfig } from './config';
import { WorkflowNotFoundError } from './errors';
import { listSessions, showSession, type SessionSummary } from './inspect';
import type { JsonObject } from './merge';
import type { SessionView } from './model';
import { WorkflowStore, type StoreOptions } from './store';

/** `<task>#<n>`: how an instance is named in its session. */
export const INSTANCE_NAME = /^t_[A-Za-z0-9_]{1,62}#\d{1,9}$/;

export interface WorkflowListing {
  workflow: string;
  sessions: SessionSummary[];
}

/** What a replay or skip did. */
export interface TransitionResult {
  workflow: string;
  session: string;
  instance: string;
  status: 'replayed' | 'skipped';
  /** The instances it scheduled: the clone (replay), the dependants the cascade made ready (skip). */
  scheduled: string[];
}

/** Where an instance is: `<workflow>/<session>/<task>#<n>`, the subject of its derived event. */
export interface InstanceAddress {
  workflow: string;
  session: string;
  instance: string;
}

/**
 * Reads `<workflow>/<session>/<task>#<n>` (the derived event's subject). A workflow name has no
 * `/` and an instance name has none either, so the session is whatever lies between the first
 * and the last `/`, slashes included. Throws an Error saying what was expected.
 */
export function parseInstanceAddress(text: string): InstanceAddress {
  const first = text.indexOf('/');
  const last = text.lastIndexOf('/');
  if (first < 0 || first === last) throw new Error(`must be <workflow>/<session>/<task>#<n> (the subject of the task's event, e.g. orders/o-17/t_ship#0), or <task>#<n> with --session (got ${JSON.stringify(text)})`);
  const address = { workflow: text.slice(0, first), session: text.slice(first + 1, last), instance: text.slice(last + 1) };
  if (address.workflow === '' || address.session === '') throw new Error(`names no ${address.workflow === '' ? 'workflow' : 'session'}: <workflow>/<session>/<task>#<n> (got ${JSON.stringify(text)})`);
  checkInstanceName(address.instance);
  return address;
}

/** Throws unless `name` is `<task>#<n>`. */
export function checkInstanceName(name: string): void {
  if (!INSTANCE_NAME.test(name)) throw new Error(`${JSON.stringify(name)} is not an instance name: <task>#<n>, e.g. t_ship#0 (as \`workflows show\` lists them)`);
}

export class WorkflowOperations {
  private readonly stores: Map<string, WorkflowStore>;

  constructor(
    readonly redis: Redis,
    workflows: readonly WorkflowConfig[],
    options: Pick<StoreOptions, 'prefix' | 'group'> = {},
  ) {
    this.stores = new Map(workflows.map((wf) => [wf.name, new WorkflowStore(redis, wf, options)]));
  }

  /** The configured workflows' names, in the file's order. */
  get names(): string[] {
    return [...this.stores.keys()];
  }

  store(workflow: string): WorkflowStore {
    const store = this.stores.get(workflow);
    if (!store) throw new WorkflowNotFoundError(`no workflow ${JSON.stringify(workflow)} is configured (workflows: ${this.names.join(', ') || 'none'})`);
    return store;
  }

  /** Sessions of one workflow, or of each (only those with an unresolved task when `unresolvedOnly`). */
  async list(options: { workflow?: string; unresolvedOnly?: boolean } = {}): Promise<WorkflowListing[]> {
    const names = options.workflow === undefined ? this.names : [this.store(options.workflow).workflow.name];
    const out: WorkflowListing[] = [];
    for (const workflow of names) out.push({ workflow, sessions: await listSessions(this.store(workflow), { unresolvedOnly: options.unresolvedOnly }) });
    return out;
  }

  async show(workflow: string, session: string): Promise<SessionView> {
    const view = await showSession(this.store(workflow), session);
    if (!view) throw missingSession(workflow, session);
    return view;
  }

  /** A failed instance becomes `replayed`; its clone is scheduled. `params` replace the clone's inputs entirely. */
  async replay(address: InstanceAddress, params?: JsonObject): Promise<TransitionResult> {
    const store = await this.existing(address);
    const clone = await store.replay(address.session, address.instance, params);
    return { ...address, status: 'replayed', scheduled: [clone] };
  }

  /** A failed instance becomes `skipped`; with cascade its task's name fires with `result`. */
  async skip(address: InstanceAddress, options: { cascade?: boolean; result?: JsonObject } = {}): Promise<TransitionResult> {
    const store = await this.existing(address);
    const scheduled = await store.skip(address.session, address.instance, options);
    return { ...address, status: 'skipped', scheduled };
  }

  /** Writes a work pointer again for every scheduled instance of the session (after a crash between a transition and its pointer). */
  async requeue(workflow: string, session: string): Promise<string[]> {
    const store = this.store(workflow);
    if (!(await store.meta(session))) throw missingSession(workflow, session);
    return store.requeue(session);
  }

  /** The store, once the session holds the instance (the script checks its status). */
  private async existing({ workflow, session, instance }: InstanceAddress): Promise<WorkflowStore> {
    const store = this.store(workflow);
    const meta = await store.meta(session);
    if (!meta) throw missingSession(workflow, session);
    if (!meta.inst[instance]) {
      const names = Object.keys(meta.inst).sort();
      throw new WorkflowNotFoundError(`session ${JSON.stringify(session)} of workflow ${workflow} has no instance ${instance} (instances: ${names.join(', ') || 'none yet'})`);
    }
    return store;
  }
}

function missingSession(workflow: string, session: string): WorkflowNotFoundError {
  return new WorkflowNotFoundError(`workflow ${workflow} has no session ${JSON.stringify(session)} (no input of it happened, or it expired ttl after its last change)`);
}

/**
 * Operations on a connection of their own to the workflows' Redis (`redis.url`, `redis.prefix`).
 * The caller picks how the connection behaves when Redis is away (fail fast, or reconnect) and
 * listens to its `error` events.
 */
export function connectOperations(redis: Pick<WorkflowRedisConfig, 'url' | 'prefix'>, workflows: readonly WorkflowConfig[], options: RedisOptions): WorkflowOperations {
  // Loaded here, not above: `run` without workflows never loads ioredis (as with the brokers' libraries).
  const { Redis: Client } = require('ioredis') as typeof import('ioredis');
  return new WorkflowOperations(new Client(redis.url, options), workflows, { prefix: redis.prefix });
}
