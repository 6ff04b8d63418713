import type { ChangeSource, ChangeSourceOptions } from '../contract';
import { join } from 'node:path';
import { loadSql } from '../../pg/sql-file';
import { Heartbeat } from './heartbeat';
import { CaptureSource, WATERMARK_PREFIX } from './source';

/** A backfill's watermark (sql/watermark.sql): a non-transactional message, at its own position. */
const WATERMARK_SQL = loadSql(join(__dirname, 'sql'), 'watermark.sql');

/**
 * The logical-replication source (`capture.mode: logical`): the slot's pgoutput stream, decoded
 * (./source.ts), plus the heartbeat that keeps the slot moving while the captured tables are idle
 * (./heartbeat.ts). A preview (`tail`) reads a temporary slot and writes no heartbeat.
 */
export function createLogicalSource(options: ChangeSourceOptions): ChangeSource {
  const { config, lifecycle } = options;
  const capture = new CaptureSource({
    config, pool: options.ownPool, consumer: options.consumer, lifecycle, temporarySlot: options.preview,
  });
  const heartbeat = options.preview ? undefined : new Heartbeat(options.pool, config.capture.heartbeatIntervalMs, lifecycle);
  return {
    async start() {
      const started = await capture.start();
      heartbeat?.start();
      return started;
    },
    async stop(graceMs = 0) {
      heartbeat?.stop();
      await capture.stop(graceMs);
    },
    acknowledge: (position, idle) => capture.acknowledge(position, idle),
    setPressure: (full) => capture.setPressure(full),
    async writeWatermark(token) {
      await options.pool.query(WATERMARK_SQL, [WATERMARK_PREFIX, token]);
    },
  };
}
