import { join } from 'node:path';
import type { Pool } from 'pg';
import { errorMessage } from '../../errors';
import type { Lifecycle } from '../../lifecycle';
import { logger } from '../../logger';
import { parseLsn } from '../change';
import { loadSql } from '../../pg/sql-file';

export const HEARTBEAT_PREFIX = 'pg-cloudevents.heartbeat';

/**
 * A transactional logical message in the captured database (sql/heartbeat.sql): it reaches the
 * slot as a small transaction of its own, and acknowledging its commit moves the slot forward even
 * when the captured tables are idle and other tables (or databases) fill the WAL. Debezium's
 * heartbeat.action.query does the same job.
 */
export const HEARTBEAT_SQL = loadSql(join(__dirname, 'sql'), 'heartbeat.sql');

export class Heartbeat {
  private readonly log = logger('capture');
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly pool: Pool,
    private readonly intervalMs: number,
    private readonly lifecycle: Lifecycle,
  ) {}

  start(): void {
    if (this.intervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => void this.beat(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async beat(): Promise<bigint | undefined> {
    try {
      const { rows } = await this.pool.query(HEARTBEAT_SQL, [HEARTBEAT_PREFIX, new Date().toISOString()]);
      const lsn = parseLsn(rows[0].lsn);
      this.lifecycle.emit('capture:heartbeat', { lsn });
      return lsn;
    } catch (err) {
      // The replication stream reports database outages; a missed heartbeat only delays the slot.
      this.log.warn({ err: errorMessage(err) }, 'heartbeat failed');
      return undefined;
    }
  }
}
