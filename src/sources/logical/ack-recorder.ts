import type { Knex } from 'knex';
import type { Config } from '../../config/types';
import { errorMessage } from '../../errors';
import { subscribe, unsubscribe, type Lifecycle, type LifecycleHandlers } from '../../lifecycle';
import { logger } from '../../logger';
import { formatLsn } from '../change';
import type { Acknowledged } from './slot-guard';
import { recordAcknowledged } from '../../pg/slot-record';

/** How often the last acknowledged position is written to the slot record, at most. */
export const ACK_RECORD_INTERVAL_MS = 5_000;
/** `stop` writes the last position once more, but never waits longer than this for it. */
const FINAL_WRITE_MS = 2_000;

export interface AckRecorderOptions {
  /** The product's tables (src/pg/schema/knex.ts). */
  knex: Knex;
  config: Config;
  lifecycle: Lifecycle;
  intervalMs?: number;
}

/**
 * Keeps the slot record's acknowledged position current, off the capture path: the lifecycle
 * listener only remembers the latest position; a timer writes it every few seconds. A failed write
 * is logged and tried again at the next tick, never thrown: the record tells an operator where a
 * gap began, it is not what capture resumes from (the slot is).
 */
export class AckRecorder {
  private readonly log = logger('capture');
  private latest?: Acknowledged;
  private written = 0n;
  private writing?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private readonly handlers: LifecycleHandlers = {
    'capture:acknowledged': ({ lsn }) => {
      // A fresh stream reports 0/0 until it is told a position: not a position of ours.
      if (lsn > 0n && (!this.latest || lsn > this.latest.lsn)) this.latest = { lsn, at: new Date() };
    },
  };

  constructor(private readonly opts: AckRecorderOptions) {}

  start(): void {
    subscribe(this.opts.lifecycle, this.handlers);
    this.timer = setInterval(() => void this.flush(), this.opts.intervalMs ?? ACK_RECORD_INTERVAL_MS);
    this.timer.unref();
  }

  /** The last position this process confirmed to the slot, if any. */
  get lastAcknowledged(): Acknowledged | undefined {
    return this.latest;
  }

  /** Writes the latest position when it moved; one write at a time. */
  flush(): Promise<void> {
    const latest = this.latest;
    if (this.writing || !latest || latest.lsn <= this.written) return this.writing ?? Promise.resolve();
    const { config, knex } = this.opts;
    this.writing = recordAcknowledged(knex, config, formatLsn(latest.lsn), latest.at)
      .then(() => {
        this.written = latest.lsn;
      })
      .catch((err) => this.log.warn({ err: errorMessage(err), lsn: formatLsn(latest.lsn) }, 'could not record the acknowledged position; retrying'))
      .finally(() => {
        this.writing = undefined;
      });
    return this.writing;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    unsubscribe(this.opts.lifecycle, this.handlers);
    const final = (this.writing ?? Promise.resolve()).then(() => this.flush());
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([final, new Promise<void>((resolve) => (timer = setTimeout(resolve, FINAL_WRITE_MS)))]);
    clearTimeout(timer);
  }
}
