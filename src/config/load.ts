/**
 * Configuration, once, at the edge: defaults < configuration file < environment variables.
 * The file is validated by config/schema.json, the environment by the same format checks; every
 * problem is collected and reported together (ConfigError.problems), then the result is frozen.
 */
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { ConfigError, ErrorCodes, errorMessage } from '../errors';
import { parseCeOverrides } from '../events/overrides';
import { DEFAULT_MESSAGE_PREFIX } from '../sources/app-event';
import { LOG_LEVELS, scrubSecrets } from '../logger';
import { configuredNames, type ConfiguredNames } from './capture-names';
import { parseDuration } from './duration';
import { FORMATS, validateFileConfig, isHandler } from './schema';
import { displayName, parseTableName, resolveTables, splitTableList, tableKey, type TableEntry } from './tables';
import { resolveTriggers, TRIGGER_DEFAULTS, type FileTrigger } from './triggers';
import { resolveWorkflowsConfig, WORKFLOW_DEFAULTS } from '../workflows/config';
import { checkBrokerConn } from './broker-conn';
import { compileAllowList, type AllowList } from '../routing/triggers/allow';
import type { Config, LimitsConfig, TableConfig } from './types';

export interface LoadConfigOptions {
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Wins over PG_CLOUDEVENTS_CONFIG. */
  configPath?: string;
  /** What the command needs (README "Commands"): both default to true. */
  requires?: { tables?: boolean; database?: boolean };
  /**
   * Told about settings that load but are probably not what the user meant (ignored keys).
   * Called before loadConfig returns or throws; the caller prints them its own way.
   */
  warn?: (message: string) => void;
}

/** The file's shape, as config/schema.json allows it. */
export interface FileConfig {
  database?: { url?: string };
  source?: string;
  tables?: Array<string | TableEntry>;
  capture?: Partial<typeof DEFAULTS.capture> & { slot?: string; publication?: string };
  events?: { enabled?: boolean; format?: 'default' | 'django'; typePrefix?: string; schemaChanges?: boolean; messagePrefix?: string };
  handler?: string;
  brokers?: Record<string, { type: string; conn?: Record<string, unknown>; params?: Record<string, unknown>; batchSize?: number }>;
  triggers?: FileTrigger[];
  triggersTable?: Partial<typeof DEFAULTS.triggersTable>;
  allow?: unknown;
  limits?: Partial<typeof DEFAULTS.limits> & { maxActionTimeout?: string };
  redis?: unknown;
  workflows?: unknown;
  sink?: Partial<typeof DEFAULTS.sink> & { url?: string };
  delivery?: Partial<typeof DEFAULTS.delivery> & { retry?: number; retryAfterMax?: string; deadLetterSink?: string };
  deadLetters?: Partial<typeof DEFAULTS.deadLetters>;
  leader?: Partial<typeof DEFAULTS.leader>;
  server?: Partial<typeof DEFAULTS.server>;
  log?: Partial<typeof DEFAULTS.log>;
}


/** Defaults in the file's own terms (ISO 8601 durations); config/schema.json repeats them as `default`. */
export const DEFAULTS = {
  capture: {
    mode: 'logical' as 'logical' | 'trigger',
    // No slot or publication: the default is per database (src/config/capture-names.ts).
    statusInterval: 'PT10S',
    reconnectDelay: 'PT1S',
    reconnectMax: 'PT30S',
    heartbeatInterval: 'PT30S',
    retainedWalWarnBytes: 1024 * 1024 * 1024,
    retainedWalWarnFraction: 0.5,
    pollInterval: 'PT1S',
    batchSize: 500,
  },
  events: { enabled: true, format: 'default' as 'default' | 'django', schemaChanges: false, messagePrefix: DEFAULT_MESSAGE_PREFIX },
  sink: { mode: 'binary' as 'binary' | 'structured' | 'batch', batchSize: 100, caCertsDir: '/knative-custom-certs', oidcTokenPath: '/oidc/token' },
  // No `retry`: keep retrying, since nothing may be dropped unless it is dead-lettered.
  delivery: {
    backoffPolicy: 'exponential' as 'linear' | 'exponential',
    backoffDelay: 'PT0.2S',
    backoffMax: 'PT30S',
    timeout: 'PT30S',
    maxInFlight: 64,
    maxBufferBytes: 16 * 1024 * 1024,
    // Below Kubernetes' default terminationGracePeriodSeconds (30 s), leaving time to close.
    shutdownGracePeriod: 'PT20S',
  },
  deadLetters: { schema: 'pgcloudevents', table: 'dead_letters' },
  leader: { enabled: true, pollInterval: 'PT1S' },
  server: { port: 8080 },
  log: { level: 'info' },
  triggers: TRIGGER_DEFAULTS,
  redis: { prefix: WORKFLOW_DEFAULTS.prefix, reclaimAfter: WORKFLOW_DEFAULTS.reclaimAfter, heartbeatInterval: WORKFLOW_DEFAULTS.heartbeatInterval },
  // Each workflow's (the schema's `default` of workflows[].ttl).
  workflows: { ttl: WORKFLOW_DEFAULTS.ttl },
  triggersTable: { enabled: true, reloadInterval: 'PT30S' },
  limits: { relationDepth: 2 },
};

