import { createHash } from 'node:crypto';
import type { Row } from '../change';

/**
 * How a backfilled row and a live change are found to be the same row: the canonical text of its
 * decoded key values. Both sides went through the same decoder (src/pg/values.ts) from the same
 * text PostgreSQL printed, so equal keys give equal texts.
 */
export function keyText(row: Row, keyColumns: readonly string[]): string {
  return JSON.stringify(keyColumns.map((c) => row[c] ?? null), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/**
 * A backfilled row's event id: the same for a (backfill, row) pair on every redelivery and every
 * re-read of its chunk (after kill -9 or a takeover), different for another backfill of the row.
 */
export function backfillEventId(backfillId: string, key: string): string {
  return `backfill-${backfillId}-${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;
}
