import type { BrokerConfig, Config } from '../config/types';
import { ConfigError, ErrorCodes, PgceError } from '../errors';
import { validateBroker, type BrokerType } from './broker';
import { ConsoleSink } from './console';
import { HttpSink } from './http';
import { kafkaBroker } from './kafka';
import { mqttBroker } from './mqtt';
import { natsBroker } from './nats';
import { pubsubBroker } from './pubsub';
import { rabbitmqBroker } from './rabbitmq';
import { redisBroker } from './redis';
import { ModuleSink } from './module';
import type { Destination, Sink } from './types';

/**
 * The sink registry. CLOUDEVENTS_HANDLER (or `handler`) names a built-in sink, a configured broker
 * (`brokers.<name>`), or a module `path/to/file.js#export`. A new broker type is one module in
 * src/sinks/<type>/ exporting a BrokerType, and one line in BROKER_TYPES.
 */
const BROKER_TYPES: Record<string, BrokerType> = {
  kafka: kafkaBroker,
  pubsub: pubsubBroker,
  redis: redisBroker,
  rabbitmq: rabbitmqBroker,
  nats: natsBroker,
  mqtt: mqttBroker,
};

const BUILT_IN: Record<string, (config: Config) => Sink> = {
  http: (config) => new HttpSink(config.sink),
  console: () => new ConsoleSink(),
};

export function knownSinks(): string[] {
  return [...Object.keys(BUILT_IN), ...Object.keys(BROKER_TYPES)];
}

const has = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/** Every problem with the configured brokers, by key path; empty when all are valid. */
export function validateBrokers(config: Config): string[] {
  return Object.values(config.brokers).flatMap((b) =>
    has(BROKER_TYPES, b.type) ? validateBroker(BROKER_TYPES[b.type], b) : [`brokers.${b.name}.type: ${b.type} is not available in this build`]);
}

/**
 * Why the commands that deliver (run, check, dead-letters replay) have nowhere to deliver; empty
 * when they have. Never a quiet console instead: a pod that starts before its SinkBinding injects
 * K_SINK would acknowledge every change of that window into stdout, and lose it.
 */
export function sinkProblems(config: Config): string[] {
  if (config.handler !== 'http' || config.sink.url !== undefined) return [];
  return [
    'K_SINK: not set, so there is nowhere to deliver. Set K_SINK (a SinkBinding or ContainerSource injects it) ' +
    'or sink.url in the configuration file, or choose a handler with CLOUDEVENTS_HANDLER (or handler in the file): ' +
    'console prints the events to stdout, or a configured broker, or a module path/to/file.js#export',
  ];
}

/** Throws the ConfigError (exit 2) of sinkProblems; commands that never deliver do not call it. */
export function requireSink(config: Config): void {
  const problems = sinkProblems(config);
  if (problems.length) throw new ConfigError(problems);
}

export function createSink(name: string, config: Config): Sink {
  if (has(config.brokers, name)) {
    const broker = config.brokers[name];
    const problems = validateBrokers({ ...config, brokers: { [name]: broker } });
    if (problems.length) throw new ConfigError(problems);
    return BROKER_TYPES[broker.type].create(broker, config);
  }
  if (has(BUILT_IN, name)) return BUILT_IN[name](config);
  if (has(BROKER_TYPES, name)) {
    throw new PgceError(ErrorCodes.SINK_CONFIG,
      `CLOUDEVENTS_HANDLER ${name} needs connection settings: add a broker to the configuration file ` +
      `(brokers: { ${name}: { type: ${name}, conn: {…}, params: {…} } }) and name it as the handler`);
  }
  if (name.includes('#') || /\.(c?js|mjs)$/.test(name)) return new ModuleSink(name);
  throw new PgceError(
    ErrorCodes.SINK_CONFIG,
    `CLOUDEVENTS_HANDLER ${JSON.stringify(name)} is not a known handler; known: ${knownSinks().join(', ')}, ` +
    `a configured broker, or a module path/to/file.js#export`,
  );
}

/**
 * What is wrong with broker `name` used with `params` merged over its own (a trigger action's
 * `params`), named from `where` (the action's key path); [] when it is fine. Not a configured broker,
 * or a type this build lacks, is named too.
 */
