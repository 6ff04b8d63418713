/**
 * An action's `rateLimit` (`50/s`, `10/m`): at most `count` sends in any window of `perMs`. A send
 * beyond it waits its turn (first come, first served) and is never dropped or failed: the waiting
 * holds the action's lane, which is the backpressure. Hand-written (no rate limiter is among the
 * dependencies; p-limit bounds concurrency, not rate), with the clock injectable so tests drive it.
 */
import type { RateLimit } from '../../config/types';
import { DeliveryError } from '../../errors';
import { realTimers, type Timers } from '../../sinks/support/deadline';

const RATE = /^([1-9][0-9]{0,5})\/(s|m)$/;
const PER_MS = { s: 1000, m: 60_000 } as const;

/** `50/s` → { count: 50, perMs: 1000 }; undefined for anything else. */
export function parseRateLimit(text: string): RateLimit | undefined {
  const m = RATE.exec(text.trim());
  return m ? { count: Number(m[1]), perMs: PER_MS[m[2] as 's' | 'm'], text: text.trim() } : undefined;
}

/**
 * A sliding window: the times of the last `count` sends, in a ring. A send may go when the oldest
 * of them is at least `perMs` old, so no window of `perMs` ever holds more than `count` sends
 * (a token bucket refilling continuously would let up to twice that through at a window's edge).
 */
export class RateLimiter {
  private readonly sent: number[] = [];
  private next = 0;
  private readonly waiting: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private timer?: unknown;
  private closed = false;

  constructor(readonly limit: RateLimit, private readonly timers: Timers = realTimers) {}

  /** Resolves when one more send fits; rejects (retriably) only when the limiter is closed. */
  take(): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.pump();
    });
  }

  /** Sends waiting now (for tests and status). */
  get queued(): number {
    return this.waiting.length;
  }

  /** Waiting sends fail retriably (the process is ending: they are sent again after a restart). */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) this.timers.clear(this.timer);
    this.timer = undefined;
    for (const w of this.waiting.splice(0)) w.reject(this.closedError());
  }

  private pump(): void {
    if (this.timer !== undefined) return;
    while (this.waiting.length > 0) {
      const now = this.timers.now();
      const waitMs = this.sent.length < this.limit.count ? 0 : this.sent[this.next] + this.limit.perMs - now;
      if (waitMs > 0) {
        this.timer = this.timers.set(() => {
          this.timer = undefined;
          this.pump();
        }, waitMs);
        return;
      }
      this.sent[this.next] = now;
      this.next = (this.next + 1) % this.limit.count;
      this.waiting.shift()!.resolve();
    }
  }

  private closedError(): DeliveryError {
    return new DeliveryError(`rate limit ${this.limit.text}: closed while waiting for a turn`, { retriable: true });
  }
}
