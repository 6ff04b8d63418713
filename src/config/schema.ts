/**
 * The configuration file's JSON Schema (config/schema.json, shipped with the package) compiled with
 * ajv, and its errors turned into `key.path: reason` lines. The same format checks serve the
 * environment variables, so both speak the same language.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { isEventSource } from '../events/source';
import { isDuration } from './duration';

const PACKAGE_NAME = 'pg-cloudevents';
const SCHEMA_FILE = path.join('config', 'schema.json');

/** Handler names the sink registry provides; anything else must look like a module path. */
export const BUILT_IN_HANDLERS = ['http', 'kafka', 'redis', 'pubsub', 'rabbitmq', 'nats', 'mqtt', 'console'] as const;

// `path/to/file.js`, optionally `#exportName`: a slash or a JS extension tells it from a misspelt name.
const MODULE_HANDLER = /^(?:[^#]*\/[^#]*|[^#/]+\.[cm]?js)(?:#[A-Za-z_$][A-Za-z0-9_$]*)?$/;

export function isHandler(text: string): boolean {
  return (BUILT_IN_HANDLERS as readonly string[]).includes(text) || MODULE_HANDLER.test(text);
}

function parseUrl(text: string, protocols: readonly string[]): URL | undefined {
  try {
    const url = new URL(text);
    return protocols.includes(url.protocol) ? url : undefined;
  } catch {
    return undefined;
  }
}

/** Absolute: `http:example.com` parses too, but is not what anyone means by a sink URL. */
export function isHttpUrl(text: string): boolean {
  return /^https?:\/\//i.test(text) && parseUrl(text, ['http:', 'https:']) !== undefined;
}

export function isPostgresUrl(text: string): boolean {
  return parseUrl(text, ['postgres:', 'postgresql:']) !== undefined;
}

/**
 * Custom formats and what to tell the user when a value fails one. Reasons never include the
 * value: URLs may carry passwords.
 */
export const FORMATS: Readonly<Record<string, { check: (text: string) => boolean; reason: string }>> = {
  duration: { check: isDuration, reason: 'must be an ISO 8601 duration such as PT0.5S, PT30S or PT1M (no years or months)' },
  'http-url': { check: isHttpUrl, reason: 'must be an absolute http:// or https:// URL' },
  'postgres-url': {
    check: isPostgresUrl,
    reason: 'must be a postgres:// or postgresql:// URL (percent-encode special characters in the user name and password)',
  },
  'event-source': {
    check: isEventSource,
    reason: 'must be a URI-reference, the CloudEvents `source` attribute (e.g. /pg-cloudevents/mydb or https://example.com/orders)',
  },
  handler: {
    check: isHandler,
    reason: `must be a built-in handler (${BUILT_IN_HANDLERS.join(', ')}) or a module path/to/file.js#export`,
  },
};

/**
 * The folder of package.json named pg-cloudevents, searched upwards from `start` (compiled code
 * lives in dist/src/config, sources in src/config; both must find the same root).
 */
export function findPackageRoot(start: string = __dirname): string {
  for (let dir = path.resolve(start); ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown };
      if (pkg.name === PACKAGE_NAME) return dir;
    } catch {
      // no (readable) package.json here: keep climbing
    }
    if (path.dirname(dir) === dir) throw new Error(`cannot find the ${PACKAGE_NAME} package root above ${start}`);
  }
}

export function schemaPath(): string {
  return path.join(findPackageRoot(), SCHEMA_FILE);
}

export function loadSchema(): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(schemaPath(), 'utf8')) as Record<string, unknown>;
}

let compiled: ValidateFunction | undefined;

function newAjv(): Ajv {
  // verbose: errors carry their parent schema, used to list the allowed keys next to a typo.
  const ajv = new Ajv({ allErrors: true, verbose: true, allowUnionTypes: true, strict: true });
  addFormats(ajv);
  // After ajv-formats: ours replace its `duration`, which accepts years and months.
  for (const [name, format] of Object.entries(FORMATS)) ajv.addFormat(name, format.check);
  return ajv;
}

function validator(): ValidateFunction {
  compiled ??= newAjv().compile(loadSchema());
  return compiled;
}

