import { withDeadline, type Timers } from './deadline';

/**
 * The one connection a broker sink holds (a producer, a channel, a client): opened on the first
 * send rather than at start, so a broker that is down at start-up delays nothing else (`check`
 * opens it on purpose). Concurrent sends share one attempt in flight; a failed attempt, or a
 * connection the sink dropped because it broke, is replaced by a fresh attempt on the next use.
 * close() is idempotent and safe while an attempt is in flight: the connection that arrives after
 * it is released at once, never kept. A polite release (which waits for the server) is bounded by
 * `closeTimeoutMs`, then forced: a server that stopped answering never holds up shutdown.
 */
export interface LazyConnectionOptions<C> {
  /** Opens one connection. */
  open(): Promise<C>;
  /** Releases a connection; its failure is ignored (the connection is being let go anyway). */
  dispose(conn: C): Promise<void> | void;
  /** What a use after close() fails with (sinks: a retriable DeliveryError). */
  closedError(): Error;
  /** Bound on a polite dispose(); past it forceDispose() runs. */
  closeTimeoutMs?: number;
  /** Drops the connection without asking the server (destroys the socket). */
  forceDispose?(conn: C): void;
  timers?: Timers;
}

export class LazyConnection<C> {
  private current?: C;
  private opening?: Promise<C>;
  private closing?: Promise<void>;

  constructor(private readonly options: LazyConnectionOptions<C>) {}

  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** The open connection, without opening one. */
  peek(): C | undefined {
    return this.current;
  }

  /** The connection: the open one, the attempt in flight, or a new attempt. */
  get(): Promise<C> {
    if (this.closing) return Promise.reject(this.options.closedError());
    if (this.current !== undefined) return Promise.resolve(this.current);
    if (!this.opening) {
      let started: Promise<C>;
      try {
        started = this.options.open();
      } catch (err) {
        started = Promise.reject(err);
      }
      const attempt: Promise<C> = started.then(
        async (conn) => {
          if (this.opening === attempt) this.opening = undefined;
          if (this.closing) {
            await this.release(conn);
            throw this.options.closedError();
          }
          this.current = conn;
          return conn;
        },
        (err: unknown) => {
          if (this.opening === attempt) this.opening = undefined;
          throw err;
        },
      );
      this.opening = attempt;
    }
    return this.opening;
  }

  /**
   * `conn` broke: the next get() opens a new connection. Does not release it (the sink knows
   * whether it is already gone); a connection that is not the current one is ignored.
   */
  drop(conn: C): void {
    if (this.current === conn) this.current = undefined;
  }

  /** Releases the connection, and the one an attempt in flight brings; later uses fail. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const conn = this.current;
      this.current = undefined;
      const pending = this.opening;
      if (conn !== undefined) await this.release(conn);
      // An attempt in flight releases its connection itself when it arrives (see get()).
      await pending?.catch(() => undefined);
    })();
    return this.closing;
  }

  private async release(conn: C): Promise<void> {
    const { closeTimeoutMs, forceDispose, timers } = this.options;
    try {
      if (closeTimeoutMs === undefined || !forceDispose) await this.options.dispose(conn);
      else await withDeadline(closeTimeoutMs, async () => this.options.dispose(conn), { timers });
    } catch {
      // Already broken, or the server did not answer the goodbye: let go without asking.
      try {
        forceDispose?.(conn);
      } catch {
        // Nothing more to release.
      }
    }
  }
}
