import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { parseWorkflowsConfig, type WorkflowConfig } from '../../../src/workflows/config';
import { isPlainObject } from '../../../src/workflows/merge';
import type { Execute, RunRequest } from '../../../src/workflows/runner';
import { deleteKeysUnder } from '../harness/redis';

export const REDIS_URL = 'redis://127.0.0.1:6379';

/** This test run's own key prefix (`pgce_<tag>_<random>:`): every key the tests create starts with it. */
export function uniquePrefix(tag = 'hw'): string {
  return `pgce_${tag}_${randomBytes(6).toString('hex')}:`;
}

/** Deletes every key under `prefix` (SCAN, never KEYS). */
export async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  if (!/^pgce_[a-z0-9]+_[0-9a-f]{12}:$/.test(prefix)) throw new Error(`refusing to delete keys outside a test run's own prefix: ${prefix}`);
  await deleteKeysUnder(redis, prefix);
}

export interface TaskSpec {
  after?: string[];
  unless?: string[];
  andEvery?: string;
  withParams?: Record<string, unknown>;
  retry?: { max: number };
}

/** A workflow as the file would hold it, checked by the real parser; inputs not starting with t_ become events. */
export function workflow(name: string, tasks: Record<string, TaskSpec>, extraEvents: string[] = []): WorkflowConfig {
  const inputs = new Set<string>(extraEvents);
  for (const t of Object.values(tasks)) for (const i of [...(t.after ?? []), ...(t.unless ?? []), ...(t.andEvery ? [t.andEvery] : [])]) inputs.add(i);
  const events = Object.fromEntries([...inputs].filter((i) => !i.startsWith('t_')).map((i) => [i, { table: 'public.things', on: ['post_save'] }]));
  const fileTasks = Object.fromEntries(Object.entries(tasks).map(([n, t]) => [n, { ...t, run: { cloudevent: {} } }]));
  const parsed = parseWorkflowsConfig({ redis: { url: REDIS_URL }, workflows: [{ name, session: 'data.id', events, tasks: fileTasks }] }, {});
  return parsed.workflows[0];
}

/**
 * The framework's stock tasks: passThru returns { kwargs: payload }, devNull {}, failing throws;
 * failUntilDepth(n) fails while the instance's depth is below n and then returns { count: depth }
 * (a task that retries itself n times).
 */
export type StockTask = 'passThru' | 'devNull' | 'failing' | { failUntilDepth: number };

export function stockExecutor(tasks: Record<string, StockTask>, runs: RunRequest[] = []): Execute {
  return async (run) => {
    runs.push(run);
    const kind = tasks[run.task] ?? 'passThru';
    if (kind === 'passThru') return { kwargs: run.payload };
    if (kind === 'devNull') return {};
    if (kind === 'failing') throw new Error(`${run.instance} fails on purpose`);
    if (run.depth < kind.failUntilDepth) throw Object.assign(new Error(`${run.instance}: not yet`), { name: 'NotYet' });
    return { count: run.depth };
  };
}

export function plain(value: unknown): unknown {
  return isPlainObject(value) || Array.isArray(value) ? JSON.parse(JSON.stringify(value)) : value;
}
