import { randomUUID } from 'crypto';

/**
 * JSON whose numbers keep their exact digits (README, "The event"). A JavaScript number holds
 * about 17 significant digits, so `JSON.parse` turns `12345678901234567890` into
 * 12345678901234567000 and `1.50` into 1.5. `parseJsonLossless` keeps each such number token as a
 * `RawJson`, and `stringifyJson` writes it back verbatim.
 */

/** Counts RawJson#toJSON calls: `stringifyJson` takes its slow path only when one happened. */
let toJsonCalls = 0;

/**
 * JSON text written verbatim by `stringifyJson`: a number token such as `12345678901234567890`,
 * or a whole value. `text` must be valid JSON. Plain `JSON.stringify` still works, lossily,
 * through `toJSON`.
 */
export class RawJson {
  constructor(readonly text: string) {}

  /** The best-effort JavaScript value (`JSON.parse(text)`): what plain JSON.stringify writes. */
  toJSON(): unknown {
    toJsonCalls++;
    return JSON.parse(this.text);
  }

  toString(): string {
    return this.text;
  }
}

// ---------------------------------------------------------------------------------------------
// Serialising

/**
 * `JSON.stringify(value)`, except that every `RawJson` in it (the value itself, or nested in
 * arrays and objects) is written as its text. Byte-identical to JSON.stringify when there is no
 * RawJson: that is also its first step, and the only one unless a RawJson's toJSON ran, so the
 * common event costs one JSON.stringify (`node bench/ab/micro.js` times both).
 * (A RawJson returned by some other object's toJSON is spliced only if the value also holds a
 * RawJson directly: JSON.stringify does not call a toJSON result's own toJSON.)
 */
export function stringifyJson(value: unknown): string {
  const before = toJsonCalls;
  const text = JSON.stringify(value);
  return toJsonCalls === before ? text : splice(value);
}

/** Placeholders are `"<nonce><index>"`; the nonce is random, so no data can spell one by chance. */
let nonce = randomUUID();

/** JSON.stringify with each RawJson swapped for a placeholder string, then the placeholders for the texts. */
function splice(value: unknown): string {
  for (;;) {
    const texts: string[] = [];
    const mark = nonce;
    const text = JSON.stringify(value, function (this: Record<string, unknown>, key: string, current: unknown) {
      // `current` is after toJSON: a RawJson member arrives as its parsed value, so look at the holder.
      const raw = current instanceof RawJson ? current : this[key] instanceof RawJson ? (this[key] as RawJson) : undefined;
      if (raw === undefined) return current;
      texts.push(raw.text);
      return `${mark}${texts.length - 1}`;
    });
    let used = 0;
    const out = text.replace(new RegExp(`"${mark}(\\d+)"`, 'g'), (_, index: string) => {
      used++;
      return texts[Number(index)] ?? '';
    });
    if (used === texts.length) return out;
    nonce = randomUUID(); // a string in the data spelled a placeholder: start again with a new nonce
  }
}

// ---------------------------------------------------------------------------------------------
// Parsing

/** True when every number token in the JSON text prints back from a JS number as the same token. */
export function numbersRoundTrip(text: string): boolean {
  const n = text.length;
  for (let i = 0; i < n; ) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = stringEnd(text, i) + 1;
    } else if (c === MINUS || (c >= ZERO && c <= NINE)) {
      // Most numbers are short integers: decided here without cutting out the token.
      let end = c === MINUS ? i + 1 : i;
      const first = text.charCodeAt(end);
      while (end < n && isDigit(text.charCodeAt(end))) end++;
      const digits = end - (c === MINUS ? i + 1 : i);
      const shortInteger = digits <= 15 && (first !== ZERO || (digits === 1 && c !== MINUS));
      if (shortInteger && !isNumberChar(text.charCodeAt(end))) {
        i = end;
        continue;
      }
      end = numberEnd(text, i);
      if (!exactNumber(text.slice(i, end))) return false;
      i = end;
    } else {
      i++;
    }
  }
  return true;
}

/**
 * `JSON.parse(text)`, except that a number token whose JavaScript number would print differently
 * (`String(Number(token)) !== token`: more than ~17 digits, `1.50`, `1e400`, `-0`, `1E5`) becomes
 * a `RawJson` holding the token. Objects, arrays and strings are as JSON.parse makes them
 * (a repeated key keeps its first place and its last value). Throws a SyntaxError naming the
 * position. Iterative, so nesting depth is not bounded by the call stack.
 */
