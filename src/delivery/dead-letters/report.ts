import { RawJson, stringifyJson } from '../../events/json-text';
import type { DeadLetterRow } from './store';

/** `dead-letters list` as a table: one line per row, the error cut to fit a terminal. */
const COLUMNS: { title: string; width: number; value(row: DeadLetterRow): string }[] = [
  { title: 'ID', width: 6, value: (r) => r.id },
  { title: 'CREATED', width: 24, value: (r) => r.createdAt.toISOString() },
  { title: 'EVENT ID', width: 25, value: (r) => r.eventId },
  { title: 'DESTINATION', width: 12, value: (r) => r.destination },
  // An undecodable change has no event, hence no subject: say what it is instead.
  { title: 'SUBJECT', width: 32, value: (r) => (r.undecodable ? UNDECODABLE : r.subject ?? '') },
  { title: 'STATUS', width: 6, value: (r) => (r.status === null ? '-' : String(r.status)) },
  { title: 'ATTEMPTS', width: 8, value: (r) => String(r.attempts) },
  { title: 'ERROR', width: 0, value: (r) => r.error },
];

const ERROR_CHARS = 72;

/** How `list` shows a change whose event could not be built (it cannot be replayed). */
export const UNDECODABLE = '(undecodable)';

export function tableHeader(): string {
  return line(COLUMNS.map((c) => c.title));
}

export function tableLine(row: DeadLetterRow): string {
  return line(COLUMNS.map((c) => oneLine(c.value(row))));
}

function line(cells: string[]): string {
  return cells
    .map((cell, i) => {
      const { width } = COLUMNS[i];
      if (width === 0) return cut(cell, ERROR_CHARS);
      return cut(cell, Math.max(width, 32)).padEnd(width);
    })
    .join('  ')
    .trimEnd();
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * A row for `--json`, as one line of JSON: every column, dates as ISO 8601, the event as its
 * stored JSON text spliced in unchanged (byte for byte what was sent), or null for an undecodable
 * change, whose raw row is `rawChange`.
 */
export function jsonRowText(row: DeadLetterRow): string {
  const fields = {
    id: row.id,
    eventId: row.eventId,
    source: row.source,
    type: row.type,
    subject: row.subject,
    partitionKey: row.partitionKey,
    sequence: row.sequence,
    status: row.status,
    attempts: row.attempts,
    error: row.error,
    firstAttemptAt: row.firstAttemptAt.toISOString(),
    lastAttemptAt: row.lastAttemptAt.toISOString(),
    createdAt: row.createdAt.toISOString(),
    commitLsn: row.commitLsn,
    destination: row.destination,
    supersededBySequence: row.supersededBySequence,
    undecodable: row.undecodable,
    rawChange: row.rawChange ?? null,
    event: storedJson(row.event),
  };
  return stringifyJson(fields);
}

/** The stored text, verbatim when it is JSON (it always is when we stored it), else as a JSON string. */
function storedJson(text: string | null | undefined): RawJson | string | null {
  if (text === null || text === undefined) return null;
  try {
    JSON.parse(text);
    return new RawJson(text);
  } catch {
    return text;
  }
}
