/**
 * What the recovery tests (CLI and admin API) share: one configuration file, read by the child
 * process and by the test through the same loader, and sessions brought to a state through the
 * core's store and a runner with the framework's stock tasks.
 */
import Redis from 'ioredis';
import { loadConfig } from '../../../src/config/load';
import { RawJson } from '../../../src/events/json-text';
import type { WorkflowConfig } from '../../../src/workflows/config';
import { WorkflowRunner, type RunRequest } from '../../../src/workflows/runner';
import { WorkflowStore } from '../../../src/workflows/store';
import { writeTempFile } from '../support';
import { deleteKeys, REDIS_URL, stockExecutor, uniquePrefix, type StockTask } from './support';

export const WORKFLOW = 'wfops';

/** t_beta waits for t_alpha's result (cascade); no tables, no database: the operator's file. */
export function recoveryYaml(prefix: string): string {
  return `redis: { url: "${REDIS_URL}", prefix: "${prefix}" }
workflows:
  - name: ${WORKFLOW}
    session: data.order_id
    events:
      paid: { table: public.orders, on: [post_save] }
    tasks:
      t_alpha: { after: [paid], run: { cloudevent: { type: com.example.alpha } } }
      t_beta: { after: [t_alpha], run: { cloudevent: { type: com.example.beta } } }
`;
}

export interface Recovery {
  prefix: string;
  configPath: string;
  redis: Redis;
  store: WorkflowStore;
  workflow: WorkflowConfig;
  /** Every run the test's runners made, in order. */
  runs: RunRequest[];
  /** Fires `paid` for each session, then runs what that scheduled with t_alpha as `alpha`. */
  seed(sessions: string[], alpha: StockTask): Promise<void>;
  /** Runs whatever is scheduled now (stock passThru: a run's result is { kwargs: payload }). */
  drain(): Promise<RunRequest[]>;
  close(): Promise<void>;
}

export async function startRecovery(): Promise<Recovery> {
  const prefix = uniquePrefix('hy');
  const yaml = recoveryYaml(prefix);
  const configPath = writeTempFile('workflows.yaml', yaml);
  const config = loadConfig({ env: {}, configPath, requires: { tables: false, database: false } });
  const workflow = config.workflows![0];
  const redis = new Redis(REDIS_URL);
  const store = new WorkflowStore(redis, workflow, { prefix });
  const runs: RunRequest[] = [];
  const drain = async (tasks: Record<string, StockTask> = {}): Promise<RunRequest[]> => {
    const before = runs.length;
    await new WorkflowRunner(store, stockExecutor(tasks, runs)).drain();
    return runs.slice(before);
  };
  return {
    prefix, configPath, redis, store, workflow, runs,
    async seed(sessions, alpha) {
      for (const session of sessions) {
        await store.fire(session, { input: 'paid', eventId: `${session}-paid`, data: { order_id: session, amount: new RawJson('12345678901234567890') } });
      }
      await drain({ t_alpha: alpha });
    },
    drain: () => drain(),
    async close() {
      await deleteKeys(redis, prefix);
      await redis.quit();
    },
  };
}
