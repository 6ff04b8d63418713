/**
 * The content of an application event's logical message (README "Application events"): JSON text
 * that pgcloudevents.emit() writes, `{"specversion":"1.0","type":…,"subject":…,"data":…,
 * "extensions":{…}}`. The SQL function refuses bad input in the application's transaction; this
 * checks again, because anyone may write a message with the prefix by hand. Numbers stay exact
 * (parseJsonLossless), as for row events.
 */
import { ErrorCodes, PgceError } from '../errors';
import { parseJsonLossless, RawJson } from '../events/json-text';
import { RESERVED_ATTRIBUTES } from '../events/overrides';
import type { AppEvent } from './change';

/** The logical message prefix of application events unless `events.messagePrefix` says otherwise. */
export const DEFAULT_MESSAGE_PREFIX = 'pgcloudevents';

/** The prefix configured (a Config built by hand may leave it out). */
export function messagePrefix(config: { events: { messagePrefix?: string } }): string {
  return config.events.messagePrefix ?? DEFAULT_MESSAGE_PREFIX;
}

/** CloudEvents 1.0: attribute names are lower-case letters and digits, 20 characters at most (recommended; enforced here). */
export const EXTENSION_NAME = /^[a-z0-9]{1,20}$/;

/** Integer attribute values of CloudEvents 1.0: signed 32-bit. */
const INT32 = { min: -2147483648, max: 2147483647 };

const KNOWN_KEYS = new Set(['specversion', 'type', 'subject', 'data', 'extensions']);

function malformed(reason: string): PgceError {
  return new PgceError(ErrorCodes.APP_EVENT, `malformed application event: ${reason}`);
}

/** @throws PgceError(PGCE_ERR_APP_EVENT) naming what is wrong. */
export function parseAppEvent(content: string): AppEvent {
  let value: unknown;
  try {
    value = parseJsonLossless(content);
  } catch (err) {
    throw malformed(`not JSON (${(err as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof RawJson) {
    throw malformed('not a JSON object');
  }
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!KNOWN_KEYS.has(key)) throw malformed(`unknown key ${JSON.stringify(key)} (known: ${[...KNOWN_KEYS].join(', ')})`);
  }
  if (obj.specversion !== undefined && obj.specversion !== '1.0') {
    throw malformed(`specversion ${JSON.stringify(obj.specversion)} is not "1.0"`);
  }
  const { type, subject } = obj;
  if (typeof type !== 'string' || type === '') throw malformed('"type" must be a non-empty string');
  if (subject !== undefined && subject !== null && typeof subject !== 'string') {
    throw malformed('"subject" must be a string or null');
  }
  return {
    type,
    subject: subject === undefined || subject === '' ? null : subject,
    data: obj.data === undefined ? null : obj.data,
    extensions: parseExtensions(obj.extensions),
  };
}

function parseExtensions(value: unknown): AppEvent['extensions'] {
  const out: AppEvent['extensions'] = {};
  if (value === undefined || value === null) return out;
  if (typeof value !== 'object' || Array.isArray(value) || value instanceof RawJson) {
    throw malformed('"extensions" must be a JSON object');
  }
  for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
    if (!EXTENSION_NAME.test(name)) {
      throw malformed(`extension name ${JSON.stringify(name)} must be 1 to 20 lower-case letters or digits`);
    }
    if (RESERVED_ATTRIBUTES.has(name)) throw malformed(`extension name "${name}" is an attribute pg-cloudevents sets`);
    if (typeof v === 'string' || typeof v === 'boolean') out[name] = v;
    else if (typeof v === 'number' && Number.isInteger(v) && v >= INT32.min && v <= INT32.max) out[name] = v;
    else throw malformed(`extension "${name}" must be a string, a boolean or a 32-bit integer`);
  }
  return out;
}
