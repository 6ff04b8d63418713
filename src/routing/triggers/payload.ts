/**
 * JSON payload templates (docs/triggers-templates.md): any JSON value whose string leaves may hold
 * `{{ path }}` placeholders, compiled once at start-up and rendered per change. A leaf that is one
 * placeholder keeps the value's JSON type (exact RawJson numbers included); mixed text is a string.
 */
import { ConfigError, DeliveryError } from '../../errors';
import { RawJson, stringifyJson } from '../../events/json-text';
import { member, MISSING, ROOTS, type TriggerContext } from './context';

/**
 * A placeholder could not be rendered for one change (a column the row lacks, `old` on an insert).
 * No retry can add it, so it is final: the delivery is dead-lettered and the rest goes on.
 */
export class PayloadError extends DeliveryError {
  constructor(message: string, detail: Record<string, unknown>) {
    super(message, { retriable: false, detail });
    this.name = 'PayloadError';
  }
}

/** One `{{ path }}` of a template: where it sits, for messages. */
export interface Placeholder {
  /** `['customer', 'name']`. */
  readonly path: readonly string[];
  /** The leaf's key path (`triggers[0].payload.to`). */
  readonly where: string;
  /** As written (`{{ customer.name }}`). */
  readonly text: string;
}

export interface CompiledPayload {
  /** Every placeholder's path (`['customer', 'name']`), in template order: what a relation resolver fetches. */
  readonly paths: readonly (readonly string[])[];
  /** The same placeholders with where each sits, so a resolver's errors read like the renderer's. */
  readonly placeholders: readonly Placeholder[];
  /** The payload for one change; throws PayloadError when a placeholder names nothing. */
  render(context: TriggerContext): unknown;
}

/** A name (column names as SQL writes them unquoted, any case) or an array index. */
const SEGMENT = /^(?:[A-Za-z_][A-Za-z0-9_]*|0|[1-9][0-9]*)$/;
/** `\{{` and `\}}` (literal braces), a placeholder, or a stray pair of braces. */
const TOKEN = /\\\{\{|\\\}\}|\{\{([^{}]*)\}\}|\{\{|\}\}/g;

type Part = string | { path: string[]; text: string };
type Node = (context: TriggerContext) => unknown;

/** `payload.items[0].name`: where a leaf sits, for messages. */
function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function parsePlaceholder(inner: string, text: string, where: string): string[] {
  const expression = inner.trim();
  const path = expression.split('.');
  if (expression === '' || !path.every((s) => SEGMENT.test(s)) || !/^[A-Za-z_]/.test(path[0])) {
    throw new ConfigError([
      `${where}: {{${inner}}} in ${JSON.stringify(text)} is not a placeholder: write {{ column }} or {{ root.key.0 }}, ` +
        'a dotted path of names and array indexes (conditions and computed values belong in transform)',
    ]);
  }
  if (path[0] === 'env') {
    throw new ConfigError([
      `${where}: {{${inner}}}: environment values are not rendered into payloads (they would be sent as data); ` +
        'a column named env is {{ instance.env }}',
    ]);
  }
  return path;
}

function parseText(text: string, where: string): Part[] {
  const parts: Part[] = [];
  let literal = '';
  let last = 0;
  for (const m of text.matchAll(TOKEN)) {
    literal += text.slice(last, m.index);
    last = m.index! + m[0].length;
    if (m[0] === '\\{{' || m[0] === '\\}}') {
      literal += m[0].slice(1);
    } else if (m[1] === undefined) {
      throw new ConfigError([
        `${where}: ${JSON.stringify(text)} has an unmatched ${m[0]}: write {{ path }}, or \\{{ and \\}} for literal braces`,
      ]);
    } else {
      if (literal !== '') parts.push(literal);
      literal = '';
      parts.push({ path: parsePlaceholder(m[1], text, where), text: m[0] });
    }
  }
  literal += text.slice(last);
  if (literal !== '') parts.push(literal);
  return parts;
}

