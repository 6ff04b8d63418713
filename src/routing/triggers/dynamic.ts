/**
 * Dynamic values (README, "Triggers"): `{{ env.NAME }}`, `{{ file:/path }}` and
 * `{{ module:path.js#export }}` in a webhook's URL and headers and in a broker action's params,
 * read when the action sends (a rotated token file is read again; a module is loaded once). Each
 * reference must pass `allow.dynamicValues` (allow.ts `checkDynamicValue`) when the rule is
 * loaded. Resolved values are secrets: they are never logged and never in an error message; errors
 * name the reference only.
 */
import { promises as fs } from 'node:fs';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { DeliveryError, ErrorCodes, errorMessage } from '../../errors';
import { checkDynamicValue, type AllowList } from './allow';

/** What a rule's dynamic references are checked against. */
export interface DynamicContext {
  allow?: AllowList;
  trusted: boolean;
}

/** One `{{ … }}` that is a dynamic reference: `env.`, `file:` or `module:` after the braces. */
const DYNAMIC = /\{\{\s*((?:env\.|file:|module:)[^{}]*?)\s*\}\}/g;
const ANY_PLACEHOLDER = /\{\{|\}\}/;
const ENV_NAME = /^env\.([A-Za-z_][A-Za-z0-9_]*)$/;
const MODULE_SPEC = /^module:([^#]+?\.[cm]?js)(?:#([A-Za-z_$][A-Za-z0-9_$]*))?$/;

type Reference =
  | { kind: 'env'; text: string; name: string }
  | { kind: 'file'; text: string; path: string }
  | { kind: 'module'; text: string; path: string; exportName: string };

/** A string with dynamic references, compiled once; `resolve` reads them at send time. */
export interface DynamicText {
  /** As written (references unresolved): safe to show. */
  readonly text: string;
  /** The references it holds, as `allow.dynamicValues` lists them. */
  readonly references: readonly string[];
  /** The text with every reference read now. Throws DeliveryError (code PGCE_ERR_DYNAMIC_VALUE). */
  resolve(): Promise<string>;
}

/**
 * Compiles `text` (key path `where`). `others: 'refuse'` (URLs, headers) reports any other
 * `{{ … }}`; `'keep'` (broker params) leaves it as it is for the broker's own destination
 * template (`{{ app }}`). Problems, refusals by `allow.dynamicValues` included, go to `problems`.
 */
export function compileDynamic(
  text: string,
  where: string,
  context: DynamicContext,
  problems: string[],
  others: 'refuse' | 'keep' = 'refuse',
): DynamicText {
  const parts: (string | Reference)[] = [];
  let last = 0;
  for (const m of text.matchAll(DYNAMIC)) {
    parts.push(text.slice(last, m.index));
    last = m.index! + m[0].length;
    const reference = parseReference(m[1], where, problems);
    if (reference === undefined) continue;
    const refused = checkDynamicValue(reference.text, context.allow, context.trusted, where);
    if (refused) problems.push(...refused.problems);
    parts.push(reference);
  }
  parts.push(text.slice(last));
  if (others === 'refuse') {
    const literal = parts.filter((p): p is string => typeof p === 'string').join('');
    if (ANY_PLACEHOLDER.test(literal)) {
      problems.push(
        `${where}: ${JSON.stringify(text)}: only dynamic values may be written in braces here ` +
          '({{ env.NAME }}, {{ file:/path }}, {{ module:path.js#export }}); the row\'s values belong in the payload',
      );
    }
  }
  const references = parts.filter((p): p is Reference => typeof p !== 'string');
  if (references.length === 0) return { text, references: [], resolve: async () => text };
  return {
    text,
    references: references.map((r) => r.text),
    async resolve() {
      const values = await Promise.all(parts.map((p) => (typeof p === 'string' ? p : readReference(p, where))));
      return values.join('');
    },
  };
}

function parseReference(inner: string, where: string, problems: string[]): Reference | undefined {
  if (inner.startsWith('env.')) {
    const m = ENV_NAME.exec(inner);
    if (m) return { kind: 'env', text: inner, name: m[1] };
    problems.push(`${where}: {{ ${inner} }}: an environment variable's name is letters, digits and _ (env.HOOK_TOKEN)`);
    return undefined;
  }
  if (inner.startsWith('file:')) {
    const path = inner.slice('file:'.length);
    if (isAbsolute(path)) return { kind: 'file', text: inner, path };
    problems.push(`${where}: {{ ${inner} }}: a file must be an absolute path (file:/var/run/secrets/token)`);
    return undefined;
  }
  const m = MODULE_SPEC.exec(inner);
  if (m) return { kind: 'module', text: inner, path: m[1], exportName: m[2] ?? 'default' };
  problems.push(`${where}: {{ ${inner} }}: write module:path/to/file.js#exportName (the path relative to the working directory)`);
  return undefined;
}

function dynamicError(reference: Reference, where: string, why: string, retriable: boolean, cause?: unknown): DeliveryError {
  return new DeliveryError(`${where}: {{ ${reference.text} }} ${why}`, {
    retriable,
    code: ErrorCodes.DYNAMIC_VALUE,
    cause,
    detail: { reference: reference.text },
  });
}

async function readReference(reference: Reference, where: string): Promise<string> {
  switch (reference.kind) {
    case 'env': {
      const value = process.env[reference.name];
      // The environment of a running process does not change: retrying cannot help.
      if (value === undefined) throw dynamicError(reference, where, 'is not set in the environment', false);
      return value;
    }
    case 'file':
      try {
        // Read on every send: a mounted secret is rotated in place. Trailing newlines are the file's, not the value's.
        return (await fs.readFile(reference.path, 'utf8')).replace(/\s+$/, '');
      } catch (err) {
        // Retriable, as the OIDC token file: a projected volume being swapped is transient.
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        throw dynamicError(reference, where, `cannot be read (${code})`, true, err);
      }
    case 'module':
      return readModuleValue(reference, where);
  }
}

/** Modules loaded so far, by absolute path: each is loaded once per process. */
const MODULES = new Map<string, { module?: Record<string, unknown>; error?: unknown }>();

/**
 * A module's export: a string (or number) as it is, or a function called on every send (it may
 * return a promise), e.g. to sign or to fetch a short-lived token. A module that fails to load, or
 * an export of another kind, is final: the same module is used until the process restarts.
 */
async function readModuleValue(reference: Extract<Reference, { kind: 'module' }>, where: string): Promise<string> {
  const path = resolvePath(process.cwd(), reference.path);
  let loaded = MODULES.get(path);
  if (loaded === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      loaded = { module: require(path) as Record<string, unknown> };
    } catch (err) {
      loaded = { error: err };
    }
    MODULES.set(path, loaded);
  }
  if (loaded.module === undefined) {
    throw dynamicError(reference, where, `failed to load (${errorMessage(loaded.error)})`, false, loaded.error);
  }
  const mod = loaded.module;
  let value = reference.exportName === 'default' ? (mod.default ?? mod) : mod[reference.exportName];
  if (typeof value === 'function') {
    try {
      value = await (value as () => unknown)();
    } catch (err) {
      // The function's own failure (a token service down): another attempt may succeed.
      throw dynamicError(reference, where, `failed: its function threw (${errorMessage(err)})`, true, err);
    }
  }
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw dynamicError(reference, where, `is not a string, a number, or a function returning one`, false);
}

/** A JSON value whose string leaves were compiled for dynamic references (`compileDynamicTree`). */
export interface DynamicTree<T> {
  /** Whether any leaf holds a reference (else `resolve` gives the value as written). */
  readonly dynamic: boolean;
  /** The value with every reference read now. Throws DeliveryError (code PGCE_ERR_DYNAMIC_VALUE). */
  resolve(): Promise<T>;
}

/**
 * `compileDynamic` over every string of a JSON value (a broker's `conn`, an action's `params`),
 * at any depth; key paths `where.key[0]…`. Other values are kept as they are.
 */
export function compileDynamicTree<T>(value: T, where: string, context: DynamicContext, problems: string[], others: 'refuse' | 'keep'): DynamicTree<T> {
  let dynamic = false;
  const walk = (node: unknown, at: string): () => Promise<unknown> => {
    if (typeof node === 'string') {
      const text = compileDynamic(node, at, context, problems, others);
      if (text.references.length === 0) return async () => node;
      dynamic = true;
      return () => text.resolve();
    }
    if (Array.isArray(node)) {
      const items = node.map((v, i) => walk(v, `${at}[${i}]`));
      return async () => Promise.all(items.map((f) => f()));
    }
    if (typeof node === 'object' && node !== null) {
      const entries = Object.entries(node).map(([k, v]) => [k, walk(v, `${at}.${k}`)] as const);
      return async () => Object.fromEntries(await Promise.all(entries.map(async ([k, f]) => [k, await f()])));
    }
    return async () => node;
  };
  const root = walk(value, where);
  return { dynamic, resolve: async () => (await root()) as T };
}
