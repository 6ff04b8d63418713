/**
 * The validated, frozen configuration. Produced once by `loadConfig` (file → defaults → environment
 * → JSON Schema validation) and passed down; nothing else reads process.env for these settings.
 * Durations are ISO 8601 in the file (`PT0.5S`) and milliseconds here.
 */
import type { AllowList } from '../routing/triggers/allow';
import type { WorkflowConfig, WorkflowRedisConfig } from '../workflows/config';
import type { NameSource } from './capture-names';

export interface TableConfig {
  /** `schema.name` as given; `schema` defaults to `public`. */
  table: string;
  schema: string;
  name: string;
  /** CloudEvent `app` extension; defaults to the schema. */
  app: string;
  /** CloudEvent `model` extension; defaults to the table name. */
  model: string;
  /** `onAdd`: backfill the table when it first joins capture: the publication, or (trigger mode) gets its journal triggers (README "Backfill"). */
  backfill?: 'onAdd';
}

export interface CaptureConfig {
  /** logical: the slot's pgoutput stream; trigger: a trigger-written journal (src/sources/journal/). */
  mode: 'logical' | 'trigger';
  /**
   * The slot and publication names. Configured (PG_CLOUDEVENTS_SLOT, capture.slot, ...) or, when
   * not, '' until src/sources/logical/names.ts resolves the per-database default on a connection.
   */
  slot: string;
  publication: string;
  /** Where each name came from, and what resolving the default found. */
  names: CaptureNames;
  /** How often a standby status update is sent even when the server does not ask (ms). */
  statusIntervalMs: number;
  /** Reconnect backoff after the replication connection drops (ms). */
  reconnectDelayMs: number;
  reconnectMaxMs: number;
  /**
   * How often a transactional logical message is written (pg_logical_emit_message) so the slot
   * advances even when the captured tables are idle and the server is busy; 0 = never.
   */
  heartbeatIntervalMs: number;
  /** Warn when the slot retains more WAL than this many bytes; 0 = never. */
  retainedWalWarnBytes: number;
  /** Warn when the slot retains more than this share of max_slot_wal_keep_size (when set); 0 = never. */
  retainedWalWarnFraction: number;
  /** trigger mode: read the journal at least this often, NOTIFY or not (ms). */
  pollIntervalMs: number;
  /** trigger mode: journal rows read per query. */
  batchSize: number;
}

export interface CaptureNames {
  slot: NameSource;
  publication: NameSource;
  /** What resolving the default names found worth a warning (an earlier version's names kept or left). */
  notes?: string[];
}

export interface EventsConfig {
  /**
   * false: no default event per change, only the triggers' actions (a trigger-only install). The
   * loader always sets it; absent (a Config built by hand) counts as true.
   */
  enabled?: boolean;
  format: 'default' | 'django';
  /** `orm` → `orm.post_save`; the django format defaults it to `django.orm`. */
  typePrefix: string;
  /**
   * A `<typePrefix>.schema_change` event when a captured table's columns change (README
   * "Schema-change events"). Absent (a Config built by hand) counts as false.
   */
  schemaChanges?: boolean;
  /**
   * The logical message prefix of application events (pgcloudevents.emit; README "Application
   * events"). The SQL function is created with it: changing it takes `setup` again. The loader
   * always sets it; absent (a Config built by hand) counts as DEFAULT_MESSAGE_PREFIX.
   */
  messagePrefix?: string;
  /** Explicit `source`; K_SOURCE wins over it. Undefined → format's default. */
  source?: string;
  /** Extensions from K_CE_OVERRIDES, already validated. */
  overrides: Record<string, string | number | boolean>;
}

export interface SinkConfig {
  /** K_SINK, or `sink.url` in the file. */
  url?: string;
  /** `batch`: application/cloudevents-batch+json arrays of up to `batchSize` events. */
  mode: 'binary' | 'structured' | 'batch';
  batchSize: number;
  /** Per-request timeout (ms): K_SINK_TIMEOUT seconds, or `delivery.timeout`. */
  timeoutMs: number;
  /** PEM bundle(s) to trust for https (K_CA_CERTS plus files in caCertsDir). */
  caCerts?: string;
  caCertsDir: string;
  /** Path of the OIDC token file; sent as a bearer token when present. */
  oidcTokenPath: string;
}

export interface DeliveryConfig {
  /** Retries after the first attempt; undefined = keep retrying (nothing is ever dropped). */
  retry?: number;
  backoffPolicy: 'linear' | 'exponential';
  backoffDelayMs: number;
  backoffMaxMs: number;
  retryAfterMaxMs?: number;
  timeoutMs: number;
  /** Events (or batches) in flight at once, across different partition keys. */
  maxInFlight: number;
  /** Budget for events read but not yet delivered; reading pauses beyond it. */
  maxBufferBytes: number;
  /** Where final failures are also sent (Knative's deadLetterSink), as CloudEvents. */
  deadLetterSink?: string;
  /**
   * On SIGTERM/SIGINT, how long the sends in flight may take to finish (and be acknowledged)
   * before the rest is abandoned, unacknowledged (ms). Always set by the loader; unset means 0.
   */
  shutdownGracePeriodMs?: number;
}

/** The dead-letter table in the source database (created by `setup`). */
export interface DeadLettersConfig {
  schema: string;
  table: string;
}

/** Several replicas may run; one holds an advisory lock and captures, the others wait. */
export interface LeaderConfig {
  enabled: boolean;
  /** How often a standby tries to take the lock. */
  pollIntervalMs: number;
}

