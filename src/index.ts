/**
 * The package's programmatic API: what a handler module (`CLOUDEVENTS_HANDLER=file.js#export`)
 * needs, typed (README, "Writing a handler module"). The program itself is the `pg-cloudevents`
 * command; nothing here starts it. Loading this file loads src/errors.ts only: the rest is types.
 */
import type { CloudEvent } from 'cloudevents';
import type { DefaultEventData, DjangoEventData } from './events/format';

export { DeliveryError, ErrorCodes, FinalError, PgceError, RetriableError } from './errors';
export type { ErrorCode } from './errors';
export type { Row } from './sources/change';
export type { DefaultEventData, DjangoEventData, SignalKwargs } from './events/format';
export type { RawJson } from './events/json-text';

/** An event of the default format (`events.format: default`): README, "The event". */
export type DefaultCloudEvent = CloudEvent<DefaultEventData> & {
  /** The table's `app` (default: its schema). */
  app: string;
  /** The table's `model` (default: its name). */
  model: string;
  /** Position in the change stream, string-sortable; equals `id`. */
  sequence: string;
  /** `<app>.<model>/<primary key>`: the per-row ordering key. */
  partitionkey: string;
};

/** An event of `events.format: django`, as django-signals-cloudevents sends it. */
export type DjangoCloudEvent = CloudEvent<DjangoEventData> & {
  djangoapp: string;
  djangomodel: string;
  /** Equals `id`. */
  originid: string;
};

/** Either format; tell them apart by `event.type` or by the extensions present. */
export type PgCloudEvent = DefaultCloudEvent | DjangoCloudEvent;

/**
 * A handler module's export. It receives each event once per attempt; the event counts as
 * delivered when the returned promise resolves (or the function returns). A throw is a failed
 * attempt: retried with the configured backoff, unless the error has `retriable: false` (throw a
 * `FinalError`), which dead-letters the event at once. Events of one row arrive one at a time, in
 * commit order; events of different rows concurrently (up to `delivery.maxInFlight`).
 */
export type Handler<E extends PgCloudEvent = DefaultCloudEvent> = (event: E) => Promise<unknown> | unknown;