/** A shorter ADMIN_TOKEN is refused: it guards writes to the rules that call out of the network. */
export const ADMIN_TOKEN_MIN_LENGTH = 16;

export const TYPE_PREFIX = { default: 'orm', django: 'django.orm' } as const;
/** The heartbeat's messages (src/sources/logical/heartbeat.ts): never application events. */
const HEARTBEAT_MESSAGE_PREFIX = 'pg-cloudevents.heartbeat';

const FILE_EXTENSIONS = ['.yaml', '.yml', '.json'];

export function loadConfig(opts: LoadConfigOptions = {}): Config {
  const env = opts.env ?? process.env;
  const configPath = opts.configPath ?? present(env.PG_CLOUDEVENTS_CONFIG);
  const data = configPath === undefined ? {} : readConfigFile(configPath);

  const fileProblems = validateFileConfig(data);
  const fromEnv = readEnvironment(env, opts.warn ?? (() => undefined));
  const problems = [...fileProblems, ...fromEnv.problems];

  // Checked even when the file is invalid, so that one run reports every problem.
  const tables = resolveAllTables(data, fromEnv.tables, opts.requires?.tables ?? true, problems);
  const names = configuredNames(env, (data as FileConfig).capture, problems);
  const fileDatabaseUrl = (data as FileConfig).database?.url;
  // A DATABASE_URL that is set but invalid has its own problem already: "not set" would contradict it.
  if ((opts.requires?.database ?? true) && present(env.DATABASE_URL) === undefined && typeof fileDatabaseUrl !== 'string') {
    problems.push('DATABASE_URL: not set (or database.url in the configuration file)');
  }
  if (fileProblems.length > 0) throw new ConfigError(problems);

  const config = build(data as FileConfig, fromEnv, tables, names, problems, env);
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(config);
}

/** Values from the environment, each already checked; blank variables count as unset. */
interface EnvValues {
  databaseUrl?: string;
  sinkUrl?: string;
  overrides: Record<string, string | number | boolean>;
  caCerts?: string;
  timeoutMs?: number;
  source?: string;
  handler?: string;
  tables?: TableEntry[];
  port?: number;
  logLevel?: string;
  adminToken?: string;
  problems: string[];
}

