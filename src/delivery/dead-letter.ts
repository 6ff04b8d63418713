import type { CloudEvent } from 'cloudevents';
import type { Destination } from '../sinks/types';
import type { Change } from '../sources/change';

/** What the engine knows about an event that failed for good. */
export interface FailedDelivery {
  event: CloudEvent<unknown>;
  /** The change it came from; absent for a workflow task's run (no change behind it: no commit LSN). */
  change?: Change;
  /** Where it failed (`knativeerrordest` names it). */
  destination: Destination;
  error: Error;
  /** The sink's answer code, when there was one. */
  status?: number;
  attempts: number;
  firstAttemptAt: Date;
  lastAttemptAt: Date;
}

/**
 * Stores a failed delivery (dead-letter table, and the dead-letter sink when configured). Resolves
 * only once the event is durably stored: until then its position must not be acknowledged, so the
 * implementation retries storage itself and rejects only when `signal` aborts (shutdown).
 */
export type DeadLetterHandler = (failed: FailedDelivery, signal: AbortSignal) => Promise<void>;
