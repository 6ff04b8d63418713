/**
 * A trigger rule's `when` (does the change fire the rule?) and `transform` (the payload it sends),
 * written in JSONata and evaluated by the `jsonata` package over one change
 * (docs/triggers-templates.md, "JSONata input"). Compiled once; evaluated per change, bounded.
 */
import jsonata from 'jsonata';
import { ConfigError, DeliveryError } from '../../errors';
import { RawJson } from '../../events/json-text';
import { MISSING, type TriggerContext } from './context';

/**
 * Evaluating a rule's expression failed for one change (a type error, a loop cut short by the time
 * or depth bound, a transform with no value). The same change fails the same way every time, so it
 * is final: the delivery is dead-lettered and the rest goes on.
 */
export class ExpressionError extends DeliveryError {
  constructor(message: string, detail: Record<string, unknown>, cause?: unknown) {
    super(message, { retriable: false, detail, cause });
    this.name = 'ExpressionError';
  }
}

/** Bounds on one evaluation (JSONata's own guardrails, checked at every evaluation step). */
export interface ExpressionLimits {
  /** Wall-clock milliseconds; concurrent evaluations interleave, so leave room. */
  timeoutMs: number;
  /** Nesting of evaluation steps (recursion). */
  maxDepth: number;
}

export const DEFAULT_LIMITS: Readonly<ExpressionLimits> = Object.freeze({ timeoutMs: 1000, maxDepth: 500 });

/**
 * The object an expression reads: `data.quantity`, `old.status`, `event.type`, `signal_kwargs.created`;
 * for an application event, `data` (its data) and `event` only.
 */
export interface ExpressionInput {
  data?: unknown;
  instance?: unknown;
  old?: unknown;
  event?: unknown;
  signal_kwargs?: unknown;
}

export interface CompiledExpression<T> {
  evaluate(context: TriggerContext): Promise<T>;
}

/** JSONata's errors are plain objects: code, position, token, message. */
interface JsonataFailure {
  code?: string;
  position?: number;
  token?: string;
  message?: string;
  value?: unknown;
}

function failure(err: unknown): JsonataFailure {
  return typeof err === 'object' && err !== null ? (err as JsonataFailure) : { message: String(err) };
}

function compile(expression: unknown, where: string, limits: ExpressionLimits): jsonata.Expression {
  if (typeof expression !== 'string' || expression.trim() === '') {
    throw new ConfigError([`${where}: must be a JSONata expression (a non-empty string)`]);
  }
  try {
    return jsonata(expression, { timeout: limits.timeoutMs, stack: limits.maxDepth });
  } catch (err) {
    const f = failure(err);
    const at = f.position === undefined ? '' : ` at position ${f.position}`;
    throw new ConfigError([`${where}: JSONata syntax error${at}: ${f.message ?? 'unknown'} (${f.code ?? 'no code'}) in ${JSON.stringify(expression)}`], undefined, err);
  }
}

/** Exact numbers (RawJson) become JavaScript numbers: JSONata computes on those. Copies only what changes. */
export function jsonataValue(value: unknown): unknown {
  if (value instanceof RawJson) return value.toJSON();
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    value.forEach((v, i) => {
      const converted = jsonataValue(v);
      if (converted !== v) (out ??= value.slice())[i] = converted;
    });
    return out ?? value;
  }
  if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array)) {
    let out: Record<string, unknown> | undefined;
    for (const [k, v] of Object.entries(value)) {
      const converted = jsonataValue(v);
      if (converted !== v) (out ??= { ...value })[k] = converted;
    }
    return out ?? value;
  }
  return value;
}

/** One input per change, however many rules' expressions read it. */
const inputs = new WeakMap<TriggerContext, ExpressionInput>();

/** The input object: the roots a payload knows, minus the top-level columns, plus `data` (the row). */
export function expressionInput(context: TriggerContext): ExpressionInput {
  const cached = inputs.get(context);
  if (cached !== undefined) return cached;
  const input: ExpressionInput = {};
  inputs.set(context, input);
  if (context.appEvent) {
    // An application event: `data` is what the application emitted; `event` its attributes.
    for (const name of ['data', 'event'] as const) {
      const value = context.root(name);
      if (value !== MISSING) input[name] = jsonataValue(value);
    }
    return input;
  }
  const row = context.root('instance');
  if (row !== MISSING) {
    input.data = jsonataValue(row);
    input.instance = input.data;
  }
  for (const name of ['old', 'event', 'signal_kwargs'] as const) {
    const value = context.root(name);
    if (value !== MISSING) input[name] = jsonataValue(value);
  }
  return input;
}

async function run(expr: jsonata.Expression, input: ExpressionInput, where: string, limits: ExpressionLimits): Promise<unknown> {
  try {
    return await expr.evaluate(input);
  } catch (err) {
    const f = failure(err);
    const message =
      f.code === 'D1012' ? `evaluation took longer than ${limits.timeoutMs} ms (the expression may loop)` :
      f.code === 'D1011' ? `evaluation nested deeper than ${limits.maxDepth} steps (the expression may recurse without end)` :
      f.message ?? 'unknown error';
    const at = f.position === undefined ? '' : ` at position ${f.position}`;
    throw new ExpressionError(`${where}: ${message} (JSONata ${f.code ?? 'error'}${at})`, { key: where, jsonata: f.code }, err);
  }
}

/** `$boolean`, JSONata's own truthiness, applied to a `when` result. */
const BOOLEAN = jsonata('$boolean($v)');

/**
 * `when`: true fires the rule. A non-boolean result counts as JSONata's `$boolean` says (empty
 * string, 0, null, empty array or object, a function: false); no result at all (a path that
 * matched nothing) is false.
 */
export function compileWhen(expression: unknown, where: string, limits: ExpressionLimits = DEFAULT_LIMITS): CompiledExpression<boolean> {
  const expr = compile(expression, where, limits);
  return {
    async evaluate(context) {
      const result = await run(expr, expressionInput(context), where, limits);
      if (typeof result === 'boolean') return result;
      return (await BOOLEAN.evaluate(undefined, { v: result })) === true;
    },
  };
}

/** JSONata's result as plain JSON (its sequences are arrays with extra members; functions have no JSON). */
function plainJson(value: unknown, where: string): unknown {
  if (typeof value === 'function') {
    throw new ExpressionError(`${where}: the transform produced a function, which has no JSON`, { key: where });
  }
  if (typeof value === 'number' && !Number.isFinite(value)) {
    // Only an exact number beyond a double's range (`1e400`) reads as ±Infinity, which JSON cannot carry.
    throw new ExpressionError(`${where}: the transform produced ${value}, which is not a JSON number`, { key: where });
  }
  if (Array.isArray(value)) return value.filter((v) => v !== undefined).map((v) => plainJson(v, where));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v !== undefined) Object.defineProperty(out, k, { value: plainJson(v, where), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}

/** `transform`: its result is the payload (instead of `payload`). No result is an error, not an empty payload. */
export function compileTransform(expression: unknown, where: string, limits: ExpressionLimits = DEFAULT_LIMITS): CompiledExpression<unknown> {
  const expr = compile(expression, where, limits);
  return {
    async evaluate(context) {
      const result = await run(expr, expressionInput(context), where, limits);
      if (result === undefined) {
        throw new ExpressionError(`${where}: the transform produced no value for this change (a path that matched nothing?)`, { key: where });
      }
      return plainJson(result, where);
    },
  };
}
