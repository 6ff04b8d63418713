/**
 * Memory per workflow session (README "Workflows", "Keys and memory"), measured on the local
 * Redis: sessions of a two-input workflow fed both inputs (so one instance is scheduled), then
 * MEMORY USAGE of each session's hash. Run: `make build && node dist/bench/workflow-memory.js`
 * (REDIS_URL, default redis://127.0.0.1:6379). Writes nothing but its own keys, deleted at the end.
 */
import Redis from 'ioredis';
import { parseWorkflowsConfig } from '../src/workflows/config';
import { WorkflowStore } from '../src/workflows/store';
import { deleteKeysUnder } from '../test/integration/harness/redis';

const SESSIONS = 1000;

async function main(): Promise<void> {
  const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const redis = new Redis(url);
  const prefix = `pgce_bench_wfmem_${process.pid}:`;
  const [workflow] = parseWorkflowsConfig({
    redis: { url },
    workflows: [{
      name: 'orders',
      session: 'data.order_id',
      events: {
        paid: { table: 'public.payments', on: ['post_save'] },
        packed: { table: 'public.shipments', on: ['post_save'] },
        refund: { table: 'public.refunds', on: ['post_save'] },
      },
      tasks: {
        t_ship: { after: ['paid', 'packed'], unless: ['refund'], run: { cloudevent: {} } },
        t_notify: { after: ['t_ship'], run: { cloudevent: {} } },
      },
    }],
  }, {}).workflows;
  const store = new WorkflowStore(redis, workflow, { prefix });
  const row = { id: 1, order_id: 0, amount: '19.90', status: 'captured', created_at: '2026-12-02T00:00:00Z' };
  const sizes: number[] = [];
  try {
    for (let s = 0; s < SESSIONS; s++) {
      await store.fire(`o-${s}`, { input: 'paid', eventId: `e-${s}-paid`, data: { ...row, order_id: s } });
      await store.fire(`o-${s}`, { input: 'packed', eventId: `e-${s}-packed`, data: { ...row, order_id: s, status: 'packed' } });
      sizes.push(Number(await redis.memory('USAGE', store.keys.session(`o-${s}`))));
    }
    sizes.sort((a, b) => a - b);
    const at = (q: number) => sizes[Math.min(sizes.length - 1, Math.floor(q * sizes.length))];
    const rowBytes = Buffer.byteLength(JSON.stringify(row));
    process.stdout.write(`${SESSIONS} sessions, two inputs of ${rowBytes} B of JSON each, one instance scheduled: ` +
      `MEMORY USAGE per session min ${sizes[0]} B, median ${at(0.5)} B, p99 ${at(0.99)} B, max ${sizes[sizes.length - 1]} B\n`);
  } finally {
    await deleteKeysUnder(redis, prefix);
    await redis.quit();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
