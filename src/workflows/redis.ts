/**
 * The Redis connection workflows run on (config `redis`). Commands must fail rather than wait in
 * ioredis's offline queue while Redis is away: an input whose command fails is a retriable
 * delivery failure (the change stays unacknowledged and is tried again with the delivery
 * backoff), and a runner whose read fails tries again a moment later. So a command gets one
 * reconnection attempt; the connection itself keeps reconnecting in the background.
 */
import type Redis from 'ioredis';
import type { WorkflowRedisConfig } from './config';

/** The longest wait between reconnection attempts. */
const RECONNECT_MAX_MS = 2_000;
const CONNECT_TIMEOUT_MS = 5_000;

export function connectRedis(config: Pick<WorkflowRedisConfig, 'url'>): Redis {
  // Loaded on use, as the brokers' client libraries: a process without workflows never loads it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const IORedis = (require('ioredis') as { default: typeof Redis }).default;
  const redis = new IORedis(config.url, {
    maxRetriesPerRequest: 1,
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: (times) => Math.min(times * 100, RECONNECT_MAX_MS),
  });
  // Failures reach the commands that meet them; the connection's own 'error' events would
  // otherwise be printed by ioredis as unhandled.
  redis.on('error', () => undefined);
  return redis;
}

/** Closes the connection: QUIT when connected (pending replies first), else at once. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'ready') {
    await redis.quit().catch(() => redis.disconnect());
  } else {
    redis.disconnect();
  }
}
