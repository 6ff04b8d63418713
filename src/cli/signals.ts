import type { Logger } from 'pino';

/**
 * SIGTERM/SIGINT for a long-running command. The first signal aborts `signal` (a graceful stop)
 * and arms a deadline after which the process exits anyway; a second signal exits at once. So a
 * signal is always honoured: during start-up, while standing by, and while shutting down.
 */
export interface StopSignals {
  /** Aborts on the first SIGTERM/SIGINT. */
  readonly signal: AbortSignal;
  /** Removes the handlers and the deadline (the command is done). */
  dispose(): void;
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;
const SIGNAL_NUMBERS: Record<(typeof SIGNALS)[number], number> = { SIGINT: 2, SIGTERM: 15 };

export function watchSignals(log: Logger, deadlineMs: number, exit: (code: number) => void = (c) => process.exit(c)): StopSignals {
  const controller = new AbortController();
  let deadline: NodeJS.Timeout | undefined;
  const onSignal = (signal: (typeof SIGNALS)[number]) => {
    if (controller.signal.aborted) {
      log.warn({ signal }, 'second signal: exiting now, without finishing the delivery in flight (it is not acknowledged)');
      exit(128 + SIGNAL_NUMBERS[signal]);
      return;
    }
    log.info({ signal, deadlineMs }, 'stopping: finishing the delivery in flight, then acknowledging');
    // Unref'd: it only fires when something still holds the process past the deadline.
    deadline = setTimeout(() => {
      log.error({ deadlineMs }, 'shutdown did not finish in time; exiting');
      exit(1);
    }, deadlineMs);
    deadline.unref();
    controller.abort();
  };
  for (const name of SIGNALS) process.on(name, onSignal);
  return {
    signal: controller.signal,
    dispose() {
      for (const name of SIGNALS) process.off(name, onSignal);
      clearTimeout(deadline);
    },
  };
}

export { StopRequested, unlessStopped } from '../abort';