function readEnvironment(env: NodeJS.ProcessEnv, warn: (message: string) => void): EnvValues {
  const problems: string[] = [];
  const out: EnvValues = { overrides: {}, problems };
  const formatted = (name: string, format: string): string | undefined => {
    const value = present(env[name]);
    if (value === undefined || FORMATS[format].check(value)) return value;
    problems.push(`${name}: ${FORMATS[format].reason}`);
    return undefined;
  };

  out.databaseUrl = formatted('DATABASE_URL', 'postgres-url');
  out.sinkUrl = formatted('K_SINK', 'http-url');
  // Checked in build(), where the configured brokers are known (a handler may name one).
  out.handler = present(env.CLOUDEVENTS_HANDLER);
  out.source = formatted('K_SOURCE', 'event-source');
  try {
    out.overrides = parseCeOverrides(env.K_CE_OVERRIDES, warn);
  } catch (err) {
    // parseCeOverrides' messages already start with "K_CE_OVERRIDES: ".
    const message = errorMessage(err);
    problems.push(message.startsWith('K_CE_OVERRIDES') ? message : `K_CE_OVERRIDES: ${message}`);
  }

  const caCerts = present(env.K_CA_CERTS);
  if (caCerts !== undefined) {
    const problem = pemProblem(caCerts);
    if (problem) problems.push(`K_CA_CERTS: ${problem}`);
    else out.caCerts = caCerts;
  }

  const timeout = present(env.K_SINK_TIMEOUT);
  if (timeout !== undefined) {
    const seconds = Number(timeout);
    if (Number.isFinite(seconds) && seconds > 0) out.timeoutMs = Math.round(seconds * 1000);
    else problems.push(`K_SINK_TIMEOUT: must be a positive number of seconds (got ${JSON.stringify(timeout)})`);
  }

  const port = present(env.PORT);
  if (port !== undefined) {
    const n = /^\d+$/.test(port) ? Number(port) : NaN;
    if (n >= 1 && n <= 65535) out.port = n;
    else problems.push(`PORT: must be an integer from 1 to 65535 (got ${JSON.stringify(port)})`);
  }

  const level = present(env.LOG_LEVEL)?.toLowerCase();
  if (level !== undefined) {
    if ((LOG_LEVELS as readonly string[]).includes(level)) out.logLevel = level;
    else problems.push(`LOG_LEVEL: must be one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(env.LOG_LEVEL)})`);
  }

  const adminToken = present(env.ADMIN_TOKEN);
  if (adminToken !== undefined) {
    // Never the value: a message may end up in a log.
    if (adminToken.trim().length < ADMIN_TOKEN_MIN_LENGTH) problems.push(`ADMIN_TOKEN: must be at least ${ADMIN_TOKEN_MIN_LENGTH} characters (a random one: openssl rand -hex 32)`);
    else out.adminToken = adminToken.trim();
  }

  const tables = present(env.PG_CLOUDEVENTS_TABLES);
  if (tables !== undefined) {
    out.tables = splitTableList(tables).map((table) => ({ table }));
    if (out.tables.length === 0) problems.push('PG_CLOUDEVENTS_TABLES: no table names in the list');
  }
  return out;
}

const PEM_BEGIN = '-----BEGIN CERTIFICATE-----';
const PEM_END = '-----END CERTIFICATE-----';

/**
 * What is wrong with a PEM CA bundle, or undefined. Each BEGIN/END block is parsed as an X.509
 * certificate now: the TLS layer would otherwise skip a broken one without a word, and the sink
 * would fail later as "self-signed certificate in chain" with no hint at the bundle.
 */
export function pemProblem(text: string): string | undefined {
  const starts = [...text.matchAll(new RegExp(PEM_BEGIN, 'g'))].map((m) => m.index ?? 0);
  if (starts.length === 0) return `must be PEM text containing at least one ${PEM_BEGIN} block`;
  for (const [i, start] of starts.entries()) {
    const block = `certificate block ${i + 1} of ${starts.length}`;
    const end = text.indexOf(PEM_END, start);
    const next = starts[i + 1] ?? Infinity;
    if (end < 0 || end > next) return `${block} has no ${PEM_END} line`;
    try {
      new X509Certificate(text.slice(start, end + PEM_END.length));
    } catch (err) {
      return `${block} is not a valid X.509 certificate (${errorMessage(err)})`;
    }
  }
  return undefined;
}

/**
 * PG_CLOUDEVENTS_TABLES, when set, chooses the tables; a file entry for the same table still
 * supplies its app and model. Problems in the file's entries are reported either way.
 */
function resolveAllTables(data: unknown, envTables: TableEntry[] | undefined, required: boolean, problems: string[]): TableConfig[] {
  const fileTables = resolveTables(fileTableEntries(data), (i) => `tables[${i}].table`, problems);
  if (envTables === undefined) {
    if (required && fileTables.length === 0 && !problems.some((p) => p.startsWith('tables'))) {
      problems.push('tables: no tables configured (set PG_CLOUDEVENTS_TABLES or tables in the configuration file)');
    }
    return fileTables;
  }
  const fromFile = new Map(fileTables.map((t) => [tableKey(t), t]));
  return resolveTables(envTables, (i) => `PG_CLOUDEVENTS_TABLES[${i}]`, problems).map((t) => {
    const configured = fromFile.get(tableKey(t));
    return configured ? { ...t, app: configured.app, model: configured.model, ...(configured.backfill && { backfill: configured.backfill }) } : t;
  });
}

