/** Stopping work that cannot watch an AbortSignal itself (connecting, waiting for a lock). */

/** Thrown by `unlessStopped` when the stop signal came first. */
export class StopRequested extends Error {
  constructor() {
    super('stopped by a signal');
    this.name = 'AbortError';
  }
}

/**
 * `work`, or a StopRequested rejection as soon as `signal` aborts: a step that cannot watch the
 * signal itself (connecting, waiting for a lock) must not keep a stopping process alive. The
 * abandoned work's late result is ignored.
 */
export function unlessStopped<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  work.catch(() => undefined);
  if (signal.aborted) return Promise.reject(new StopRequested());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new StopRequested());
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
