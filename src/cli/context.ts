import { loadConfig, type LoadConfigOptions } from '../config/load';
import type { Config } from '../config/types';
import { ConfigError } from '../errors';
import { configureLogger, type LogFormat } from '../logger';
import { validateBrokers } from '../sinks';
import type { CommandOptions } from './command';
import type { OutputStyle } from './output';

/**
 * Configuration first (an invalid file stops us before any connection), then the logger in the
 * command's style. A command asks only for what it needs: `requires.tables` defaults to true
 * (README "Commands"). Warnings about the configuration are said either way, through the reporter.
 */
export function configure(options: CommandOptions, requires?: LoadConfigOptions['requires']): Config {
  const warnings: string[] = [];
  try {
    const config = loadConfig({ env: options.env, configPath: options.configPath, requires, warn: (w) => warnings.push(w) });
    // Each broker type checks its own conn/params: still before anything connects.
    const brokerProblems = validateBrokers(config);
    if (brokerProblems.length) throw new ConfigError(brokerProblems);
    configureLogger({ level: config.logLevel, format: logFormat(options.output) });
    return config;
  } finally {
    for (const w of warnings) options.report.warn(w);
  }
}

/** Library code logs through pino: as JSON lines for `run`, as `warning: …` text for people. */
export function logFormat(output: OutputStyle): LogFormat {
  return output === 'log' ? 'json' : 'text';
}

export { inspectAndVerify, withDatabase } from '../sources/logical/database';