/** The file's table entries, leaving out (as undefined) those the schema already rejects. */
function fileTableEntries(data: unknown): Array<TableEntry | undefined> {
  const tables = (data as FileConfig).tables;
  if (!Array.isArray(tables)) return [];
  return tables.map((item: unknown) => {
    if (typeof item === 'string') return { table: item };
    if (typeof item !== 'object' || item === null) return undefined;
    const { table, app, model, backfill } = item as Record<string, unknown>;
    if (typeof table !== 'string') return undefined;
    return {
      table, app: typeof app === 'string' ? app : undefined, model: typeof model === 'string' ? model : undefined,
      backfill: backfill === 'onAdd' ? 'onAdd' : undefined,
    };
  });
}

/** Merges a schema-valid file with defaults and the environment; cross-field problems are added. */
function build(file: FileConfig, env: EnvValues, tables: TableConfig[], names: ConfiguredNames, problems: string[], rawEnv: NodeJS.ProcessEnv): Config {
  const capture = { ...DEFAULTS.capture, ...file.capture };
  const events = { ...DEFAULTS.events, ...file.events };
  const sink = { ...DEFAULTS.sink, ...file.sink };
  const delivery = { ...DEFAULTS.delivery, ...file.delivery };

  const sinkUrl = env.sinkUrl ?? sink.url;
  // Never console by default: commands that deliver refuse a missing sink URL (requireSink).
  const handler = env.handler ?? file.handler ?? 'http';
  const brokers = Object.fromEntries(Object.entries(file.brokers ?? {}).map(([name, b]) => [
    name, { name, type: b.type, conn: b.conn ?? {}, params: b.params ?? {}, batchSize: b.batchSize ?? 1 },
  ]));
  // `default` names the default route's destination in dead letters, metrics and replay.
  if (Object.prototype.hasOwnProperty.call(brokers, 'default')) {
    problems.push('brokers.default: the name "default" is reserved for the default route\'s destination (README, "Destination names"); choose another name');
  }
  if (!isHandler(handler) && !Object.prototype.hasOwnProperty.call(brokers, handler)) {
    const names = Object.keys(brokers);
    problems.push(`${env.handler !== undefined ? 'CLOUDEVENTS_HANDLER' : 'handler'}: ${JSON.stringify(handler)} ${FORMATS.handler.reason}` +
      (names.length ? `, or one of the configured brokers (${names.join(', ')})` : ''));
  }

  // The schema has checked every duration's syntax; only their relations are left to check.
  const statusIntervalMs = parseDuration(capture.statusInterval);
  const reconnectDelayMs = parseDuration(capture.reconnectDelay);
  const reconnectMaxMs = parseDuration(capture.reconnectMax);
  const backoffDelayMs = parseDuration(delivery.backoffDelay);
  const backoffMaxMs = parseDuration(delivery.backoffMax);
  const fileTimeoutMs = parseDuration(delivery.timeout);
  if (statusIntervalMs <= 0) problems.push(`capture.statusInterval: must be longer than zero (got ${capture.statusInterval})`);
  if (parseDuration(capture.pollInterval) <= 0) problems.push(`capture.pollInterval: must be longer than zero (got ${capture.pollInterval})`);
  // A trigger sees rows, not DDL: schema-change events need the replication stream's Relation messages.
  if (capture.mode === 'trigger' && file.events?.schemaChanges) {
    problems.push('events.schemaChanges: schema-change events need capture.mode: logical (a trigger sees rows, not ALTER TABLE)');
  }
  if (reconnectMaxMs < reconnectDelayMs) {
    problems.push(`capture.reconnectMax: ${capture.reconnectMax} is shorter than capture.reconnectDelay (${capture.reconnectDelay})`);
  }
  if (backoffMaxMs < backoffDelayMs) {
    problems.push(`delivery.backoffMax: ${delivery.backoffMax} is shorter than delivery.backoffDelay (${delivery.backoffDelay})`);
  }
  if (fileTimeoutMs <= 0) problems.push(`delivery.timeout: must be longer than zero (got ${delivery.timeout})`);
  const timeoutMs = env.timeoutMs ?? fileTimeoutMs;
  const typePrefix = events.typePrefix ?? TYPE_PREFIX[events.format];
  const enabled = file.events?.enabled ?? DEFAULTS.events.enabled;
  if (file.events?.messagePrefix === HEARTBEAT_MESSAGE_PREFIX) {
    problems.push(`events.messagePrefix: "${HEARTBEAT_MESSAGE_PREFIX}" is the heartbeat's prefix; choose another`);
  }
  const allow = compileAllowListInto(file.allow, problems);
  const limits: LimitsConfig = {
    relationDepth: file.limits?.relationDepth ?? DEFAULTS.limits.relationDepth,
    ...(file.limits?.maxActionTimeout !== undefined && { maxActionTimeoutMs: parseDuration(file.limits.maxActionTimeout) }),
  };
  if (limits.maxActionTimeoutMs !== undefined && limits.maxActionTimeoutMs <= 0) {
    problems.push(`limits.maxActionTimeout: must be longer than zero (got ${file.limits!.maxActionTimeout})`);
  }
  checkBrokerConn(brokers, allow, problems);
  // File rules are trusted: checked against the allow-lists only where a list is present.
  const triggers = resolveTriggers(file.triggers ?? [], { captured: tables, typePrefix, allow, brokers, limits, trusted: true }, problems);
  const triggersTable = { ...DEFAULTS.triggersTable, ...file.triggersTable };
  // A task's run is a trigger action of the file: trusted, checked against the same lists, brokers and limits.
  const workflows = resolveWorkflowsConfig({ redis: file.redis, workflows: file.workflows }, rawEnv, problems, { allow, brokers, limits, trusted: true });
  const capturedKeys = new Set(tables.map(tableKey));
  // No tables at all: a command that needs none (`workflows`), or a problem reported already.
  if (tables.length > 0) workflows.workflows.forEach((wf, i) => {
    for (const [input, selector] of Object.entries(wf.events)) {
      if (selector.table !== undefined && selector.table.name !== '' && !capturedKeys.has(tableKey(selector.table))) {
        problems.push(`workflows[${i}].events.${input}.table: ${displayName(selector.table)} is not captured; add it to tables (or PG_CLOUDEVENTS_TABLES)`);
      }
    }
  });
  const reloadIntervalMs = parseDuration(triggersTable.reloadInterval);
  if (reloadIntervalMs <= 0) problems.push(`triggersTable.reloadInterval: must be longer than zero (got ${triggersTable.reloadInterval})`);
  // Rules may come from the table at runtime: a trigger-only install may start with none.
  if (!enabled && !triggers.some((t) => t.active) && !triggersTable.enabled && workflows.workflows.length === 0) {
    problems.push('events.enabled: false delivers no default events, and no active trigger is configured (nor triggersTable enabled), so nothing would be delivered');
  }

  return {
    // '' only for a command that needs no database (requires.database: false).
    databaseUrl: env.databaseUrl ?? file.database?.url ?? '',
    tables,
    capture: {
      mode: capture.mode,
      // '' = the per-database default, resolved once connected (src/sources/logical/names.ts).
      slot: names.slot?.name ?? '',
      publication: names.publication?.name ?? '',
      names: { slot: names.slot?.source ?? 'default', publication: names.publication?.source ?? 'default' },
      statusIntervalMs,
      reconnectDelayMs,
      reconnectMaxMs,
      heartbeatIntervalMs: parseDuration(capture.heartbeatInterval),
      retainedWalWarnBytes: capture.retainedWalWarnBytes,
      retainedWalWarnFraction: capture.retainedWalWarnFraction,
      pollIntervalMs: parseDuration(capture.pollInterval),
      batchSize: capture.batchSize,
    },
    events: {
      enabled,
      format: events.format,
      typePrefix,
      schemaChanges: file.events?.schemaChanges ?? DEFAULTS.events.schemaChanges,
      messagePrefix: file.events?.messagePrefix ?? DEFAULTS.events.messagePrefix,
      source: env.source ?? file.source,
      overrides: env.overrides,
    },
    handler,
    brokers,
    triggers,
    triggersTable: { enabled: triggersTable.enabled, reloadIntervalMs },
    allow,
    limits,
    ...(workflows.redis && { redis: workflows.redis }),
    workflows: workflows.workflows,
    sink: {
      url: sinkUrl,
      mode: sink.mode,
      batchSize: sink.batchSize,
      timeoutMs,
      caCerts: env.caCerts,
      caCertsDir: sink.caCertsDir,
      oidcTokenPath: sink.oidcTokenPath,
    },
    delivery: {
      retry: delivery.retry,
      backoffPolicy: delivery.backoffPolicy,
      backoffDelayMs,
      backoffMaxMs,
      retryAfterMaxMs: delivery.retryAfterMax === undefined ? undefined : parseDuration(delivery.retryAfterMax),
      timeoutMs,
      maxInFlight: delivery.maxInFlight,
      maxBufferBytes: delivery.maxBufferBytes,
      deadLetterSink: delivery.deadLetterSink,
      shutdownGracePeriodMs: parseDuration(delivery.shutdownGracePeriod),
    },
    deadLetters: { ...DEFAULTS.deadLetters, ...file.deadLetters },
    leader: {
      enabled: file.leader?.enabled ?? DEFAULTS.leader.enabled,
      pollIntervalMs: parseDuration(file.leader?.pollInterval ?? DEFAULTS.leader.pollInterval),
    },
    server: { port: env.port ?? file.server?.port ?? DEFAULTS.server.port, ...(env.adminToken !== undefined && { adminToken: env.adminToken }) },
    logLevel: env.logLevel ?? file.log?.level ?? DEFAULTS.log.level,
  };
}

