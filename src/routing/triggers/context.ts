/**
 * What a trigger rule's templates and expressions read: one change's default event, seen as named
 * roots (docs/triggers-templates.md). Built once per change and read by every rule that matches it.
 */
import type { CloudEvent } from 'cloudevents';
import type { Row } from '../../sources/change';
import type { EventData } from '../../events/format';

/** Nothing answers to a name: distinct from a present `null`. */
export const MISSING: unique symbol = Symbol('missing');
export type Missing = typeof MISSING;

/**
 * Names that win over the row's columns: a column called like one is `instance.<column>`.
 * `env` is not a root: payloads refuse it when compiled (see payload.ts).
 */
export const ROOTS = ['instance', 'old', 'event', 'signal_kwargs'] as const;

/**
 * An application event's roots (README "Application events"): `data`, the value the application
 * emitted, and `event`; they win over the members of `data`, which stand at the top level as a
 * row's columns do.
 */
export const APP_EVENT_ROOTS = ['data', 'event'] as const;

/**
 * The hook for relations through foreign keys (`customer.name` for a `customer_id` column): see
 * relations.ts. It answers a root name that is neither a root nor a column, synchronously: the
 * resolver fetches what the compiled payload's placeholders name before rendering, then answers
 * from what it fetched. MISSING when it has nothing for `name`.
 */
export type RelationLookup = (name: string, row: Row | undefined) => unknown;

export interface TriggerContext {
  /** The event's `data`: the payload of a rule without one. */
  readonly data: unknown;
  /**
   * The changed row (`data.data`): the new row, the old one for a delete; undefined for a truncate.
   * For an application event, its data when that is an object (its members are read by name).
   */
  readonly row: Row | undefined;
  /** The context of an application event (roots APP_EVENT_ROOTS), not of a table change. */
  readonly appEvent: boolean;
  /** The value a path's first name stands for, or MISSING. */
  root(name: string): unknown;
  /** The names a path may start with, for error messages: the row's columns and the roots present. */
  names(): { columns: string[]; roots: string[] };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/** Own, defined members only: `constructor`, `__proto__` and undefined members are not there. */
export function member(holder: Record<string, unknown>, name: string): unknown {
  if (!Object.prototype.hasOwnProperty.call(holder, name)) return MISSING;
  const value = holder[name];
  return value === undefined ? MISSING : value;
}

/** The event's attributes and extensions, without `data` (the row is reached by name). */
function attributesOf(event: CloudEvent<unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(event)) {
    if (name !== 'data' && name !== 'data_base64' && value !== undefined) out[name] = value;
  }
  return out;
}

export interface ContextOptions {
  relation?: RelationLookup;
  /** The event is an application event's (a rule over `types`): its data is the application's, not a row's. */
  appEvent?: boolean;
}

export function triggerContext(event: CloudEvent<unknown>, options: ContextOptions = {}): TriggerContext {
  if (options.appEvent === true) return appEventContext(event);
  const data = event.data as EventData | undefined;
  const row = isRecord(data) && isRecord(data.data) ? data.data : undefined;
  let attributes: Record<string, unknown> | undefined;
  const roots = (name: string): unknown => {
    switch (name) {
      case 'instance':
        return row ?? MISSING;
      case 'old':
        return isRecord(data) && isRecord(data.old) ? data.old : MISSING;
      case 'event':
        return (attributes ??= attributesOf(event));
      case 'signal_kwargs':
        return isRecord(data) && isRecord(data.signal_kwargs) ? data.signal_kwargs : MISSING;
      default:
        return undefined;
    }
  };
  return {
    data: event.data,
    row,
    appEvent: false,
    root(name) {
      const rootValue = roots(name);
      if (rootValue !== undefined) return rootValue;
      const column = row === undefined ? MISSING : member(row, name);
      if (column !== MISSING || options.relation === undefined) return column;
      return options.relation(name, row);
    },
    names() {
      return { columns: row === undefined ? [] : Object.keys(row), roots: ROOTS.filter((r) => roots(r) !== MISSING) };
    },
  };
}

/** An application event's context: `data` and `event`, then the members of `data`; no relations. */
function appEventContext(event: CloudEvent<unknown>): TriggerContext {
  const data = event.data;
  const members = isRecord(data) ? data : undefined;
  let attributes: Record<string, unknown> | undefined;
  const roots = (name: string): unknown => {
    switch (name) {
      case 'data':
        return data === undefined ? MISSING : data;
      case 'event':
        return (attributes ??= attributesOf(event));
      default:
        return undefined;
    }
  };
  return {
    data,
    row: members,
    appEvent: true,
    root(name) {
      const rootValue = roots(name);
      if (rootValue !== undefined) return rootValue;
      return members === undefined ? MISSING : member(members, name);
    },
    names() {
      return { columns: members === undefined ? [] : Object.keys(members), roots: APP_EVENT_ROOTS.filter((r) => roots(r) !== MISSING) };
    },
  };
}
