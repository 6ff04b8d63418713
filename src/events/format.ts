/**
 * The seam between a table change and the CloudEvent delivered for it (application events have
 * one shape whatever the format: ./app-event.ts). A format is one small object
 * (`default`, `django`); adding one is a module plus a line in ./index.ts.
 */
import { CloudEvent } from 'cloudevents';
import type { TableChange, Row } from '../sources/change';
import type { TableConfig } from '../config/types';

/** Per-source settings a format needs; built once at start-up and reused for every change. */
export interface EventContext {
  /** Already resolved (K_SOURCE, configured `source`, format default): see resolveSource(). */
  source: string;
  /** `orm` → `orm.post_save`. */
  typePrefix: string;
  /** K_CE_OVERRIDES extensions, validated by parseCeOverrides(). */
  overrides: Record<string, string | number | boolean>;
  /** The captured table's configuration (app, model). */
  table: TableConfig;
  /** Events for rows that already existed (`backfill`): Django's `raw: true`. */
  backfill?: boolean;
}

/** Django's post_save / post_delete keyword arguments, as the events carry them. */
export interface SignalKwargs {
  created?: boolean;
  update_fields?: string[] | null;
  raw?: boolean;
  using: string;
  /** truncate only (no Django equivalent): the TRUNCATE options. */
  cascade?: boolean;
  restart_identity?: boolean;
}

/** The event's `data` (README, "The event"). */
export interface EventData {
  /**
   * The row: new row for insert/update, old row for delete. Truncate: null in the default format,
   * absent in the django format (the original's event without an instance has no `data` key).
   */
  data?: Row | null;
  signal_kwargs: SignalKwargs;
  db_table: string;
  /** The previous row of an update, present only when PostgreSQL sent it. */
  old?: Row;
  /**
   * Columns PostgreSQL did not send because their TOASTed value did not change: absent from
   * `data`, not null. Present only when non-empty.
   */
  unchanged_toast_columns?: string[];
}

/**
 * `data` of a default-format event (README, "The event"): column values JSON-natural. Part of the
 * package's typed API (src/index.ts); default.ts builds exactly this, so the compiler keeps the two
 * in step.
 */
export interface DefaultEventData extends EventData {
  /** New row for insert/update, old row for delete (key columns at least), null for truncate. */
  data: Row | null;
}

/**
 * `data` of a django-format event: every column value rendered as a string, as
 * django-signals-cloudevents sends it; no `old`. django.ts builds exactly this.
 */
export interface DjangoEventData extends EventData {
  /** Absent for truncate (the original's event without an instance has no `data` key). */
  data?: Record<string, string>;
  old?: never;
}

export interface EventFormat {
  readonly name: string;
  /** `source` when neither K_SOURCE nor a configured `source` is set. */
  defaultSource(databaseName: string): string;
  readonly defaultTypePrefix: string;
  /** Pure and deterministic: the same change and context always give the same event. */
  build(change: TableChange, ctx: EventContext): CloudEvent<EventData>;
}

/** The attributes the SDK's constructor sets itself, in its order; every other key is an extension. */
const SDK_ATTRIBUTES = new Set([
  'id', 'time', 'type', 'source', 'specversion', 'datacontenttype', 'subject',
  'datacontentencoding', 'dataschema', 'data_base64', 'schemaurl', 'data',
]);

/**
 * The CloudEvent for attributes a format built: the object `new CloudEvent(attributes, false)`
 * makes — same prototype, same own keys in the same order, frozen — without the constructor's
 * copy-and-delete of the attributes and per-extension checks (`node bench/ab/micro.js`; the
 * unit tests compare both on every kind of event, so an SDK upgrade that changes the shape fails
 * there). The attributes are valid by construction: `source` and the overrides are checked once
 * at start-up (resolveSource, parseCeOverrides), ids, times and keys are generated. The SDK's
 * per-event schema validation is skipped for the same reason; the tests validate every kind of
 * event strictly instead. Binary `data` is not supported here (no format produces it).
 */
export function createEvent(attributes: Record<string, unknown>): CloudEvent<EventData> {
  const event = Object.create(CloudEvent.prototype) as Record<string, unknown>;
  event.id = attributes.id;
  event.time = attributes.time;
  event.type = attributes.type;
  event.source = attributes.source;
  event.specversion = attributes.specversion ?? '1.0';
  event.datacontenttype = attributes.datacontenttype;
  event.subject = attributes.subject;
  event.datacontentencoding = attributes.datacontentencoding;
  event.dataschema = attributes.dataschema;
  event.data_base64 = undefined;
  event.schemaurl = attributes.schemaurl;
  event.data = attributes.data;
  for (const name in attributes) {
    if (!SDK_ATTRIBUTES.has(name)) event[name] = attributes[name];
  }
  return Object.freeze(event) as unknown as CloudEvent<EventData>;
}
