import pino, { Logger } from 'pino';

/**
 * One logger for the process; modules take a child with a `component` name. Secrets are
 * redacted by key, and connection strings are scrubbed of passwords wherever they appear.
 * `run` writes JSON lines; the commands a person runs write the same records as readable text
 * (`warning: …`), see configureLogger's `format`.
 */
const REDACT_PATHS = [
  'password', '*.password', 'token', '*.token', 'authorization', '*.authorization',
  'headers.authorization', '*.headers.authorization', 'connectionString', '*.connectionString',
];

/** The levels LOG_LEVEL (and `log.level`) may name. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export type LogFormat = 'json' | 'text';

export interface LoggerOptions {
  level?: string;
  /** 'json' (default): one JSON object per line. 'text': `warning: message (key=value)` for people. */
  format?: LogFormat;
  destination?: pino.DestinationStream;
}

// Logs go to stderr so that stdout stays clean for events (`tail`, the console handler).
let root: Logger = makeLogger({});

export function configureLogger(options: LoggerOptions): void {
  root = makeLogger(options);
}

function makeLogger(options: LoggerOptions): Logger {
  const stderr = options.destination ?? pino.destination({ fd: 2, sync: true });
  return pino(
    {
      level: options.level || levelFromEnvironment(),
      base: { name: 'pg-cloudevents' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.format === 'text' ? textDestination(stderr) : stderr,
  );
}

/**
 * The level before the configuration is loaded. An unknown LOG_LEVEL must not throw here (at
 * module load, before anything can report it): the configuration names it and exits 2.
 */
function levelFromEnvironment(): string {
  const level = process.env.LOG_LEVEL?.trim().toLowerCase();
  return level && (LOG_LEVELS as readonly string[]).includes(level) ? level : 'info';
}

const TEXT_LABELS: Record<string, string> = { fatal: 'error', error: 'error', warn: 'warning', info: 'notice' };
/** Fields every record has, which a person does not need to read. */
const QUIET_FIELDS = new Set(['level', 'time', 'name', 'component', 'msg', 'pid', 'hostname']);

/** A pino record (one JSON line) as `warning: message (key=value, …)`. */
export function textLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const label = TEXT_LABELS[String(record.level)] ?? String(record.level);
  const details = Object.entries(record)
    .filter(([key]) => !QUIET_FIELDS.has(key))
    .map(([key, value]) => `${key}=${detailText(value)}`);
  const msg = typeof record.msg === 'string' ? record.msg : '';
  return `${label}: ${msg}${details.length ? ` (${details.join(', ')})` : ''}\n`;
}

/** Strings as they are; a serialised error by its message (the stack is for JSON logs). */
function detailText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string') {
    return (value as { message: string }).message;
  }
  return JSON.stringify(value);
}

function textDestination(out: pino.DestinationStream): pino.DestinationStream {
  return { write: (line: string) => out.write(textLine(line)) };
}

export function logger(component: string): Logger {
  // A proxy-free child per call keeps `configureLogger` effective for children made later.
  return root.child({ component });
}

/** `postgres://user:secret@host/db` → `postgres://user:***@host/db`; also `password=...` pairs. */
export function scrubSecrets(text: string): string {
  return text
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#\s@]*:)[^@/\s]*@/gi, '$1***@')
    .replace(/(password\s*=\s*)('[^']*'|\S+)/gi, '$1***')
    .replace(/(Bearer\s+)[A-Za-z0-9._~+/=-]+/g, '$1***');
}

/** A URL without its user and password (for describe(), logs and knativeerrordest). */
export function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return scrubSecrets(url);
  }
}
