import type { Pool } from 'pg';
import { Heartbeat } from './sources/logical/heartbeat';
import { CaptureSource } from './sources/logical/source';
import type { Config } from './config/types';
import type { ChangeConsumer, ConsumerHooks } from './delivery/consumer';
import type { Lifecycle } from './lifecycle';

export interface PipelineParts {
  config: Config;
  /** Shared by the heartbeat, dead letters and status. */
  pool: Pool;
  /**
   * Capture's own connection(s) for catalog lookups: a lookup must never queue behind a hung
   * dead-letter insert or status query, or decoding (and with it all delivery) would stall.
   */
  catalogPool: Pool;
  lifecycle: Lifecycle;
  /** Builds the delivery side for one term; the hooks lead back to this term's capture. */
  consumer(hooks: ConsumerHooks): ChangeConsumer;
}

/**
 * One term of capture → delivery → acknowledgement: built fresh each time this replica becomes
 * the leader, so nothing of a previous term (queues, relations, positions) leaks into the next.
 */
export class Pipeline {
  readonly consumer: ChangeConsumer;
  private readonly source: CaptureSource;
  private readonly heartbeat: Heartbeat;

  constructor(parts: PipelineParts) {
    let source: CaptureSource | undefined;
    this.consumer = parts.consumer({
      acknowledge: (lsn, idle) => source?.acknowledge(lsn, idle),
      onPressure: (full) => source?.setPressure(full),
    });
    source = new CaptureSource({ config: parts.config, pool: parts.catalogPool, consumer: this.consumer, lifecycle: parts.lifecycle });
    this.source = source;
    this.heartbeat = new Heartbeat(parts.pool, parts.config.capture.heartbeatIntervalMs, parts.lifecycle);
  }

  /** Resolves once capture is open; `done` settles when capture ends by itself (a final error). */
  async start(): Promise<{ done: Promise<void> }> {
    const started = await this.source.start();
    this.heartbeat.start();
    return started;
  }

  /**
   * Stop reading; let the sends in flight finish for up to `graceMs` and acknowledge what they
   * delivered; abandon the rest (unacknowledged, so sent again after a restart); close.
   */
  async stop(graceMs = 0): Promise<void> {
    this.heartbeat.stop();
    await this.source.stop(graceMs);
  }
}
