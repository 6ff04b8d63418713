/**
 * A backfill as `backfill list --json` prints it and /api/backfills answers it: one shape for
 * both (README "Backfill"), times as ISO 8601, the table as `schema.table`.
 */
import { displayName } from '../../config/tables';
import type { BackfillRow } from './store';

export interface BackfillJson {
  id: string;
  slot: string;
  table: string;
  where: string | null;
  chunkSize: number;
  rate: number | null;
  origin: BackfillRow['origin'];
  state: BackfillRow['state'];
  rowsDone: number;
  rowsEmitted: number;
  rowsEstimated: number | null;
  lastKey: string[] | null;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  updatedAt: string;
  finishedAt: string | null;
}

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

export function backfillJson(row: BackfillRow): BackfillJson {
  return {
    id: row.id,
    slot: row.slot,
    table: tableOf(row),
    where: row.where,
    chunkSize: row.chunkSize,
    rate: row.rate,
    origin: row.origin,
    state: row.state,
    rowsDone: row.rowsDone,
    rowsEmitted: row.rowsEmitted,
    rowsEstimated: row.rowsEstimated,
    lastKey: row.lastKey,
    error: row.error,
    createdAt: iso(row.createdAt) as string,
    startedAt: iso(row.startedAt),
    updatedAt: iso(row.updatedAt) as string,
    finishedAt: iso(row.finishedAt),
  };
}

/** `schema.table`, quoted where PostgreSQL would need it. */
export function tableOf(row: Pick<BackfillRow, 'schema' | 'table'>): string {
  return displayName({ schema: row.schema, name: row.table });
}
