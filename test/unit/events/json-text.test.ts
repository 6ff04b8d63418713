import { expect } from 'chai';
import { numbersRoundTrip, parseJsonLossless, RawJson, stringifyJson } from '../../../src/events/json-text';

const BIG = '12345678901234567890';
const LONG_DECIMAL = '0.1000000000000000055511151231257827';

describe('events/json-text (numbers with their exact digits)', () => {
  describe('parseJsonLossless', () => {
    it('keeps a number that a JS number would print differently as RawJson with the token text', () => {
      for (const token of [BIG, LONG_DECIMAL, '1e400', '-0', '-0.0', '1.50', '1E5', '1e5', '1.0', '9007199254740993', '-12345678901234567890.5e-3']) {
        const parsed = parseJsonLossless(`[${token}]`) as unknown[];
        expect(parsed[0], token).to.be.instanceOf(RawJson);
        expect((parsed[0] as RawJson).text).to.equal(token);
      }
    });

    it('keeps numbers that print back as themselves as plain numbers', () => {
      for (const token of ['0', '1', '-1', '0.1', '1.5', '123456789012345', '9007199254740991', '0.30000000000000004', '1e+21', '5e-324', '-1.5e-300']) {
        expect(parseJsonLossless(token), token).to.equal(JSON.parse(token));
      }
    });

    it('equals JSON.parse on everything else: strings, escapes, unicode, nesting, whitespace, literals', () => {
      const texts = [
        '{"a": [1, "x", null, true, false], "b": {"c": {}}, "d": []}',
        ' \t\n\r{ "k" : "v" } \n',
        '"plain"',
        '"esc \\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0000 \\u00e9 \\ud83d\\ude80 \\ud800"',
        '"héllo 🚀 \u2028"',
        '[[[[[]]]], {"x": [{"y": [0]}]}]',
        '{"b": 1, "2": 2, "a": 3, "1": 4}',
        '{"a": 1, "b": 2, "a": 3}',
        '{"__proto__": {"polluted": true}}',
        'null',
        '-1.25e-7',
        '{"": ""}',
      ];
      for (const text of texts) expect(parseJsonLossless(text), text).to.deep.equal(JSON.parse(text));
      const dup = parseJsonLossless('{"a": 1, "b": 2, "a": 3}') as object;
      expect(Object.keys(dup)).to.deep.equal(['a', 'b']);
      const proto = parseJsonLossless('{"__proto__": {"polluted": true}}') as Record<string, unknown>;
      expect(Object.getPrototypeOf(proto)).to.equal(Object.prototype);
      expect(Object.keys(proto)).to.deep.equal(['__proto__']);
      expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    });

    it('nesting deeper than the call stack allows', () => {
      const depth = 100_000;
      const text = `${'['.repeat(depth)}${BIG}${']'.repeat(depth)}`;
      let value = parseJsonLossless(text);
      for (let i = 0; i < depth; i++) value = (value as unknown[])[0];
      expect(value).to.deep.equal(new RawJson(BIG));
    });

    it('rejects what JSON.parse rejects, with the position', () => {
      const bad = ['', ' ', '{', '[1,]', '{"a":1,}', '{"a" 1}', '{a:1}', '01', '1.', '.5', '-', '+1', '1e', '1.5.3', '--1',
        '"unterminated', '"tab\there"', '"bad \\x escape"', '[1 2]', 'tru', 'nul', 'true false', '{"a":1}}', '[1]]', "'x'", 'NaN', 'Infinity', '\u00a01'];
      for (const text of bad) {
        expect(() => JSON.parse(text), `JSON.parse ${text}`).to.throw(SyntaxError);
        expect(() => parseJsonLossless(text), text).to.throw(SyntaxError);
      }
      expect(() => parseJsonLossless('[1, 2 x]')).to.throw(SyntaxError, 'Unexpected token "x" in JSON at position 6');
      expect(() => parseJsonLossless('{"a": ')).to.throw(SyntaxError, 'Unexpected end of JSON input');
    });
  });

  describe('numbersRoundTrip', () => {
    it('finds a number token that would change, and ignores digits inside strings', () => {
      expect(numbersRoundTrip('{"a": 1, "b": [2.5, -3], "c": "12345678901234567890"}')).to.equal(true);
      expect(numbersRoundTrip('{"a\\"": "\\\\", "n": 1e400}')).to.equal(false);
      expect(numbersRoundTrip('"a \\" 1.50 \\\\"')).to.equal(true);
      expect(numbersRoundTrip(`{"big": ${BIG}}`)).to.equal(false);
      expect(numbersRoundTrip(`[${LONG_DECIMAL}]`)).to.equal(false);
      expect(numbersRoundTrip('{"x": -0}')).to.equal(false);
      expect(numbersRoundTrip('{"x": 1.0}')).to.equal(false);
      expect(numbersRoundTrip('[0, -1, 10, -10, 123456789012345, -123456789012345, 0.5, -0.5, 1e+21]')).to.equal(true);
      for (const token of ['1234567890123456789', '-0', '1.50', '1E5', '1e400']) expect(numbersRoundTrip(`[0,${token}]`), token).to.equal(false);
    });
  });

  describe('stringifyJson', () => {
    it('is byte-identical to JSON.stringify when there is no RawJson', () => {
      const date = new Date(0);
      const values: unknown[] = [
        { a: 1, b: 'x', c: [1, null, undefined, () => 1], d: undefined, e: { f: date }, g: -0, h: Infinity, i: NaN },
        [undefined, Symbol('s')],
        'str "q" \u2028 \ud800',
        42,
        null,
        { toJSON: (key: string) => ({ key }) },
        new Map([[1, 2]]),
        Object.assign(Object.create({ inherited: 1 }) as object, { own: 2 }),
        { 2: 'b', 1: 'a', z: 'z' },
        [new Number(3), new String('s'), new Boolean(false)],
      ];
      for (const value of values) expect(stringifyJson(value)).to.equal(JSON.stringify(value));
      expect(stringifyJson(undefined)).to.equal(undefined);
    });

    it('splices RawJson text verbatim: as the whole value, nested, in arrays and objects', () => {
      expect(stringifyJson(new RawJson(BIG))).to.equal(BIG);
      expect(stringifyJson({ big: new RawJson(BIG) })).to.equal(`{"big":${BIG}}`);
      expect(stringifyJson([new RawJson('1e400'), 1, new RawJson('-0')])).to.equal('[1e400,1,-0]');
      expect(stringifyJson({ data: { row: { j: { n: [new RawJson(LONG_DECIMAL)] }, s: 'x' }, u: undefined } }))
        .to.equal(`{"data":{"row":{"j":{"n":[${LONG_DECIMAL}]},"s":"x"}}}`);
      expect(stringifyJson({ whole: new RawJson('{"a": 1.50}') })).to.equal('{"whole":{"a": 1.50}}');
      // Plain JSON.stringify still works, lossily.
      expect(JSON.stringify({ big: new RawJson(BIG) })).to.equal('{"big":12345678901234567000}');
      expect(JSON.stringify([new RawJson('1e400')])).to.equal('[null]');
    });

    it('a string that spells a placeholder is not mistaken for one', () => {
      // The placeholder format is internal; whatever the nonce, strings survive unchanged.
      const value = { a: new RawJson(BIG), s: `"${'0'.repeat(36)}0"` };
      expect(stringifyJson(value)).to.equal(`{"a":${BIG},"s":${JSON.stringify(value.s)}}`);
    });

    it('round trip parse → stringify is byte-identical for canonical (compact) JSON', () => {
      const texts = [
        `{"big":${BIG}}`,
        `{"d":${LONG_DECIMAL}}`,
        '[1e400,-1e400,-0,0,-0.0,1.50,1E5]',
        `{"a":{"b":[${BIG},{"c":${LONG_DECIMAL},"s":"\\u0000\\n\\"é"}]},"t":true,"f":false,"z":null,"n":-12.5}`,
        `[[[[${BIG}]]],{}]`,
        '"just a string"',
        BIG,
      ];
      for (const text of texts) expect(stringifyJson(parseJsonLossless(text)), text).to.equal(text);
    });
  });
});