export function brokerOverrideProblems(name: string, params: Record<string, unknown>, brokers: Readonly<Record<string, BrokerConfig>>, where: string): string[] {
  if (!has(brokers, name)) {
    const names = Object.keys(brokers);
    return [`${where}.broker: ${JSON.stringify(name)} is not a configured broker (${names.length ? `brokers: ${names.join(', ')}` : 'no brokers are configured; add it under brokers'})`];
  }
  const broker = brokers[name];
  if (!has(BROKER_TYPES, broker.type)) return [`brokers.${name}.type: ${broker.type} is not available in this build`];
  const merged = { ...broker, params: { ...broker.params, ...params } };
  return validateBroker(BROKER_TYPES[broker.type], merged, { params: `${where}.params (merged over brokers.${name}.params)` });
}

/**
 * The sink of broker `name` with `params` merged over its own (a trigger action's): validated
 * again (ConfigError naming `where`), and created as the broker's own, with `config.sink.timeoutMs`
 * bounding each send.
 */
export function createBrokerSink(name: string, params: Record<string, unknown>, config: Config, where = `brokers.${name}`): Sink {
  const problems = brokerOverrideProblems(name, params, config.brokers, where);
  if (problems.length) throw new ConfigError(problems);
  const broker = config.brokers[name];
  return BROKER_TYPES[broker.type].create({ ...broker, params: { ...broker.params, ...params } }, config);
}

/**
 * Events per send for the handler `name`: `sink.batchSize` for HTTP in batch mode, a broker's
 * `batchSize` for a broker whose sink can send several at once, else 1.
 */
export function batchSizeFor(name: string, config: Config): number {
  if (has(config.brokers, name)) return config.brokers[name].batchSize ?? 1;
  if (name === 'http' && config.sink.mode === 'batch') return config.sink.batchSize;
  return 1;
}

/** The destination `name` (a handler name, as for `createSink`): its sink and batch size. */
export function createDestination(name: string, config: Config): Destination {
  return { name, sink: createSink(name, config), batchSize: batchSizeFor(name, config) };
}

/**
 * Knative's `delivery.deadLetterSink`, when configured: an HTTP destination with the sink's TLS
 * trust, token and timeout, always in binary mode (Knative's dispatcher sends dead letters as it
 * received them, and the knativeerror* extensions then travel as ce- headers).
 */
export function deadLetterDestination(config: Config): Destination | undefined {
  const url = config.delivery.deadLetterSink;
  if (!url) return undefined;
  return { name: 'deadLetterSink', sink: new HttpSink({ ...config.sink, url, mode: 'binary' }), batchSize: 1 };
}

/**
 * The default route's destination (README "Destination names"): the configured handler, whichever
 * it is. Deliveries, dead letters, metrics and /status name it so; a dead letter stored before
 * destinations were recorded has this name too (migration 000004). Trigger actions will be named
 * `trigger:<rule>/<n>`; any other name is a handler name, as for `createSink`.
 */
export const DEFAULT_DESTINATION = 'default';

/**
 * The destinations of one process, each resolved once by name (its sink's connections are opened
 * once and reused across leadership terms) and closed together when the process ends.
 */
export class Destinations {
  private readonly byName = new Map<string, Destination>();

  constructor(private readonly config: Config) {}

  /**
   * The destination `name`: DEFAULT_DESTINATION (the configured handler, sharing its sink), or a
   * handler name. Throws SINK_CONFIG when the name resolves to nothing (e.g. a broker since removed
   * from the configuration).
   */
  get(name: string): Destination {
    let destination = this.byName.get(name);
    if (!destination) {
      destination = name === DEFAULT_DESTINATION
        ? { ...this.get(this.config.handler), name }
        : createDestination(name, this.config);
      this.byName.set(name, destination);
    }
    return destination;
  }

  /** Closes every sink opened (once each); all are tried, the first failure is thrown. */
  async close(): Promise<void> {
    const sinks = new Set([...this.byName.values()].map((d) => d.sink));
    const results = await Promise.allSettled([...sinks].map((s) => s.close()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}
