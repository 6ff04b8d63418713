/**
 * Reading workflow state for people and tools (`workflows list | show`) and for gauges: sessions
 * are found with SCAN over the workflow's key pattern (never KEYS), so listing is O(keys in the
 * database), incremental, and safe on a busy server. On Redis Cluster, SCAN each primary.
 */
import { compareInstanceNames, isResolved, type InstanceStatus, type InstanceView, type SessionView, type StoredMeta } from './model';
import type { WorkflowStore } from './store';

export interface SessionSummary {
  session: string;
  instances: number;
  /** Instances not resolved (failed counts as unresolved). */
  unresolved: number;
  /** How many instances are in each status (statuses with none left out). */
  statuses: Partial<Record<InstanceStatus, number>>;
  /** Tasks with no instance yet, or with an instance that is not resolved. */
  unresolvedTasks: string[];
  updated: string;
}

const SCAN_COUNT = 500;

/** Every session of the workflow (or only those with an unresolved task when `unresolvedOnly`). */
export async function listSessions(store: WorkflowStore, options: { unresolvedOnly?: boolean } = {}): Promise<SessionSummary[]> {
  const out: SessionSummary[] = [];
  for await (const [session, meta] of scanSessions(store)) {
    const statuses = Object.values(meta.inst).map((i) => i.status);
    const unresolved = statuses.filter((s) => !isResolved(s)).length;
    const tasks = unresolvedTasks(store, meta);
    if (options.unresolvedOnly && tasks.length === 0) continue;
    const byStatus: Partial<Record<InstanceStatus, number>> = {};
    for (const s of statuses) byStatus[s] = (byStatus[s] ?? 0) + 1;
    out.push({ session, instances: statuses.length, unresolved, statuses: byStatus, unresolvedTasks: tasks, updated: new Date(meta.updated).toISOString() });
  }
  return out.sort((a, b) => (a.session < b.session ? -1 : a.session > b.session ? 1 : 0));
}

/** One session, values parsed; undefined when it has no state (never had, or expired). */
export async function showSession(store: WorkflowStore, session: string): Promise<SessionView | undefined> {
  const meta = await store.meta(session);
  if (!meta) return undefined;
  const refs = [
    ...Object.values(meta.latest),
    ...Object.values(meta.inst).flatMap((i) => [...Object.values(i.inputs), ...(i.result ? [i.result] : [])]),
  ];
  const values = await store.values(session, refs);
  const instances: InstanceView[] = Object.entries(meta.inst)
    .sort(([a], [b]) => compareInstanceNames(a, b))
    .map(([name, i]) => ({
      name,
      task: i.task,
      status: i.status,
      inputs: Object.fromEntries(Object.entries(i.inputs).map(([input, ref]) => [input, values.get(ref)])),
      abandonState: Object.keys(i.abandon ?? {}).sort(),
      depth: i.depth,
      ...(i.parent !== undefined && { parent: i.parent }),
      attempts: i.attempts ?? 0,
      ...(i.result !== undefined && { result: values.get(i.result) }),
      ...(i.error !== undefined && { error: i.error }),
      timestamps: Object.fromEntries(Object.entries(i.ts).map(([k, v]) => [k, new Date(v).toISOString()])),
    }));
  return {
    workflow: store.workflow.name,
    session,
    created: new Date(meta.created).toISOString(),
    updated: new Date(meta.updated).toISOString(),
    ...(meta.first !== undefined && { firstInput: new Date(meta.first).toISOString() }),
    instances,
    unresolvedTasks: unresolvedTasks(store, meta),
    latest: Object.fromEntries(Object.entries(meta.latest).map(([input, ref]) => [input, values.get(ref)])),
  };
}

/** Tasks with no instance, or with an instance that is not resolved (the framework's rule). */
export function unresolvedTasks(store: WorkflowStore, meta: StoredMeta): string[] {
  return store.workflow.tasks
    .map((t) => t.name)
    .filter((task) => {
      const mine = Object.values(meta.inst).filter((i) => i.task === task);
      return mine.length === 0 || mine.some((i) => !isResolved(i.status));
    });
}

export interface WorkflowStats {
  /** Sessions with an instance that is not resolved. */
  sessionsOpen: number;
  sessions: number;
  instances: Record<InstanceStatus, number>;
}

/** Gauges over all sessions of the workflow (one SCAN). */
export async function workflowStats(store: WorkflowStore): Promise<WorkflowStats> {
  const instances = { unstarted: 0, scheduled: 0, running: 0, finished: 0, failed: 0, replayed: 0, skipped: 0, abandoned: 0 };
  let sessions = 0;
  let sessionsOpen = 0;
  for await (const [, meta] of scanSessions(store)) {
    sessions++;
    let open = false;
    for (const i of Object.values(meta.inst)) {
      instances[i.status]++;
      if (!isResolved(i.status)) open = true;
    }
    if (open) sessionsOpen++;
  }
  return { sessions, sessionsOpen, instances };
}

async function* scanSessions(store: WorkflowStore): AsyncGenerator<[string, StoredMeta]> {
  const redis = store.redis;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', store.keys.sessionPattern(), 'COUNT', SCAN_COUNT, 'TYPE', 'hash');
    cursor = next;
    if (keys.length === 0) continue;
    const pipeline = redis.pipeline();
    for (const key of keys) pipeline.hmget(key, 'session', 'meta');
    const rows = (await pipeline.exec()) ?? [];
    for (const [err, row] of rows) {
      const [session, meta] = (err ? [null, null] : row) as [string | null, string | null];
      if (session !== null && meta !== null) yield [session, JSON.parse(meta) as StoredMeta];
    }
  } while (cursor !== '0');
}