function describe(value: unknown): string {
  if (value instanceof RawJson) return 'a number';
  if (value === undefined) return 'undefined';
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** The value at `path`, or a PayloadError naming the placeholder and what was there instead. */
function resolve(context: TriggerContext, path: readonly string[], text: string, where: string): unknown {
  const fail = (why: string, available: string): never => {
    throw new PayloadError(`${where}: ${text}: ${why}${available}`, {
      placeholder: path.join('.'),
      key: where,
    });
  };
  // Where the walk stopped, spelled out only for a message.
  const at = (i: number): string => path.slice(0, i).join('.');
  let value = context.root(path[0]);
  if (value === MISSING) {
    const name = path[0];
    if (context.appEvent) {
      const { columns, roots } = context.names();
      fail(name === 'data' ? 'this application event has no data' : `the application event's data has no member ${name}`,
        ` (members: ${columns.join(', ') || 'none'}; roots: ${roots.join(', ')})`);
    }
    const relation = path.length > 1 && context.row !== undefined && member(context.row, `${name}_id`) !== MISSING;
    const why =
      name === 'old' ? 'this change has no previous row (only an update whose previous row PostgreSQL sent has one)' :
      (ROOTS as readonly string[]).includes(name) ? `this change has no ${name}` :
      relation ? `the row has no column ${name}, and ${name}_id is no foreign key this delivery follows (a single-column ` +
        'foreign key, with limits.relationDepth above 0: see "Relations" in docs/triggers-templates.md)' :
      `the row has no column ${name}`;
    const { columns, roots } = context.names();
    fail(why, ` (columns: ${columns.join(', ') || 'none'}; roots: ${roots.join(', ')})`);
  }
  for (let i = 1; i < path.length; i++) {
    const key = path[i];
    if (Array.isArray(value)) {
      const index = /^\d+$/.test(key) ? Number(key) : -1;
      if (index < 0 || index >= value.length) fail(`${at(i)} is an array of ${value.length} with no element ${key}`, '');
      value = value[index];
    } else if (typeof value === 'object' && value !== null && !(value instanceof RawJson)) {
      const next = member(value as Record<string, unknown>, key);
      if (next === MISSING) fail(`${at(i)} has no ${key}`, ` (its keys: ${Object.keys(value).join(', ') || 'none'})`);
      value = next;
    } else {
      fail(`${at(i)} is ${describe(value)}, not an object`, '');
    }
  }
  return value;
}

/** Mixed text: a string as it is, anything else as its JSON text (exact numbers, `null`, compact objects). */
function textOf(value: unknown): string {
  return typeof value === 'string' ? value : stringifyJson(value);
}

function compileString(text: string, where: string, paths: Placeholder[]): Node | undefined {
  const parts = parseText(text, where);
  const placeholders = parts.filter((p): p is Exclude<Part, string> => typeof p !== 'string');
  if (placeholders.length === 0) {
    const literal = parts.join('');
    return literal === text ? undefined : () => literal;
  }
  for (const p of placeholders) paths.push({ path: p.path, where, text: p.text });
  if (parts.length === 1) {
    const { path, text: placeholder } = placeholders[0];
    return (context) => resolve(context, path, placeholder, where);
  }
  return (context) => {
    let out = '';
    for (const part of parts) out += typeof part === 'string' ? part : textOf(resolve(context, part.path, part.text, where));
    return out;
  };
}

/** A Node for a subtree with placeholders; undefined for a constant one (returned as compiled). */
function compileNode(value: unknown, where: string, paths: Placeholder[]): Node | undefined {
  if (typeof value === 'string') return compileString(value, where, paths);
  if (value === null || typeof value === 'boolean' || value instanceof RawJson) return undefined;
  if (typeof value === 'number') {
    if (Number.isFinite(value)) return undefined;
  } else if (Array.isArray(value)) {
    const children = value.map((v, i) => compileNode(v, childPath(where, i), paths));
    if (children.every((c) => c === undefined)) return undefined;
    return (context) => children.map((c, i) => (c === undefined ? value[i] : c(context)));
  } else if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const entries = Object.entries(value as Record<string, unknown>);
    for (const [key] of entries) {
      if (/\{\{|\}\}/.test(key)) {
        throw new ConfigError([`${childPath(where, key)}: keys are not templates; only string values may hold {{ placeholders }}`]);
      }
    }
    const children = entries.map(([k, v]) => compileNode(v, childPath(where, k), paths));
    if (children.every((c) => c === undefined)) return undefined;
    return (context) => {
      const out: Record<string, unknown> = {};
      entries.forEach(([k, v], i) => {
        const child = children[i];
        // defineProperty: a `__proto__` key stays an own member, as JSON.parse made it.
        Object.defineProperty(out, k, { value: child === undefined ? v : child(context), enumerable: true, writable: true, configurable: true });
      });
      return out;
    };
  }
  throw new ConfigError([`${where}: ${describe(value)} is not a JSON value (a payload is JSON: objects, arrays, strings, finite numbers, booleans, null)`]);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Compiles a rule's `payload` (`where`: its key path, for messages). No template: the payload is the
 * event's `data`. A string payload renders to a string, sent as text or JSON as the transport
 * decides. Throws ConfigError naming the key path for a malformed placeholder, a key with braces,
 * `{{ env.… }}`, or a value JSON cannot carry.
 */
export function compilePayload(template: unknown, where: string): CompiledPayload {
  if (template === undefined) return { paths: [], placeholders: [], render: (context) => context.data };
  const placeholders: Placeholder[] = [];
  // A copy: the configuration's own objects stay the configuration's; constant parts are shared
  // by every rendered payload, so they are frozen.
  const constant = deepFreeze(structuredCopy(template));
  const node = compileNode(constant, where, placeholders);
  return { paths: placeholders.map((p) => p.path), placeholders, render: node === undefined ? () => constant : node };
}

function structuredCopy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(structuredCopy);
  if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      Object.defineProperty(out, k, { value: structuredCopy(v), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}
