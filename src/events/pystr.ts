/**
 * Python's `str()` of the value Django would hold for a column, for the django compatibility
 * format: django-signals-cloudevents renders every field as `str(getattr(instance, name))`.
 * Column values arrive JSON-natural (README, "The event"); the column's type OID tells which
 * Python type Django would have built from it (psycopg2's adaptation).
 */

import { RawJson } from './json-text';

// PostgreSQL type OIDs (pg_type.dat).
const BYTEA = 17;
const FLOAT4 = 700;
const FLOAT8 = 701;
const NUMERIC = 1700;
const TIME = 1083;
const TIMESTAMP = 1114;
const TIMESTAMPTZ = 1184;
const TIMETZ = 1266;
const UUID = 2950;

/** Array type OID → element type OID, for the element types whose repr differs from a str's. */
const ARRAY_ELEMENT: ReadonlyMap<number, number> = new Map([
  [1021, FLOAT4],
  [1022, FLOAT8],
  [1231, NUMERIC],
  [2951, UUID],
]);

/** Python float repr: shortest round-trip digits, exponent form below 1e-4 or from 1e16. */
export function pyFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mantissa, expText] = x.toExponential().split('e');
  const exp = Number(expText);
  const negative = mantissa.startsWith('-');
  const digits = mantissa.replace('-', '').replace('.', '');
  let text: string;
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    text = `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  } else if (exp < 0) {
    text = `0.${'0'.repeat(-exp - 1)}${digits}`;
  } else if (digits.length <= exp + 1) {
    text = `${digits}${'0'.repeat(exp + 1 - digits.length)}.0`;
  } else {
    text = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  }
  return negative ? `-${text}` : text;
}

function pyInt(x: number): string {
  // Python ints never switch to exponent notation.
  return Math.abs(x) < 1e21 ? String(x) : BigInt(x).toString();
}

function pyNumber(x: number, floatColumn: boolean): string {
  return floatColumn || !Number.isInteger(x) ? pyFloat(x) : pyInt(x);
}

/** PostgreSQL's text for a float special value, as a Python float prints it. */
const FLOAT_SPECIAL: ReadonlyMap<string, string> = new Map([
  ['NaN', 'nan'],
  ['Infinity', 'inf'],
  ['-Infinity', '-inf'],
]);

/** Python's str.isprintable() is false for these categories (space excepted). */
const NOT_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

function hex(code: number, width: number): string {
  return code.toString(16).padStart(width, '0');
}

/** Python repr() of a str: single quotes unless the text holds ' and no ". */
export function pyStrRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === quote || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code === 0x20 || (code > 0x20 && code < 0x7f)) out += ch;
    else if (!NOT_PRINTABLE.test(ch)) out += ch;
    else if (code <= 0xff) out += '\\x' + hex(code, 2);
    else if (code <= 0xffff) out += '\\u' + hex(code, 4);
    else out += '\\U' + hex(code, 8);
  }
  return out + quote;
}

/** Python repr() of bytes (BinaryField), from the base64 the decoder gives for bytea. */
export function pyBytesRepr(base64: string): string {
  const bytes = Buffer.from(base64, 'base64');
  const quote = bytes.includes(0x27) && !bytes.includes(0x22) ? 0x22 : 0x27;
  let out = 'b' + String.fromCharCode(quote);
  for (const b of bytes) {
    if (b === quote || b === 0x5c) out += '\\' + String.fromCharCode(b);
    else if (b === 0x0a) out += '\\n';
    else if (b === 0x0d) out += '\\r';
    else if (b === 0x09) out += '\\t';
    else if (b < 0x20 || b >= 0x7f) out += '\\x' + hex(b, 2);
    else out += String.fromCharCode(b);
  }
  return out + String.fromCharCode(quote);
}

/** Microseconds as Python prints them: `.ffffff`, or nothing when zero. */
function pyFraction(digits: string | undefined): string {
  if (digits === undefined) return '';
  const micros = digits.slice(0, 6).padEnd(6, '0');
  return micros === '000000' ? '' : `.${micros}`;
}

/** `Z`, `+05`, `+0530`, `+05:30` → seconds east of UTC. */
function offsetSeconds(tz: string): number {
  if (tz === 'Z' || tz === 'z') return 0;
  const m = /^([+-])(\d{2}):?(\d{2})?:?(\d{2})?$/.exec(tz)!;
  const s = Number(m[2]) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0);
  return m[1] === '-' ? -s : s;
}

function pyOffset(seconds: number): string {
  const a = Math.abs(seconds);
  const hhmm = `${String(Math.floor(a / 3600)).padStart(2, '0')}:${String(Math.floor(a / 60) % 60).padStart(2, '0')}`;
  return `${seconds < 0 ? '-' : '+'}${hhmm}${a % 60 ? ':' + String(a % 60).padStart(2, '0') : ''}`;
}

const TIMESTAMP_TEXT =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}(?::?\d{2}){0,2})?$/;

/**
 * str(datetime): `2020-12-01 09:43:00+00:00`. Django (USE_TZ) reads timestamptz in UTC, so an
 * offset is moved to UTC; a `timestamp` column gives a naive datetime (no offset).
 */
function pyDatetime(text: string, aware: boolean): string {
  const m = TIMESTAMP_TEXT.exec(text);
  if (!m) return text; // infinity, BC dates…: Python has no equivalent, keep PostgreSQL's text
  let [, y, mo, d, h, mi, s] = m;
  const fraction = pyFraction(m[7]);
  if (!aware) return `${y}-${mo}-${d} ${h}:${mi}:${s}${fraction}`;
  const offset = m[8] === undefined ? 0 : offsetSeconds(m[8]);
  if (offset !== 0) {
    const utc = new Date(0);
    // setUTCFullYear, not Date.UTC: the latter maps years 0-99 to 1900-1999.
    utc.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
    utc.setUTCHours(Number(h), Number(mi), Number(s) - offset, 0);
    const iso = utc.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
    [y, mo, d] = [iso.slice(0, 4), iso.slice(5, 7), iso.slice(8, 10)];
    [h, mi, s] = [iso.slice(11, 13), iso.slice(14, 16), iso.slice(17, 19)];
  }
  return `${y}-${mo}-${d} ${h}:${mi}:${s}${fraction}+00:00`;
}

const TIME_TEXT = /^(\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}(?::?\d{2}){0,2})?$/;

/** str(time): `09:43:00.500000`, with `+HH:MM` for timetz. */
function pyTime(text: string): string {
  const m = TIME_TEXT.exec(text);
  if (!m) return text;
  return `${m[1]}${pyFraction(m[2])}${m[3] === undefined ? '' : pyOffset(offsetSeconds(m[3]))}`;
}

/**
 * repr() of a value inside a list or dict (ArrayField elements, JSONField contents). A JSON number
 * kept exact (RawJson) prints as its digits: json.loads gives a Python int exactly that; for a
 * decimal or exponent token its float repr would round, and the digits are what the database holds.
 */
export function pyRepr(value: unknown, elementOid = 0): string {
  if (value === null || value === undefined) return 'None';
  if (value instanceof RawJson) return value.text;
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number') return pyNumber(value, elementOid === FLOAT4 || elementOid === FLOAT8);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') {
    if (elementOid === NUMERIC) return `Decimal(${pyStrRepr(value)})`;
    if (elementOid === UUID) return `UUID(${pyStrRepr(value)})`;
    if ((elementOid === FLOAT4 || elementOid === FLOAT8) && FLOAT_SPECIAL.has(value)) return FLOAT_SPECIAL.get(value)!;
    return pyStrRepr(value);
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ', ') + pyRepr(value[i], elementOid);
    return out + ']';
  }
  if (typeof value === 'object') {
    let out = '{';
    let first = true;
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      out += (first ? '' : ', ') + pyStrRepr(k) + ': ' + pyRepr(v);
      first = false;
    }
    return out + '}';
  }
  return pyStrRepr(String(value));
}

/**
 * str() of a column value. `typeOid` 0 (unknown) renders by the JSON type alone.
 * Where Python's str() is not reproducible here, the closest stable text is used: bytea gives
 * bytes' repr (psycopg2's memoryview would print a memory address), temporal array elements
 * print as quoted ISO strings (not `datetime.datetime(...)`), intervals keep PostgreSQL's text.
 */
export function pyStr(value: unknown, typeOid = 0): string {
  if (typeof value === 'string') {
    switch (typeOid) {
      case TIMESTAMPTZ:
        return pyDatetime(value, true);
      case TIMESTAMP:
        return pyDatetime(value, false);
      case TIME:
      case TIMETZ:
        return pyTime(value);
      case BYTEA:
        return pyBytesRepr(value);
      case FLOAT4:
      case FLOAT8:
        return FLOAT_SPECIAL.get(value) ?? value;
      default:
        return value;
    }
  }
  if (Array.isArray(value)) return pyRepr(value, ARRAY_ELEMENT.get(typeOid) ?? 0);
  if (typeof value === 'number') return pyNumber(value, typeOid === FLOAT4 || typeOid === FLOAT8);
  return pyRepr(value);
}
