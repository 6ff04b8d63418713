import type { CloudEvent } from 'cloudevents';
import type { Change } from '../capture/change';
import type { DeliveryConfig } from '../config/types';
import { DeliveryError, errorMessage } from '../errors';
import type { Lifecycle } from '../lifecycle';
import { logger } from '../logger';
import type { Sink } from '../sinks/types';
import type { ChangeConsumer, ConsumerHooks } from './consumer';
import { deliverWithRetry } from './deliver';

type Item =
  | { kind: 'change'; change: Change }
  | { kind: 'commit'; lsn: bigint }
  | { kind: 'position'; lsn: bigint };

export interface SequentialOptions {
  sink: Sink;
  policy: DeliveryConfig;
  lifecycle: Lifecycle;
  hooks: ConsumerHooks;
  buildEvent(change: Change): CloudEvent<unknown>;
  /** Queue length at which capture is paused; it resumes below half of it. */
  highWaterMark?: number;
}

/**
 * Delivers one event at a time, in commit order, acknowledging a transaction only after its last
 * event was accepted. A final failure is not dropped: until dead letters exist, the event is
 * retried at the longest backoff, and the sink's health shows the problem in /status and metrics.
 */
export class SequentialConsumer implements ChangeConsumer {
  private readonly log = logger('delivery');
  private queue: Item[] = [];
  private head = 0;
  private full = false;
  private running?: Promise<void>;
  private working = false;
  private abort = new AbortController();
  private stopped = false;
  private readonly highWater: number;

  constructor(private readonly opts: SequentialOptions) {
    this.highWater = opts.highWaterMark ?? 1000;
  }

  change(change: Change): void {
    this.enqueue({ kind: 'change', change });
  }

  commit(lsn: bigint): void {
    this.enqueue({ kind: 'commit', lsn });
  }

  position(lsn: bigint): void {
    this.enqueue({ kind: 'position', lsn });
  }

  async reset(): Promise<void> {
    this.queue = [];
    this.head = 0;
    this.abort.abort();
    await this.running;
    this.abort = new AbortController();
    this.setPressure(false);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.reset();
  }

  get pending(): number {
    return this.queue.length - this.head;
  }

  private enqueue(item: Item): void {
    if (this.stopped) return;
    this.queue.push(item);
    if (!this.full && this.pending >= this.highWater) this.setPressure(true);
    if (!this.working) {
      this.working = true;
      this.running = this.work();
    }
  }

  private setPressure(full: boolean): void {
    if (this.full === full) return;
    this.full = full;
    this.opts.hooks.onPressure(full);
  }

  private async work(): Promise<void> {
    const signal = this.abort.signal;
    try {
      while (this.head < this.queue.length && !signal.aborted) {
        const item = this.queue[this.head];
        if (item.kind === 'change') {
          const done = await this.deliver(item.change, signal);
          if (!done) return;
        } else {
          this.opts.hooks.acknowledge(item.lsn, this.head + 1 === this.queue.length);
        }
        this.queue[this.head++] = undefined as never;
        if (this.head > 4096 && this.head * 2 > this.queue.length) {
          this.queue = this.queue.slice(this.head);
          this.head = 0;
        }
        if (this.full && this.pending < this.highWater / 2) this.setPressure(false);
      }
    } finally {
      // Cleared in the same tick as the loop's last check, so an item queued from then on starts
      // a new worker. (Cleared a microtask later, items arriving in the same socket read were lost
      // until the next message woke the queue.)
      this.working = false;
    }
  }

  /** True once delivered; false when stopped before that (the change stays unacknowledged). */
  private async deliver(change: Change, signal: AbortSignal): Promise<boolean> {
    const event = this.opts.buildEvent(change);
    const { sink, policy, lifecycle } = this.opts;
    let attempts = 0;
    for (;;) {
      try {
        const result = await deliverWithRetry(sink, event, policy, {
          signal,
          onAttemptFailed: ({ error, attempt, willRetry, retryInMs }) =>
            lifecycle.emit('delivery:attemptFailed', {
              event, error, status: error.status, attempt: attempts + attempt, willRetry, retryInMs,
            }),
        });
        attempts += result.attempts;
        lifecycle.emit('delivery:delivered', {
          event, attempts, latencyMs: Date.now() - change.commitTime.getTime(), commitTime: change.commitTime,
        });
        return true;
      } catch (err) {
        if (signal.aborted) return false;
        attempts += (err as { attempts?: number }).attempts ?? 1;
        const status = err instanceof DeliveryError ? err.status : undefined;
        this.log.error(
          { id: event.id, subject: event.subject, status, err: errorMessage(err) },
          'delivery failed for good; holding the stream and retrying at the longest backoff (no dead-letter sink yet)',
        );
        if (!(await sleep(policy.backoffMaxMs, signal))) return false;
      }
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
