import { CLOSE_TIMEOUT_MS, runPipeline } from '../app';
import { logger } from '../logger';
import { requireSink } from '../sinks';
import { resolveBrokerConn } from '../config/broker-conn';
import type { Command } from './command';
import { configure } from './context';
import { watchSignals } from './signals';

/** After the first signal the process exits at the latest this long after the grace period. */
const SHUTDOWN_MARGIN_MS = 5_000;

/**
 * `run`: the pipeline (src/app.ts) until SIGTERM/SIGINT. A signal lets the sends in flight finish
 * within `delivery.shutdownGracePeriod`; a final error stops at once (exit 1). Either way every
 * connection is closed before `run` returns; a second signal, or the deadline, exits at once.
 */
export const runCommand: Command = {
  summary: 'capture and deliver until SIGTERM/SIGINT (creates the publication and slot when missing)',
  // A pod's logs are collected and parsed: JSON lines, not text.
  output: 'log',
  async run(options) {
    // Dynamic values in a broker's conn are read now, once, before anything connects.
    const config = await resolveBrokerConn(configure(options));
    requireSink(config);
    const log = logger('run');
    const graceMs = config.delivery.shutdownGracePeriodMs ?? 0;
    // From here on a signal is honoured, even while connecting or waiting for a lock.
    const signals = watchSignals(log, graceMs + CLOSE_TIMEOUT_MS + SHUTDOWN_MARGIN_MS);
    try {
      await runPipeline(config, { env: options.env, stopping: signals.signal });
    } finally {
      signals.dispose();
    }
    log.info('stopped');
    return 0;
  },
};
