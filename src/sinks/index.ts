import type { Config } from '../config/types';
import { ErrorCodes, PgceError } from '../errors';
import { ConsoleSink } from './console';
import { HttpSink } from './http';
import type { Sink } from './types';

/**
 * The sink registry: CLOUDEVENTS_HANDLER names one of these. A new sink is one module in its own
 * folder and one line here.
 */
const SINKS: Record<string, (config: Config) => Sink> = {
  http: (config) => new HttpSink(config.sink),
  console: () => new ConsoleSink(),
};

export function knownSinks(): string[] {
  return Object.keys(SINKS);
}

export function createSink(name: string, config: Config): Sink {
  const make = Object.prototype.hasOwnProperty.call(SINKS, name) ? SINKS[name] : undefined;
  if (!make) {
    throw new PgceError(
      ErrorCodes.SINK_CONFIG,
      `CLOUDEVENTS_HANDLER ${JSON.stringify(name)} is not a known handler; known: ${knownSinks().join(', ')}`,
    );
  }
  return make(config);
}
