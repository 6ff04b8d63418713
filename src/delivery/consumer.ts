import type { Change, UndecodableChange } from '../sources/change';

/**
 * What capture hands its decoded stream to. Capture calls these in stream order; the consumer
 * calls `acknowledge` (given at construction) with an LSN only once everything before it is
 * delivered or dead-lettered, and asks for backpressure through `onPressure`.
 */
export interface ChangeConsumer {
  change(change: Change): void;
  /** A change that could not be decoded: it takes its place in the order and is dead-lettered. */
  undecodable(change: UndecodableChange): void;
  /** The transaction ending at `endLsn` has no more changes. */
  commit(endLsn: bigint): void;
  /**
   * The server's WAL position between transactions (from a keepalive): nothing committed before
   * it is still to come, so it may be acknowledged once the work queued before it is done. This
   * keeps the slot moving while captured tables are idle and others are busy.
   */
  position(lsn: bigint): void;
  /** The stream restarts from the slot: drop queued work that has not started (it will be resent). */
  reset(): Promise<void>;
  /**
   * Stop: take no more work and start no new attempt; attempts in flight may finish for up to
   * `graceMs` (default 0) and what they deliver is acknowledged; then everything not done is
   * abandoned, unacknowledged (the slot sends it again after a restart).
   */
  stop(graceMs?: number): Promise<void>;
}

export interface ConsumerHooks {
  acknowledge(lsn: bigint, idle: boolean): void;
  onPressure(full: boolean): void;
}
