import type { RelationInfo, Row } from '../change';
import { parseJsonLossless, RawJson } from '../../events/json-text';
import type { TypeRegistry } from '../../pg/types-registry';
import { decodeValue } from '../../pg/values';

/**
 * A journal row (row_to_json of OLD or NEW, written with the replication session's DateStyle,
 * TimeZone, IntervalStyle and extra_float_digits) → the same Row logical mode decodes from
 * pgoutput's text for the same row (docs/journal.md, "Values"). row_to_json writes most values as
 * their type's text output, which is what pgoutput sends; where it does not, the difference is
 * undone here, so one decoder (src/pg/values.ts) makes both modes' values:
 * - numbers (int2/4/8, float4/8, numeric) are bare JSON numbers whose digits are the text output
 *   (NaN and Infinity are strings): the token, read losslessly, is that text;
 * - bool is true/false: t/f;
 * - timestamp and timestamptz use XSD form (`T`, and an offset `+00:00`): the ISO form back;
 * - json and jsonb are embedded as JSON: taken as parsed, which is what logical mode's decoder
 *   makes of their text (a json column keeps its member order: the journal column is json);
 * - arrays are JSON arrays: each element converted as its element type.
 * Composite columns (JSON objects here, record text in logical mode) keep the JSON object; types
 * with their own cast to json likewise. docs/journal.md lists these differences.
 */

const BOOL = 16;
const TIMESTAMP = 1114;
const TIMESTAMPTZ = 1184;
const JSON_TYPES = new Set([114, 3802]);

/** `2020-12-01T09:43:00.5+00:00` → `2020-12-01 09:43:00.5+00`, as DateStyle ISO prints it. */
function isoTimestamp(text: string, withZone: boolean): string {
  const t = text.indexOf('T');
  let out = t === 10 || (t > 10 && /^\d{4,}-\d\d-\d\d$/.test(text.slice(0, t))) ? `${text.slice(0, t)} ${text.slice(t + 1)}` : text;
  // ISO prints the offset's minutes (and seconds) only when they are not zero; XSD always prints the minutes.
  if (withZone) out = out.replace(/([+-]\d\d):00( BC)?$/, '$1$2');
  return out;
}

/** One value as it came in the journal's JSON → what decodeValue makes of the same value's text. */
export function fromJournalValue(value: unknown, typeOid: number, registry: TypeRegistry): unknown {
  if (value === null || value === undefined) return null;
  const base = registry.baseOf(typeOid);
  if (JSON_TYPES.has(base)) return value;
  const element = registry.elementOf(base);
  // A multi-dimensional array nests JSON arrays: an inner array is still of the array type.
  if (element !== undefined && Array.isArray(value)) return value.map((v) => fromJournalValue(v, Array.isArray(v) ? typeOid : element, registry));
  let text: string;
  if (typeof value === 'string') {
    text = base === TIMESTAMP || base === TIMESTAMPTZ ? isoTimestamp(value, base === TIMESTAMPTZ) : value;
  } else if (typeof value === 'number') {
    text = String(value);
  } else if (value instanceof RawJson) {
    text = value.text;
  } else if (typeof value === 'boolean') {
    text = base === BOOL ? (value ? 't' : 'f') : String(value);
  } else {
    // A composite (an object), or a type with its own cast to json: kept as the journal has it.
    return value;
  }
  return decodeValue(text, typeOid, registry);
}

/** A journal row's JSON text, numbers exact (parsed once; `journalRow` reads it). */
export function parseJournalRow(json: string): Record<string, unknown> {
  return parseJsonLossless(json) as Record<string, unknown>;
}

/**
 * A parsed journal row → the Row of `relation`'s columns, in column order. A column the row lacks
 * (added after the row was written) is left out, as logical mode's Relation of that time would;
 * a member the relation lacks (a generated column) is left out, as logical mode leaves it.
 */
export function journalRow(relation: RelationInfo, parsed: Record<string, unknown>, registry: TypeRegistry): Row {
  const row: Row = {};
  for (const column of relation.columns) {
    if (!Object.prototype.hasOwnProperty.call(parsed, column.name)) continue;
    row[column.name] = fromJournalValue(parsed[column.name], column.typeOid, registry);
  }
  return row;
}
