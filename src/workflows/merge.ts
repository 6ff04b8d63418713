/**
 * How a run's payload is made (docs/workflows.md): the instance's inputs merged over the task's
 * `withParams`, recursively. Objects on both sides merge key by key; anything else (an array, a
 * scalar, an object meeting a non-object) is replaced by the upper side. So `withParams` can add
 * to an input's data but never change what the input carried.
 */

export type JsonObject = Record<string, unknown>;

/** A JSON object: not an array, and not a value object such as an exact number (RawJson). */
export function isPlainObject(value: unknown): value is JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** A new object: `lower` with `upper` merged over it; neither argument is changed. */
export function mergeRecursive(lower: JsonObject, upper: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(lower)) define(out, key, isPlainObject(value) ? mergeRecursive({}, value) : value);
  for (const [key, value] of Object.entries(upper)) {
    const below = out[key];
    define(out, key, isPlainObject(value) ? mergeRecursive(isPlainObject(below) ? below : {}, value) : value);
  }
  return out;
}

/** Keeps `__proto__` an ordinary key (input data comes from rows). */
function define(target: JsonObject, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}
