import { parse as parseArrayLiteral } from 'postgres-array';
import { numbersRoundTrip, parseJsonLossless } from '../events/json-text';
import type { TypeRegistry } from './types-registry';

/**
 * Text-format column values → the JSON-natural values of the README ("The event"). The replication
 * session fixes the text forms these decoders read: DateStyle=ISO, TimeZone=UTC,
 * IntervalStyle=iso_8601, extra_float_digits=3 (see REPLICATION_SESSION_OPTIONS in stream.ts).
 * Every decoder is total: what it cannot read it returns as PostgreSQL printed it.
 */

export type Decoder = (text: string) => unknown;

/** Unknown and string-like types (text, uuid, numeric, money, interval, enums…) stay as printed. */
export const identity: Decoder = (text) => text;

const bool: Decoder = (text) => (text === 't' ? true : text === 'f' ? false : text);

/** int2, int4, oid, xid, cid: always within a double's exact range. */
const smallInt: Decoder = (text) => {
  const n = Number(text);
  return Number.isFinite(n) ? n : text;
};

/** int8 and xid8: a number only while it is exact, else the decimal string. */
const bigInt: Decoder = (text) => {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : text;
};

/** float4/float8: NaN and ±Infinity have no JSON number, so they stay strings. */
const float: Decoder = (text) => {
  const n = Number(text);
  return Number.isFinite(n) ? n : text;
};

/**
 * json/jsonb: parsed, numbers with their exact digits (README, "The event"). A value whose
 * numbers all survive a JS number (the common case) is plain JSON.parse output; otherwise each
 * number that would not — `12345678901234567890`, `1.50`, `1e400` — is a RawJson holding its text,
 * which the sinks write back verbatim. Member order is JavaScript's (integer-like keys first), and
 * a `json` value's repeated key keeps its last value, as JSON.parse does.
 */
const json: Decoder = (text) => {
  try {
    return numbersRoundTrip(text) ? JSON.parse(text) : parseJsonLossless(text);
  } catch {
    return text;
  }
};

const HEX_DIGITS = /^[0-9a-fA-F]*$/;

/** bytea → base64. Hex output (`\x0102`) is the default; the old escape format is read too. */
const bytea: Decoder = (text) => {
  if (text.startsWith('\\x')) {
    const hex = text.slice(2);
    return hex.length % 2 === 0 && HEX_DIGITS.test(hex) ? Buffer.from(hex, 'hex').toString('base64') : text;
  }
  const bytes = unescapeBytea(text);
  return bytes ? bytes.toString('base64') : text;
};

/** bytea_output=escape: `\\` is a backslash, `\ooo` an octal byte, anything else literal. */
function unescapeBytea(text: string): Buffer | undefined {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) return undefined;
    if (c !== 0x5c) {
      out.push(c);
    } else if (text[i + 1] === '\\') {
      out.push(0x5c);
      i++;
    } else if (/^[0-3][0-7]{2}$/.test(text.slice(i + 1, i + 4))) {
      out.push(parseInt(text.slice(i + 1, i + 4), 8));
      i += 3;
    } else {
      return undefined;
    }
  }
  return Buffer.from(out);
}

// `2020-12-01 09:43:00.123456+00` (ISO DateStyle). BC dates and ±infinity do not match: kept as printed.
const TIMESTAMPTZ = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?$/;
const TIMESTAMP = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)$/;
const TIMETZ = /^(\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d)(?::(\d\d))?(?::(\d\d))?$/;

/** timestamptz → RFC 3339, microseconds kept; UTC as `Z`. */
const timestamptz: Decoder = (text) => {
  const m = TIMESTAMPTZ.exec(text);
  if (!m) return text;
  const [, date, time, sign, hh, mm = '00', ss] = m;
  if (ss && ss !== '00') return text; // a seconds offset (historic local mean time) has no RFC 3339 form
  const zone = hh === '00' && mm === '00' ? 'Z' : `${sign}${hh}:${mm}`;
  return `${date}T${time}${zone}`;
};

/** timestamp without time zone → ISO 8601 local date-time, no zone. */
const timestamp: Decoder = (text) => {
  const m = TIMESTAMP.exec(text);
  return m ? `${m[1]}T${m[2]}` : text;
};

/** timetz → `HH:MM:SS[.frac]±HH:MM` (PostgreSQL prints the offset as `+02`). */
const timetz: Decoder = (text) => {
  const m = TIMETZ.exec(text);
  if (!m) return text;
  const [, time, hours, mm = '00', ss] = m;
  return `${time}${hours}:${mm}${ss && ss !== '00' ? `:${ss}` : ''}`;
};

/** Scalar decoders by built-in type OID (pg_type.dat); OIDs absent here decode as strings. */
export const SCALAR_DECODERS: ReadonlyMap<number, Decoder> = new Map<number, Decoder>([
  [16, bool],
  [17, bytea],
  [20, bigInt], // int8
  [21, smallInt], // int2
  [23, smallInt], // int4
  [26, smallInt], // oid
  [28, smallInt], // xid
  [29, smallInt], // cid
  [5069, bigInt], // xid8
  [700, float], // float4
  [701, float], // float8
  [114, json],
  [3802, json], // jsonb
  [1114, timestamp],
  [1184, timestamptz],
  [1266, timetz],
  // date (1082), time (1083), interval (1186), numeric (1700) are already in their final form.
]);

/** An array literal (`{…}`, `{{…},{…}}`, `[2:3]={…}`) → nested JS arrays, elements decoded. */
export function arrayDecoder(element: Decoder): Decoder {
  // postgres-array reads anything else as an empty array: keep such text as printed instead.
  return (text) => (text[0] === '{' || text[0] === '[' ? parseArrayLiteral(text, element) : text);
}

/** Decode one text-format value by its type OID. Never throws: on failure, the text as printed. */
export function decodeValue(text: string, typeOid: number, registry: TypeRegistry): unknown {
  try {
    return registry.decoder(typeOid)(text);
  } catch {
    return text;
  }
}
