import type { Change, UndecodableChange } from '../capture/change';

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
  /** Stop: abandon retries and queued work, wait for the attempt in flight. Nothing is acknowledged past it. */
  stop(): Promise<void>;
}

export interface ConsumerHooks {
  acknowledge(lsn: bigint, idle: boolean): void;
  onPressure(full: boolean): void;
}
