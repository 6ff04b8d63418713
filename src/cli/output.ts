import { logger } from '../logger';

/**
 * How a command speaks to the person or system that runs it (README, "Commands"). `run` lives in
 * a pod whose logs are collected, so it writes JSON lines (pino). The other commands are run by a
 * person at a terminal: their warnings and notices are plain text on stderr, and stdout keeps the
 * command's result (SQL, tables, events) clean for pipes.
 */
export type OutputStyle = 'human' | 'log';

export interface Reporter {
  /** Something the user should look at; the command still succeeds. */
  warn(message: string): void;
  /** Something worth knowing that needs no action. */
  notice(message: string): void;
}

/** `warning: …` and `notice: …` lines on `stream`. */
export function humanReporter(stream: { write(text: string): unknown } = process.stderr): Reporter {
  return {
    warn: (message) => stream.write(`warning: ${message}\n`),
    notice: (message) => stream.write(`notice: ${message}\n`),
  };
}

/** Log records of `component`; the logger is looked up on each call, so configureLogger applies. */
export function logReporter(component: string): Reporter {
  return {
    warn: (message) => logger(component).warn(message),
    notice: (message) => logger(component).info(message),
  };
}

export function reporterFor(style: OutputStyle, component: string): Reporter {
  return style === 'log' ? logReporter(component) : humanReporter();
}
