/**
 * The per-send bound every sink keeps (`sink.timeoutMs`): a send that the server has not confirmed
 * by then fails, retriably, instead of holding its row's later events. The library call itself
 * cannot always be cancelled; it is left to settle on its own, and its late failure is swallowed
 * because the send already failed.
 */

/** Timer functions, injectable so tests can drive the clock. */
export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
  now(): number;
}

export const realTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
  now: () => Date.now(),
};

/** The work did not settle within its time. Sinks turn it into their retriable DeliveryError. */
export class DeadlineExceeded extends Error {
  constructor(readonly ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'DeadlineExceeded';
  }
}

export interface DeadlineOptions {
  /** Called once at the deadline, before the rejection: let go of what the work holds. */
  onLate?: () => void;
  /** The error to reject with at the deadline; DeadlineExceeded by default. */
  error?: (ms: number) => Error;
  timers?: Timers;
}

/**
 * Runs `work` for at most `ms`: resolves or rejects as it does, or rejects with DeadlineExceeded at
 * the deadline (or `options.error`). A synchronous throw of `work` is a rejection.
 */
export function withDeadline<T>(ms: number, work: () => Promise<T>, options: DeadlineOptions = {}): Promise<T> {
  const timers = options.timers ?? realTimers;
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const handle = timers.set(() => {
      if (settled) return;
      settled = true;
      try {
        options.onLate?.();
      } finally {
        reject(options.error ? options.error(ms) : new DeadlineExceeded(ms));
      }
    }, ms);
    const finish = (settle: () => void) => {
      if (settled) return; // already failed at the deadline: a late outcome is dropped
      settled = true;
      timers.clear(handle);
      settle();
    };
    let running: Promise<T>;
    try {
      running = work();
    } catch (err) {
      running = Promise.reject(err);
    }
    running.then((value) => finish(() => resolve(value)), (err: unknown) => finish(() => reject(err)));
  });
}

/**
 * One budget for several steps of a send (wait for the connection, then publish): each step gets
 * what is left of `ms`, at least 1 ms so a step never runs unbounded.
 */
export class Budget {
  private readonly started: number;
  constructor(readonly ms: number, private readonly timers: Timers = realTimers) {
    this.started = timers.now();
  }

  left(): number {
    return Math.max(1, this.ms - (this.timers.now() - this.started));
  }

  /** withDeadline with what is left of the budget. */
  run<T>(work: () => Promise<T>, options: Omit<DeadlineOptions, 'timers'> = {}): Promise<T> {
    return withDeadline(this.left(), work, { ...options, timers: this.timers });
  }
}
