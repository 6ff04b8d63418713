import pino, { Logger } from 'pino';

/**
 * One JSON logger for the process; modules take a child with a `component` name. Secrets are
 * redacted by key, and connection strings are scrubbed of passwords wherever they appear.
 */
const REDACT_PATHS = [
  'password', '*.password', 'token', '*.token', 'authorization', '*.authorization',
  'headers.authorization', '*.headers.authorization', 'connectionString', '*.connectionString',
];

// Logs go to stderr so that stdout stays clean for events (`tail`, the console handler).
let root: Logger = makeLogger({});

export function configureLogger(options: { level?: string; destination?: pino.DestinationStream }): void {
  root = makeLogger(options);
}

function makeLogger(options: { level?: string; destination?: pino.DestinationStream }): Logger {
  return pino(
    {
      level: options.level || process.env.LOG_LEVEL || 'info',
      base: { name: 'pg-cloudevents' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ fd: 2, sync: true }),
  );
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