/**
 * A named broker (`brokers:` in the file, in the spirit of django-action-triggers' ACTION_BROKERS).
 * `conn` and `params` are validated by the broker type's own JSON Schema (src/sinks/<type>).
 */
export interface BrokerConfig {
  name: string;
  type: string;
  conn: Record<string, unknown>;
  params: Record<string, unknown>;
  /** Events per send when the broker's sink can send several at once (default 1: one by one). */
  batchSize?: number;
}

/** `on:` of a trigger rule: Django's signals, or the operations themselves. */
export type TriggerOperation = 'post_save' | 'post_delete' | 'post_truncate' | 'insert' | 'update' | 'delete';

/** What every action kind may add to its own key (README, "Triggers"). */
export interface ActionOptions {
  /** The action's own payload template; wins over the rule's `payload`/`transform`. */
  payload?: unknown;
  /** At most `count` sends per `perMs` (`50/s`, `10/m`); sends beyond it wait, never fail. */
  rateLimit?: RateLimit;
}

export interface RateLimit {
  count: number;
  perMs: number;
  /** As written (`50/s`), for messages. */
  text: string;
}

/** What webhook and broker actions add: how long a send may take, and what is sent. */
export interface SendingOptions extends ActionOptions {
  /** The action's timeout (ms); capped by `limits.maxActionTimeout`, default `delivery.timeout`. */
  timeoutMs?: number;
  /** `cloudevent`: the payload as a CloudEvent (the transport's binding) instead of the bare payload. */
  format?: 'cloudevent';
  /** The CloudEvent's `type` with `format: cloudevent`; default `<typePrefix>.trigger.<rule name>`. */
  type?: string;
}

/** A derived CloudEvent to the default sink; `type` default `<typePrefix>.trigger.<rule name>`. */
export interface CloudEventActionConfig extends ActionOptions {
  cloudevent: { type?: string };
}

export type WebhookMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** An HTTP request per change; `url` and header values may hold dynamic values (`{{ env.NAME }}`). */
export interface WebhookActionConfig extends SendingOptions {
  webhook: { url: string; method: WebhookMethod; headers: Record<string, string> };
}

/** A message to the named broker of `brokers`, `params` merged over the broker's own. */
export interface BrokerActionConfig extends SendingOptions {
  broker: string;
  params?: Record<string, unknown>;
}

/** A trigger action (README, "Triggers"): one key names its kind (src/routing/triggers/actions). */
export type TriggerActionConfig = CloudEventActionConfig | WebhookActionConfig | BrokerActionConfig;

/**
 * A trigger rule (`triggers:` in the file), validated and with its tables resolved; compiled by
 * the routing stage (src/routing/triggers/rules.ts), which the loader also runs to report errors.
 */
export interface TriggerConfig {
  name: string;
  active: boolean;
  /** Resolved like `tables`, each one of the captured tables; empty for a rule over `types`. */
  tables: { schema: string; name: string }[];
  /** Empty for a rule over `types` (operations do not apply to application events). */
  on: TriggerOperation[];
  /** Application event types (README "Application events"); set instead of `tables`, never with it. */
  types?: string[];
  columns?: string[];
  filters?: unknown[];
  when?: string;
  payload?: unknown;
  transform?: string;
  actions: TriggerActionConfig[];
}

/** Bounds on what trigger rules may do (README, "Triggers"). */
export interface LimitsConfig {
  /** Foreign keys a payload placeholder may follow (`customer.address.city`: 2); 0 = no relations. */
  relationDepth: number;
  /** The longest timeout an action may have (ms); a longer one is cut to it. Absent: no cap. */
  maxActionTimeoutMs?: number;
}

export interface ServerConfig {
  port: number;
  /**
   * ADMIN_TOKEN: the admin API (/api/triggers) answers only requests bearing it; unset, the API
   * is off (404). Never logged.
   */
  adminToken?: string;
}

/** Trigger rules kept in the database (README "Rules at runtime"). */
export interface TriggersTableConfig {
  /** false: the table is not read and the admin API is off. */
  enabled: boolean;
  /** Re-read this often besides on every notification (ms). */
  reloadIntervalMs: number;
}

export interface Config {
  databaseUrl: string;
  tables: TableConfig[];
  capture: CaptureConfig;
  events: EventsConfig;
  /** A built-in handler, a key of `brokers`, or a module `path/to/file.js#export`. */
  handler: string;
  brokers: Record<string, BrokerConfig>;
  /** Trigger rules, in the file's order; absent (a Config built by hand) counts as none. */
  triggers?: TriggerConfig[];
  /** The triggers table; absent (a Config built by hand) counts as disabled. */
  triggersTable?: TriggersTableConfig;
  /** What untrusted rules may call and read (src/routing/triggers/allow.ts); absent counts as no lists. */
  allow?: AllowList;
  /** Always set by the loader; absent (a Config built by hand) counts as the defaults. */
  limits?: LimitsConfig;
  /** Where workflow state lives (`redis.url` or REDIS_URL); absent without workflows and Redis. */
  redis?: WorkflowRedisConfig;
  /** Workflows (README "Workflows"); absent (a Config built by hand) counts as none. */
  workflows?: WorkflowConfig[];
  sink: SinkConfig;
  delivery: DeliveryConfig;
  deadLetters: DeadLettersConfig;
  leader: LeaderConfig;
  server: ServerConfig;
  logLevel: string;
}
