/**
 * Pieces shared by every format: the primary-key text used in `subject` / `partitionkey`, and the
 * event type suffix Django's signal names give.
 */
import type { TableChange, Row } from '../sources/change';
import { stringifyJson } from './json-text';

/** Django's signal for each kind of change; backfill is a post_save with `raw: true`. */
export const SIGNAL_BY_KIND: Readonly<Record<TableChange['kind'], string>> = Object.freeze({
  insert: 'post_save',
  update: 'post_save',
  delete: 'post_delete',
  truncate: 'post_truncate',
  schema: 'schema_change',
});

/** The row that identifies the changed row: the new one, or the old one for a delete. */
export function identityRow(change: TableChange): Row | undefined {
  switch (change.kind) {
    case 'insert':
    case 'update':
      return change.new;
    case 'delete':
      return change.old;
    default:
      return undefined;
  }
}

/** A key value as plain text: strings as they are, numbers and booleans via String(). */
export function plainKeyText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return value instanceof Date ? value.toISOString() : stringifyJson(value);
  return String(value);
}

/**
 * The primary key as text, composite keys joined with `,` in key order; undefined when the table
 * has no key, the change is a truncate, or the row carries none of the key columns.
 */
export function primaryKeyText(
  change: TableChange,
  render: (value: unknown, column: string) => string = plainKeyText,
): string | undefined {
  const keys = change.relation.keyColumns;
  if (keys.length === 0) return undefined;
  const row = identityRow(change);
  if (row === undefined) return undefined;
  if (keys.length === 1) {
    const v = row[keys[0]];
    return v === undefined ? undefined : render(v, keys[0]);
  }
  let text = '';
  let seen = false;
  for (let i = 0; i < keys.length; i++) {
    const v = row[keys[i]];
    if (v !== undefined) seen = true;
    text += (i === 0 ? '' : ',') + render(v, keys[i]);
  }
  return seen ? text : undefined;
}
