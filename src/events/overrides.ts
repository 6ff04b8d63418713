/**
 * K_CE_OVERRIDES: Knative's CloudEventOverrides, JSON `{"extensions": {...}}`, added to every event.
 * Parsed and validated once at start-up so that building an event never fails on them.
 */
import { ErrorCodes, PgceError } from '../errors';

export type ExtensionValue = string | number | boolean;

/**
 * Names an override may not set: the CloudEvents 1.0 required and optional context attributes, the
 * `data` member, attribute names the SDK treats specially (`datacontentencoding`, `schemaurl` of
 * 0.3), our own extensions that consumers rely on being true (`sequence`, `partitionkey`, and
 * the django format's `originid`, which mirrors `id`), and the SDK event's method names.
 */
export const RESERVED_ATTRIBUTES: ReadonlySet<string> = new Set([
  'id',
  'source',
  'specversion',
  'type',
  'datacontenttype',
  'dataschema',
  'subject',
  'time',
  'data',
  'datacontentencoding',
  'schemaurl',
  'sequence',
  'partitionkey',
  'originid',
  // Lower-case names of the SDK CloudEvent's own methods: as attributes they would shadow them
  // (`validate` breaks the SDK's own constructor, cloneWith and every receiver built on it).
  'constructor',
  'validate',
  'emit',
]);

/** CloudEvents 1.0, Context Attributes, "Attribute Naming Convention": lower-case ASCII letters or digits. */
const ATTRIBUTE_NAME = /^[a-z0-9]+$/;

/** CloudEvents 1.0, "Type System": Integer is a whole number within signed 32 bits. */
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

function reject(path: string, reason: string): never {
  throw new PgceError(ErrorCodes.CE_OVERRIDES, `K_CE_OVERRIDES: ${path}: ${reason}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkValue(path: string, value: unknown): ExtensionValue {
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < INT32_MIN || value > INT32_MAX) {
      reject(path, `${value} is not a CloudEvents Integer (a whole number within 32 bits); quote it to send a String`);
    }
    return value;
  }
  const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : 'an object';
  return reject(path, `must be a string, an integer or a boolean, not ${kind}`);
}

/**
 * Undefined, empty or blank → `{}` (Knative sets the variable to "" when there are no overrides).
 * Keys besides `extensions` are ignored, and `warn` is told their names: Knative's
 * CloudEventOverrides contract defines `extensions` only, so `{"id": "x"}` is most likely a
 * mistake the user should hear about rather than an attribute we could honour.
 * @throws PgceError(PGCE_ERR_CE_OVERRIDES) naming the key path and the reason.
 */
export function parseCeOverrides(
  raw: string | undefined,
  warn: (message: string) => void = () => undefined,
): Record<string, ExtensionValue> {
  if (raw === undefined || raw.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new PgceError(ErrorCodes.CE_OVERRIDES, `K_CE_OVERRIDES: not valid JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!isPlainObject(parsed)) reject('(root)', 'must be a JSON object like {"extensions": {"name": "value"}}');
  const ignored = Object.keys(parsed).filter((key) => key !== 'extensions');
  if (ignored.length) {
    warn(`K_CE_OVERRIDES: ignored ${ignored.map((k) => JSON.stringify(k)).join(', ')}: ` +
      'only "extensions" is defined (Knative CloudEventOverrides), e.g. {"extensions": {"team": "data"}}');
  }
  const extensions = parsed.extensions;
  if (extensions === undefined) return {};
  if (!isPlainObject(extensions)) reject('extensions', 'must be an object of extension name → value');

  const result: Record<string, ExtensionValue> = {};
  for (const [name, value] of Object.entries(extensions)) {
    if (!ATTRIBUTE_NAME.test(name)) {
      reject(
        `extensions[${JSON.stringify(name)}]`,
        'extension names must consist of lower-case letters a-z and digits 0-9 ' +
          '(CloudEvents 1.0 "Attribute Naming Convention")',
      );
    }
    const path = `extensions.${name}`;
    if (RESERVED_ATTRIBUTES.has(name)) {
      reject(path, `"${name}" is set by pg-cloudevents and may not be overridden`);
    }
    result[name] = checkValue(path, value);
  }
  return result;
}

/**
 * Copies the overrides onto an event's attributes. parseCeOverrides() already refused reserved
 * names; skipping them again here keeps `id`, `source`, `sequence`… trustworthy whatever built the
 * overrides object.
 */
export function applyOverrides(
  attributes: Record<string, unknown>,
  overrides: Readonly<Record<string, ExtensionValue>>,
): void {
  for (const name in overrides) {
    if (!RESERVED_ATTRIBUTES.has(name) && Object.prototype.hasOwnProperty.call(overrides, name)) {
      attributes[name] = overrides[name];
    }
  }
}
