/**
 * Counting at Redis: the sink XADDs each event to the run's stream as the fields `id` (the event
 * id) and `event` (the structured-mode JSON event; src/sinks/redis/sink.ts STREAM_FIELDS). One
 * connection loops on XREAD BLOCK with a large COUNT from the stream's start: no consumer group,
 * nothing to acknowledge, and a blocked XREAD returns as soon as an entry arrives (latency).
 */
import Redis from 'ioredis';
import { firstStringMember, type Tally } from '../tally';
import type { BrokerBench, ConsumerSpec, RunningConsumer } from './types';

export const REDIS_URL = 'redis://127.0.0.1:6379';
/** Entries per XREAD: enough that a drain is a few dozen round trips, not thousands. */
const COUNT = 10_000;
const BLOCK_MS = 1000;

type XReadReply = [stream: string, entries: [id: string, fields: string[]][]][] | null;

export const redisBench: BrokerBench = {
  kind: 'redis',
  async prepare(run) {
    const stream = run;
    return {
      spec: { kind: 'redis', servers: [REDIS_URL], destination: stream },
      vars: { url: REDIS_URL, stream },
      cleanup: async () => {
        const client = new Redis(REDIS_URL, { lazyConnect: true });
        try {
          await client.connect();
          await client.del(stream);
        } finally {
          client.disconnect();
        }
      },
    };
  },
  async consume(spec: ConsumerSpec, tally: Tally): Promise<RunningConsumer> {
    const client = new Redis(spec.servers[0], { lazyConnect: true, maxRetriesPerRequest: null });
    await client.connect();
    let closed = false;
    const loop = (async () => {
      let last = '0-0';
      while (!closed) {
        const reply = (await client.xread('COUNT', COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', spec.destination, last)) as XReadReply;
        if (!reply) continue;
        const now = Date.now();
        const entries = reply[0][1];
        for (const [, fields] of entries) {
          tally.message();
          // fields: ['id', <event id>, 'event', <JSON event>], in the order the sink wrote them.
          tally.record(fields[1], firstStringMember(fields[3], 'time'), now);
        }
        last = entries[entries.length - 1][0];
      }
    })();
    loop.catch((err: unknown) => {
      if (!closed) process.stderr.write(`redis counter: ${(err as Error).message}\n`);
    });
    return {
      close: async () => {
        closed = true;
        // A blocked XREAD ends with the connection.
        client.disconnect();
        await loop.catch(() => undefined);
      },
    };
  },
};
