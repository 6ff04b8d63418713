import type Redis from 'ioredis';

/**
 * Deletes every key that starts with `prefix` (SCAN, never KEYS, so a shared server is not
 * blocked). Callers check first that the prefix is their own run's.
 */
export async function deleteKeysUnder(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}
