import { ConfigError } from '../../errors';

/**
 * Knative's SubscriptionsAPI filter dialect (a Trigger's `spec.filters`), over a CloudEvent's
 * context attributes and extensions. Semantics follow knative/eventing
 * `pkg/eventfilter/subscriptionsapi/` (file named at each dialect) and the Trigger webhook
 * (`pkg/apis/eventing/v1/trigger_validation.go`); where we are stricter, docs/triggers.md says so.
 */

/** What a filter reads: a CloudEvent (cloudevents' class has this index signature) or plain attributes. */
export type FilterableEvent = { readonly [attribute: string]: unknown };

export type EventFilter = (event: FilterableEvent) => boolean;

const DIALECTS = ['exact', 'prefix', 'suffix', 'all', 'any', 'not', 'cesql'] as const;

/**
 * CloudEvents 1.0 "Attribute Naming Convention": lower-case ASCII letters and digits. Knative's
 * webhook also wants a letter first (trigger_validation.go, `validAttributeName`), so `Type` or
 * `2fa` can never name an attribute and are refused rather than silently never matching.
 */
const ATTRIBUTE_NAME = /^[a-z][a-z0-9]*$/;

/** Not context attributes, though a CloudEvent object carries them. */
const NOT_ATTRIBUTES = new Set(['data', 'data_base64']);

const MATCH_ALL: EventFilter = () => true;

/**
 * Compiles a `filters` list: every entry must match (Knative's `CreateSubscriptionsAPIFilters`
 * in create.go wraps the list in an all-filter); an empty or absent list matches every event.
 * Invalid input throws one ConfigError listing every problem with its key path under `path`.
 */
export function compileFilters(filters: unknown, path: string): EventFilter {
  if (filters === undefined || filters === null) return MATCH_ALL;
  const problems: string[] = [];
  if (!Array.isArray(filters)) {
    throw new ConfigError([`${path}: must be a list of filters (exact, prefix, suffix, all, any, not)`]);
  }
  const compiled = filters.map((f, i) => compileFilter(f, `${path}[${i}]`, problems));
  if (problems.length > 0) throw new ConfigError(problems);
  return allOf(compiled as EventFilter[]);
}

/** One filter object; pushes problems and returns undefined when it is invalid. */
function compileFilter(filter: unknown, path: string, problems: string[]): EventFilter | undefined {
  if (!isPlainObject(filter)) {
    problems.push(`${path}: must be an object with exactly one of ${DIALECTS.join(', ')}`);
    return undefined;
  }
  const keys = Object.keys(filter);
  const unknown = keys.filter((k) => !(DIALECTS as readonly string[]).includes(k));
  if (unknown.length > 0) {
    problems.push(`${path}: unknown filter dialect ${unknown.map((k) => `"${k}"`).join(', ')} (one of ${DIALECTS.join(', ')})`);
    return undefined;
  }
  // trigger_validation.go `ValidateOneOf`: "filters can have only one dialect set".
  if (keys.length !== 1) {
    problems.push(
      keys.length === 0
        ? `${path}: an empty filter; set exactly one of ${DIALECTS.join(', ')}`
        : `${path}: has ${keys.map((k) => `"${k}"`).join(' and ')}; a filter can have only one dialect, combine them with "all"`,
    );
    return undefined;
  }
  const dialect = keys[0] as (typeof DIALECTS)[number];
  const value = filter[dialect];
  const at = `${path}.${dialect}`;
  switch (dialect) {
    case 'exact':
      return attributeFilter(value, at, problems, (actual, wanted) => actual === wanted);
    case 'prefix':
      return attributeFilter(value, at, problems, (actual, wanted) => actual.startsWith(wanted));
    case 'suffix':
      return attributeFilter(value, at, problems, (actual, wanted) => actual.endsWith(wanted));
    case 'all':
      return listFilter(value, at, problems, allOf);
    case 'any':
      return listFilter(value, at, problems, anyOf);
    case 'not': {
      // not_filter.go: passes when the contained filter fails.
      const inner = compileFilter(value, at, problems);
      return inner && ((event) => !inner(event));
    }
    case 'cesql':
      problems.push(`${at}: CloudEvents SQL filters are not supported; use exact, prefix, suffix, all, any and not`);
      return undefined;
  }
}

/**
 * exact_filter.go, prefix_filter.go, suffix_filter.go: a map of attribute → value, every entry
 * must match, and a missing attribute never matches (Knative returns FailFilter when
 * `LookupAttribute` finds nothing). Empty names or values are refused as Knative's constructors
 * refuse them ("attribute and value can't be empty"). Knative's webhook allows one entry per
 * map; we accept several (all must match, as the filter code itself does).
 */
function attributeFilter(
  value: unknown,
  path: string,
  problems: string[],
  matches: (actual: string, wanted: string) => boolean,
): EventFilter | undefined {
  if (!isPlainObject(value)) {
    problems.push(`${path}: must be an object of attribute name → string value`);
    return undefined;
  }
  const entries = Object.entries(value);
  if (entries.length === 0) {
    problems.push(`${path}: names no attribute; give at least one attribute → value`);
    return undefined;
  }
  let ok = true;
  for (const [name, wanted] of entries) {
    if (!ATTRIBUTE_NAME.test(name)) {
      problems.push(
        `${path}.${name}: attribute names are lower-case letters and digits, starting with a letter (CloudEvents attribute naming)`,
      );
      ok = false;
    }
    if (typeof wanted !== 'string' || wanted === '') {
      problems.push(`${path}.${name}: must be a non-empty string`);
      ok = false;
    }
  }
  if (!ok) return undefined;
  const pairs = entries as [string, string][];
  return (event) => {
    for (const [name, wanted] of pairs) {
      const actual = attributeText(event, name);
      if (actual === undefined || !matches(actual, wanted)) return false;
    }
    return true;
  };
}

/**
 * all_filter.go / any_filter.go. An empty list is refused: Knative treats `all: []` and `any: []`
 * as no dialect at all (the filter is skipped and the event passes), which reads as "nothing
 * matches" for `any`; we do not guess.
 */
function listFilter(
  value: unknown,
  path: string,
  problems: string[],
  combine: (filters: EventFilter[]) => EventFilter,
): EventFilter | undefined {
  if (!Array.isArray(value)) {
    problems.push(`${path}: must be a list of filters`);
    return undefined;
  }
  if (value.length === 0) {
    problems.push(`${path}: an empty list; give at least one filter`);
    return undefined;
  }
  const before = problems.length;
  const compiled = value.map((f, i) => compileFilter(f, `${path}[${i}]`, problems));
  return problems.length === before ? combine(compiled as EventFilter[]) : undefined;
}

function allOf(filters: EventFilter[]): EventFilter {
  if (filters.length === 0) return MATCH_ALL;
  if (filters.length === 1) return filters[0];
  return (event) => filters.every((f) => f(event));
}

function anyOf(filters: EventFilter[]): EventFilter {
  if (filters.length === 1) return filters[0];
  return (event) => filters.some((f) => f(event));
}

/**
 * An attribute's value as text, as it travels in a binary-mode HTTP header (CloudEvents HTTP
 * binding 3.1.3.2, "HTTP Header Values"): strings as they are, numbers and booleans in their
 * canonical text, a Date as its RFC 3339 text. Absent, null, or not a scalar: undefined.
 */
function attributeText(event: FilterableEvent, name: string): string | undefined {
  if (NOT_ATTRIBUTES.has(name)) return undefined;
  const v = event[name];
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (v instanceof Date) return v.toISOString();
  return undefined;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
