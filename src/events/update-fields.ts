/**
 * Django's `update_fields` for an update: the columns whose value changed. Only meaningful when the
 * whole previous row is known (REPLICA IDENTITY FULL); otherwise callers send null.
 */
import type { Row } from '../sources/change';

/** Equality of JSON-natural column values (primitives, arrays, plain objects). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameValue(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ak = Object.keys(a);
  if (ak.length !== Object.keys(b).length) return false;
  for (const k of ak) {
    if (!Object.prototype.hasOwnProperty.call(b, k)) return false;
    if (!sameValue((a as Row)[k], (b as Row)[k])) return false;
  }
  return true;
}

/**
 * Columns of `next` whose value differs from `previous`, in the row's column order. A column absent
 * from `next` (unchanged TOAST value, not sent) is unchanged by definition.
 */
export function changedColumns(previous: Row, next: Row): string[] {
  const changed: string[] = [];
  for (const name in next) {
    if (!sameValue(previous[name], next[name])) changed.push(name);
  }
  return changed;
}
