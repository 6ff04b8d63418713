/**
 * Every error we raise knows whether retrying can help (kafkajs' pattern): the retry loop asks the
 * error, not the call site. Codes are stable and documented in the README ("Error codes").
 */
export const ErrorCodes = {
  CONFIG_INVALID: 'PGCE_ERR_CONFIG_INVALID',
  CONFIG_FILE: 'PGCE_ERR_CONFIG_FILE',
  CE_OVERRIDES: 'PGCE_ERR_CE_OVERRIDES',
  UNKNOWN_TABLE: 'PGCE_ERR_UNKNOWN_TABLE',
  WAL_LEVEL: 'PGCE_ERR_WAL_LEVEL',
  DB_CONNECT: 'PGCE_ERR_DB_CONNECT',
  REPLICATION: 'PGCE_ERR_REPLICATION',
  SLOT_LOST: 'PGCE_ERR_SLOT_LOST',
  SLOT_NAME_TAKEN: 'PGCE_ERR_SLOT_NAME_TAKEN',
  PROTOCOL: 'PGCE_ERR_PROTOCOL',
  DECODE: 'PGCE_ERR_DECODE',
  APP_EVENT: 'PGCE_ERR_APP_EVENT',
  CATALOG: 'PGCE_ERR_CATALOG',
  JOURNAL: 'PGCE_ERR_JOURNAL',
  INTERNAL: 'PGCE_ERR_INTERNAL',
  SINK_CONFIG: 'PGCE_ERR_SINK_CONFIG',
  SINK_RETRIABLE: 'PGCE_ERR_SINK_RETRIABLE',
  SINK_FINAL: 'PGCE_ERR_SINK_FINAL',
  SINK_UNREACHABLE: 'PGCE_ERR_SINK_UNREACHABLE',
  DELIVERY_ABORTED: 'PGCE_ERR_DELIVERY_ABORTED',
  LISTEN: 'PGCE_ERR_LISTEN',
  SCHEMA: 'PGCE_ERR_SCHEMA',
  URL_NOT_ALLOWED: 'PGCE_ERR_URL_NOT_ALLOWED',
  VALUE_NOT_ALLOWED: 'PGCE_ERR_VALUE_NOT_ALLOWED',
  TRIGGER_RULE: 'PGCE_ERR_TRIGGER_RULE',
  RELATION: 'PGCE_ERR_RELATION',
  DYNAMIC_VALUE: 'PGCE_ERR_DYNAMIC_VALUE',
  ACTION_TIMEOUT: 'PGCE_ERR_ACTION_TIMEOUT',
  WORKFLOW_STATE: 'PGCE_ERR_WORKFLOW_STATE',
  WORKFLOW_SESSION: 'PGCE_ERR_WORKFLOW_SESSION',
  WORKFLOW_REDIS: 'PGCE_ERR_WORKFLOW_REDIS',
  BACKFILL: 'PGCE_ERR_BACKFILL',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface PgceErrorOptions {
  retriable?: boolean;
  cause?: unknown;
  /** Extra structured detail for logs and /status (never secrets). */
  detail?: Record<string, unknown>;
}

export class PgceError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly detail: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: PgceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PgceError';
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.detail = options.detail ?? {};
  }
}

/** Configuration problems: never retriable, always name the key path. */
export class ConfigError extends PgceError {
  readonly problems: string[];
  constructor(problems: string[], code: ErrorCode = ErrorCodes.CONFIG_INVALID, cause?: unknown) {
    super(code, `invalid configuration:\n  - ${problems.join('\n  - ')}`, { retriable: false, cause });
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** A delivery attempt failed. `status` is the sink's answer when there was one. */
export class DeliveryError extends PgceError {
  readonly status?: number;
  /** Milliseconds the sink asked us to wait (Retry-After), when it did. */
  readonly retryAfterMs?: number;
  constructor(
    message: string,
    options: PgceErrorOptions & { status?: number; retryAfterMs?: number; code?: ErrorCode } = {},
  ) {
    const code = options.code ?? (options.retriable ? ErrorCodes.SINK_RETRIABLE : ErrorCodes.SINK_FINAL);
    super(code, message, options);
    this.name = 'DeliveryError';
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * For handler modules (README, "Writing a handler module"): throw it to have the delivery retried
 * with the configured backoff. Any other error a handler throws is retried too; this one says so.
 */
export class RetriableError extends DeliveryError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { retriable: true, cause: options.cause, code: ErrorCodes.SINK_RETRIABLE });
    this.name = 'RetriableError';
  }
}

/**
 * For handler modules: throw it when retrying cannot help (the event is invalid for the receiver);
 * the event is dead-lettered at once and the row's later events go on.
 */
export class FinalError extends DeliveryError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { retriable: false, cause: options.cause, code: ErrorCodes.SINK_FINAL });
    this.name = 'FinalError';
  }
}

export function isRetriable(err: unknown): boolean {
  return err instanceof PgceError ? err.retriable : true;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
