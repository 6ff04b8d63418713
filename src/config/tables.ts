/**
 * Table names as users write them (`polls_question`, `public.polls_question`,
 * `"My Schema"."Weird.Name"`), resolved the way PostgreSQL resolves them: unquoted identifiers fold
 * to lower case, quoted ones keep their case and may hold any character (`""` is a quote).
 */
import { ErrorCodes, PgceError } from '../errors';
import type { TableConfig } from './types';

export interface QualifiedName {
  schema: string;
  name: string;
}

/** One `tables` entry before defaults: from the file, or one item of PG_CLOUDEVENTS_TABLES. */
export interface TableEntry {
  table: string;
  app?: string;
  model?: string;
  backfill?: 'onAdd';
}

export const DEFAULT_SCHEMA = 'public';

/** NAMEDATALEN - 1: PostgreSQL silently truncates longer identifiers, so we refuse them instead. */
const MAX_IDENTIFIER_BYTES = 63;

// PostgreSQL 15 docs, 4.1.1 "Identifiers and Key Words": a letter or underscore, then letters,
// digits, underscores or dollar signs. Letters include non-ASCII ones.
const UNQUOTED_START = /[A-Za-z_\u0080-\uFFFF]/;
const UNQUOTED_PART = /[A-Za-z0-9_$\u0080-\uFFFF]/;

function invalid(text: string, reason: string): never {
  throw new PgceError(ErrorCodes.CONFIG_INVALID, `${JSON.stringify(text)}: ${reason}`);
}

/** Reads one identifier starting at `start`; returns it and the index after it. */
function readIdentifier(text: string, start: number): [string, number] {
  if (text[start] === '"') {
    let value = '';
    let i = start + 1;
    for (;;) {
      if (i >= text.length) invalid(text, `unterminated quoted identifier starting at position ${start + 1}`);
      if (text[i] === '"') {
        if (text[i + 1] !== '"') break;
        value += '"';
        i += 2;
      } else {
        value += text[i++];
      }
    }
    if (value === '') invalid(text, 'zero-length quoted identifier ""');
    return [value, i + 1];
  }
  if (start >= text.length || !UNQUOTED_START.test(text[start])) {
    const what = start >= text.length ? 'end of text' : JSON.stringify(text[start]);
    invalid(text, `expected a name at position ${start + 1}, found ${what} (double-quote names with other characters)`);
  }
  let i = start + 1;
  while (i < text.length && UNQUOTED_PART.test(text[i])) i++;
  // Only ASCII letters fold, as in PostgreSQL's downcase_identifier for multi-byte encodings.
  return [text.slice(start, i).replace(/[A-Z]+/g, (s) => s.toLowerCase()), i];
}

/** `schema.table` or `table` (schema `public`), each part plain or double-quoted. */
export function parseTableName(text: string): QualifiedName {
  const trimmed = text.trim();
  if (trimmed === '') invalid(text, 'empty table name');
  const parts: string[] = [];
  let i = 0;
  for (;;) {
    const [part, next] = readIdentifier(trimmed, i);
    parts.push(part);
    if (next === trimmed.length) break;
    if (trimmed[next] !== '.') {
      invalid(trimmed, `unexpected ${JSON.stringify(trimmed[next])} at position ${next + 1} (double-quote names with other characters)`);
    }
    i = next + 1;
  }
  if (parts.length > 2) invalid(trimmed, 'expected table or schema.table (a database name is not allowed)');
  for (const part of parts) {
    if (Buffer.byteLength(part, 'utf8') > MAX_IDENTIFIER_BYTES) {
      invalid(trimmed, `identifier ${JSON.stringify(part)} is longer than ${MAX_IDENTIFIER_BYTES} bytes`);
    }
  }
  return parts.length === 1 ? { schema: DEFAULT_SCHEMA, name: parts[0] } : { schema: parts[0], name: parts[1] };
}

/** Splits PG_CLOUDEVENTS_TABLES on commas outside double quotes; blank items are dropped. */
export function splitTableList(raw: string): string[] {
  const items: string[] = [];
  let current = '';
  let quoted = false;
  for (const ch of raw) {
    if (ch === '"') quoted = !quoted;
    if (ch === ',' && !quoted) {
      items.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  items.push(current);
  return items.map((item) => item.trim()).filter((item) => item !== '');
}

/**
 * Entries → TableConfig with `app` = schema and `model` = table name by default. Bad names and
 * duplicates become problems labelled by `labelOf(index)`; good entries are still returned.
 * Undefined entries (already reported elsewhere) are skipped but keep their index.
 */
export function resolveTables(
  entries: ReadonlyArray<TableEntry | undefined>,
  labelOf: (index: number) => string,
  problems: string[],
): TableConfig[] {
  const tables: TableConfig[] = [];
  const seen = new Map<string, number>();
  entries.forEach((entry, index) => {
    if (entry === undefined) return;
    let qualified: QualifiedName;
    try {
      qualified = parseTableName(entry.table);
    } catch (err) {
      problems.push(`${labelOf(index)}: ${(err as Error).message}`);
      return;
    }
    const key = tableKey(qualified);
    const first = seen.get(key);
    if (first !== undefined) {
      problems.push(`${labelOf(index)}: ${displayName(qualified)} is listed twice (first as ${labelOf(first)})`);
      return;
    }
    seen.set(key, index);
    tables.push({
      table: entry.table.trim(),
      schema: qualified.schema,
      name: qualified.name,
      app: entry.app ?? qualified.schema,
      model: entry.model ?? qualified.name,
      ...(entry.backfill && { backfill: entry.backfill }),
    });
  });
  return tables;
}

/** Identity of a table for duplicate detection and matching. */
export function tableKey(name: QualifiedName): string {
  return JSON.stringify([name.schema, name.name]);
}

/** `schema.name`, quoting parts that would not survive unquoted. */
export function displayName(name: QualifiedName): string {
  return `${quoteIfNeeded(name.schema)}.${quoteIfNeeded(name.name)}`;
}

function quoteIfNeeded(part: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(part) ? part : `"${part.replace(/"/g, '""')}"`;
}