/** `allow`, compiled (allow.ts); its problems join the rest. */
function compileAllowListInto(raw: unknown, problems: string[]): AllowList {
  try {
    return compileAllowList(raw);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
    return {};
  }
}

/** Reads and parses the file (format by extension). Problems here stop loading at once. */
export function readConfigFile(file: string): unknown {
  const label = `configuration file ${file}`;
  const fail = (reasons: string[]): never => {
    throw new ConfigError(reasons.map((r) => scrubSecrets(`${label}: ${r}`)), ErrorCodes.CONFIG_FILE);
  };
  const ext = path.extname(file).toLowerCase();
  if (!FILE_EXTENSIONS.includes(ext)) fail([`unsupported extension "${ext}" (use ${FILE_EXTENSIONS.join(', ')})`]);

  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    fail([code === 'ENOENT' ? 'not found' : `cannot be read (${code ?? errorMessage(err)})`]);
  }
  const data = ext === '.json' ? parseJson(text, fail) : parseYaml(text, fail);
  // An empty YAML file is an empty configuration.
  return data === null || data === undefined ? {} : data;
}

function parseYaml(text: string, fail: (reasons: string[]) => never): unknown {
  const doc = YAML.parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    fail(doc.errors.map((e) => {
      // The message's first line only: the rest quotes the offending line, which may hold a password.
      const reason = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
      const at = e.linePos?.[0];
      return at ? `line ${at.line}, column ${at.col}: ${reason}` : reason;
    }));
  }
  return doc.toJS();
}

function parseJson(text: string, fail: (reasons: string[]) => never): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    // V8 quotes the text around the error in some messages (`Unexpected token 'x', ..."…"... is not
    // valid JSON`), which may hold a password: keep only what comes before the quote.
    let reason = errorMessage(err).replace(/^(Unexpected token [^,]*|[^"]*?), .* is not valid JSON$/s, '$1');
    const position = /at position (\d+)/.exec(reason);
    if (position) {
      const before = text.slice(0, Number(position[1]));
      const line = before.split('\n').length;
      const col = Number(position[1]) - before.lastIndexOf('\n');
      reason = `line ${line}, column ${col}: ${reason.replace(/ at position \d+.*$/s, '')}`;
    }
    return fail([`not valid JSON: ${reason}`]);
  }
}

/** Blank environment variables count as unset (Knative sets K_CE_OVERRIDES to "" when there are none). */
function present(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