export function parseJsonLossless(text: string): unknown {
  return new Parser(text).parse();
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;

function isDigit(c: number): boolean {
  return c >= ZERO && c <= NINE;
}

/** Digits, `.`, `e`, `E`, `+`, `-`. */
function isNumberChar(c: number): boolean {
  return isDigit(c) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === MINUS;
}

/** Index of the quote closing the string that opens at `start` (text.length when there is none). */
function stringEnd(text: string, start: number): number {
  let end = text.indexOf('"', start + 1);
  while (end !== -1) {
    let backslashes = 0;
    while (text.charCodeAt(end - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return end;
    end = text.indexOf('"', end + 1);
  }
  return text.length;
}

/** End of the run of number characters from `start` (the grammar is checked by the parser, not here). */
function numberEnd(text: string, start: number): number {
  let i = start + 1;
  for (; i < text.length; i++) {
    if (!isNumberChar(text.charCodeAt(i))) break;
  }
  return i;
}

/** Up to 15 digits always print back as themselves; anything else is checked the long way. */
const SHORT_INTEGER = /^-?[1-9]\d{0,14}$/;

function exactNumber(token: string): boolean {
  return SHORT_INTEGER.test(token) || token === '0' || String(Number(token)) === token;
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

type Container = { array: unknown[] } | { object: Record<string, unknown>; key: string };

class Parser {
  private pos = 0;

  constructor(private readonly text: string) {}

  parse(): unknown {
    const stack: Container[] = [];
    let value: unknown;
    for (;;) {
      // A value starts here: a scalar, or the first member of a container.
      this.skipSpace();
      const c = this.text.charCodeAt(this.pos);
      if (c === 0x7b /* { */) {
        this.pos++;
        this.skipSpace();
        if (this.text.charCodeAt(this.pos) === 0x7d /* } */) {
          this.pos++;
          value = {};
        } else {
          stack.push({ object: {}, key: this.memberName() });
          continue;
        }
      } else if (c === 0x5b /* [ */) {
        this.pos++;
        this.skipSpace();
        if (this.text.charCodeAt(this.pos) === 0x5d /* ] */) {
          this.pos++;
          value = [];
        } else {
          stack.push({ array: [] });
          continue;
        }
      } else {
        value = this.scalar();
      }
      // The value is complete: store it, then close containers until one expects another member.
      for (;;) {
        const top = stack[stack.length - 1];
        if (top === undefined) {
          this.skipSpace();
          if (this.pos < this.text.length) this.fail();
          return value;
        }
        if ('array' in top) top.array.push(value);
        else setMember(top.object, top.key, value);
        this.skipSpace();
        const next = this.text.charCodeAt(this.pos);
        if (next === 0x2c /* , */) {
          this.pos++;
          if ('object' in top) top.key = this.memberName();
          break;
        }
        if (next !== ('array' in top ? 0x5d : 0x7d)) this.fail();
        this.pos++;
        stack.pop();
        value = 'array' in top ? top.array : top.object;
      }
    }
  }

  /** `"name" :` — the name of the next object member. */
  private memberName(): string {
    this.skipSpace();
    if (this.text.charCodeAt(this.pos) !== QUOTE) this.fail();
    const name = this.string();
    this.skipSpace();
    if (this.text.charCodeAt(this.pos) !== 0x3a /* : */) this.fail();
    this.pos++;
    return name;
  }

  private scalar(): unknown {
    const c = this.text.charCodeAt(this.pos);
    if (c === QUOTE) return this.string();
    if (c === MINUS || isDigit(c)) return this.number();
    for (const [word, value] of LITERALS) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return value;
      }
    }
    return this.fail();
  }

  private number(): number | RawJson {
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(this.text);
    if (!m) return this.fail();
    const token = m[0];
    this.pos += token.length;
    // JSON.parse reads `01` as an error: the token must not run on into more number characters.
    if (numberEnd(this.text, this.pos - 1) !== this.pos) this.fail();
    return exactNumber(token) ? Number(token) : new RawJson(token);
  }

  private string(): string {
    const start = this.pos;
    const end = stringEnd(this.text, start);
    if (end >= this.text.length) {
      this.pos = this.text.length;
      return this.fail();
    }
    let escaped = false;
    for (let i = start + 1; i < end; i++) {
      const c = this.text.charCodeAt(i);
      if (c < 0x20) {
        this.pos = i;
        return this.fail();
      }
      if (c === BACKSLASH) escaped = true;
    }
    this.pos = end + 1;
    if (!escaped) return this.text.slice(start + 1, end);
    // Escapes are rare in practice: JSON.parse decodes them (and rejects bad ones) exactly.
    try {
      return JSON.parse(this.text.slice(start, end + 1)) as string;
    } catch {
      this.pos = start;
      return this.fail('a bad escape in the string');
    }
  }

  private skipSpace(): void {
    for (;;) {
      const c = this.text.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
      this.pos++;
    }
  }

  private fail(what?: string): never {
    if (this.pos >= this.text.length) throw new SyntaxError('Unexpected end of JSON input');
    const found = what ?? `token ${JSON.stringify(this.text[this.pos])}`;
    throw new SyntaxError(`Unexpected ${found} in JSON at position ${this.pos}`);
  }
}

const LITERALS: ReadonlyArray<readonly [string, unknown]> = [
  ['true', true],
  ['false', false],
  ['null', null],
];

/** JSON.parse's CreateDataProperty: `__proto__` is an own member, never the prototype. */
function setMember(object: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
  else object[key] = value;
}