const partValidators = new Map<string, ValidateFunction>();

/**
 * Problems with some top-level keys of the file, by the file's own schema for them (a module that
 * reads its keys on its own, e.g. src/workflows/config.ts, checks with the same rules and messages).
 */
export function validateFileKeys(data: Record<string, unknown>, keys: readonly string[]): string[] {
  const id = keys.join(',');
  let validate = partValidators.get(id);
  if (validate === undefined) {
    const root = loadSchema() as { properties: Record<string, unknown>; $defs?: Record<string, unknown> };
    const properties = Object.fromEntries(keys.map((k) => [k, root.properties[k]]));
    // The shared definitions (`#/$defs/action`) come along: the keys' schemas may refer to them.
    validate = newAjv().compile({ type: 'object', additionalProperties: false, properties, ...(root.$defs && { $defs: root.$defs }) });
    partValidators.set(id, validate);
  }
  if (validate(data)) return [];
  return [...new Set((validate.errors ?? []).map(describeError))];
}

/** Problems with the file's contents, all of them, as `key.path: reason`; [] when valid. */
export function validateFileConfig(data: unknown): string[] {
  const validate = validator();
  if (validate(data)) return [];
  const problems = (validate.errors ?? []).map(describeError);
  return [...new Set(problems)];
}

/**
 * Problems with one trigger rule written outside the file (the triggers table, the admin API),
 * by the file's own schema for a `triggers` entry, named from `at` instead of `triggers[0]`.
 */
export function validateTriggerRule(data: unknown, at: string): string[] {
  return validateFileConfig({ triggers: [data] }).map((p) => (p.startsWith('triggers[0]') ? at + p.slice('triggers[0]'.length) : p));
}

/** `/tables/0/table` → `tables[0].table`; the root is `(root)`. */
export function keyPath(pointer: string, child?: string): string {
  const parts = pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (child !== undefined) parts.push(child);
  let out = '';
  for (const part of parts) out += /^\d+$/.test(part) ? `[${part}]` : out === '' ? part : `.${part}`;
  return out === '' ? '(root)' : out;
}

/** One ajv error as `key.path: reason` (also used by schemas other than the file's, e.g. workflows). */
export function describeError(err: ErrorObject): string {
  switch (err.keyword) {
    case 'required':
      return `${keyPath(err.instancePath, (err.params as { missingProperty: string }).missingProperty)}: required`;
    case 'additionalProperties': {
      const key = (err.params as { additionalProperty: string }).additionalProperty;
      const allowed = Object.keys((err.parentSchema?.properties as Record<string, unknown> | undefined) ?? {});
      const near = closest(key, allowed);
      const hint = near ? `did you mean ${near}? ` : '';
      return `${keyPath(err.instancePath, key)}: unknown key (${hint}allowed: ${allowed.join(', ')})`;
    }
    case 'dependencies': {
      const { property, missingProperty } = err.params as { property: string; missingProperty: string };
      return `${keyPath(err.instancePath, missingProperty)}: required with ${property}`;
    }
    case 'enum':
      return `${keyPath(err.instancePath)}: must be one of ${(err.params as { allowedValues: unknown[] }).allowedValues.join(', ')} (got ${shown(err.data)})`;
    case 'format': {
      const format = (err.params as { format: string }).format;
      return `${keyPath(err.instancePath)}: ${FORMATS[format]?.reason ?? `must be a ${format}`}`;
    }
    case 'type': {
      const type = (err.params as { type: string | string[] }).type;
      const types = (Array.isArray(type) ? type : String(type).split(',')).map(article);
      return `${keyPath(err.instancePath)}: must be ${types.join(' or ')} (got ${kindOf(err.data)})`;
    }
    case 'pattern':
      return `${keyPath(err.instancePath)}: must match ${(err.params as { pattern: string }).pattern} (got ${shown(err.data)})`;
    default:
      return `${keyPath(err.instancePath)}: ${err.message ?? err.keyword}`;
  }
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return article(typeof value);
}

function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** The allowed key within edit distance 2 of a typo, if any. */
function closest(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of allowed) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}
