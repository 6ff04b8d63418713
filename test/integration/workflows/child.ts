/**
 * A second process for the concurrency and crash tests (durability.test.ts), with its own Redis
 * connection: `node child.js <json>`.
 *   mode fire: waits for the parent's go (BLPOP), fires its events and runs what is scheduled;
 *     every run appends its instance name to <prefix>runs.
 *   mode hang: runs the work stream; its task appends to <prefix>started and never returns
 *     (the parent kills it with SIGKILL mid-run).
 */
import Redis from 'ioredis';
import { WorkflowRunner } from '../../../src/workflows/runner';
import { WorkflowStore, type InputEvent } from '../../../src/workflows/store';
import { REDIS_URL, workflow, type TaskSpec } from './support';

export interface ChildArgs {
  mode: 'fire' | 'hang';
  prefix: string;
  name: string;
  tasks: Record<string, TaskSpec>;
  session: string;
  events?: InputEvent[];
  consumer: string;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2]) as ChildArgs;
  const redis = new Redis(REDIS_URL);
  const store = new WorkflowStore(redis, workflow(args.name, args.tasks), { prefix: args.prefix });
  if (args.mode === 'hang') {
    const runner = new WorkflowRunner(
      store,
      async (run) => {
        await redis.rpush(`${args.prefix}started`, JSON.stringify({ instance: run.instance, attempt: run.attempt, id: run.id }));
        return new Promise(() => undefined);
      },
      { consumer: args.consumer, heartbeatMs: 50 },
    );
    await runner.runOnce();
    return;
  }
  const runner = new WorkflowRunner(
    store,
    async (run) => {
      await redis.rpush(`${args.prefix}runs`, run.instance);
      return {};
    },
    { consumer: args.consumer },
  );
  await redis.blpop(`${args.prefix}go`, 30);
  await Promise.all((args.events ?? []).map((e) => store.fire(args.session, e)));
  await runner.drain();
  await redis.quit();
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
