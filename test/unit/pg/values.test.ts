import { expect } from 'chai';
import { decodeValue } from '../../../src/pg/values';
import { RawJson } from '../../../src/events/json-text';
import { registerFromPgType, TypeRegistry, USER_TYPES_SQL } from '../../../src/pg/types-registry';

const OID = {
  bool: 16, bytea: 17, int8: 20, int2: 21, int4: 23, text: 25, oid: 26, json: 114, float4: 700, float8: 701,
  bpchar: 1042, varchar: 1043, date: 1082, time: 1083, timestamp: 1114, timestamptz: 1184, interval: 1186,
  timetz: 1266, numeric: 1700, uuid: 2950, jsonb: 3802, money: 790, inet: 869,
  boolArr: 1000, byteaArr: 1001, int2Arr: 1005, int4Arr: 1007, textArr: 1009, int8Arr: 1016, float8Arr: 1022,
  tsArr: 1115, dateArr: 1182, tstzArr: 1185, intervalArr: 1187, numericArr: 1231, timetzArr: 1270,
  uuidArr: 2951, jsonArr: 199, jsonbArr: 3807, varcharArr: 1015,
};

describe('pg/values', () => {
  const registry = new TypeRegistry();
  const d = (text: string, oid: number) => decodeValue(text, oid, registry);

  it('bool', () => {
    expect(d('t', OID.bool)).to.equal(true);
    expect(d('f', OID.bool)).to.equal(false);
  });

  it('integers: int2/int4/oid as numbers, int8 a number only while safe', () => {
    expect(d('-32768', OID.int2)).to.equal(-32768);
    expect(d('2147483647', OID.int4)).to.equal(2147483647);
    expect(d('4294967295', OID.oid)).to.equal(4294967295);
    expect(d('9007199254740991', OID.int8)).to.equal(9007199254740991);
    expect(d('-9007199254740991', OID.int8)).to.equal(-9007199254740991);
    expect(d('9007199254740992', OID.int8)).to.equal('9007199254740992');
    expect(d('9223372036854775807', OID.int8)).to.equal('9223372036854775807');
    expect(d('-9223372036854775808', OID.int8)).to.equal('-9223372036854775808');
  });

  it('floats: numbers, NaN and ±Infinity as strings', () => {
    expect(d('1.1', OID.float4)).to.equal(1.1);
    expect(d('0.30000000000000004', OID.float8)).to.equal(0.1 + 0.2);
    expect(d('-1.5e-300', OID.float8)).to.equal(-1.5e-300);
    for (const special of ['NaN', 'Infinity', '-Infinity']) {
      expect(d(special, OID.float8)).to.equal(special);
      expect(d(special, OID.float4)).to.equal(special);
    }
  });

  it('numeric and money stay exactly as printed', () => {
    expect(d('12345678901234567890.123456789', OID.numeric)).to.equal('12345678901234567890.123456789');
    expect(d('0.10', OID.numeric)).to.equal('0.10');
    expect(d('NaN', OID.numeric)).to.equal('NaN');
    expect(d('$1,234.50', OID.money)).to.equal('$1,234.50');
  });

  it('json and jsonb are parsed; malformed JSON comes back as text', () => {
    expect(d('{"a": [1, "x", null, true]}', OID.jsonb)).to.deep.equal({ a: [1, 'x', null, true] });
    expect(d('"just a string"', OID.json)).to.equal('just a string');
    expect(d('42', OID.json)).to.equal(42);
    expect(d('{nope', OID.json)).to.equal('{nope');
  });

  it('json and jsonb keep numbers a JS number would round as RawJson with their exact digits', () => {
    const jb = d('{"big": 12345678901234567890, "d": 0.1000000000000000055511151231257827, "n": [1, 1.50, 2]}', OID.jsonb) as Record<string, unknown>;
    expect(jb.big).to.be.instanceOf(RawJson);
    expect((jb.big as RawJson).text).to.equal('12345678901234567890');
    expect((jb.d as RawJson).text).to.equal('0.1000000000000000055511151231257827');
    expect(jb.n).to.deep.equal([1, new RawJson('1.50'), 2]);
    expect(d('1e400', OID.json)).to.deep.equal(new RawJson('1e400'));
    expect(d('{"z": -0, "s": "12345678901234567890"}', OID.json)).to.deep.equal({ z: new RawJson('-0'), s: '12345678901234567890' });
    // The common case stays plain JSON.parse output.
    expect(d('{"a": 1, "b": [2.5, -3, 1e+21], "c": "1.50"}', OID.jsonb)).to.deep.equal({ a: 1, b: [2.5, -3, 1e21], c: '1.50' });
    expect(d('{"{\\"big\\": 12345678901234567890}",null}', OID.jsonbArr)).to.deep.equal([{ big: new RawJson('12345678901234567890') }, null]);
    expect(d('{"[1, 12345678901234567890]"}', OID.jsonArr)).to.deep.equal([[1, new RawJson('12345678901234567890')]]);
  });

  it('strings pass through', () => {
    for (const [text, oid] of [['héllo "x"', OID.text], ['ab  ', OID.bpchar], ['v', OID.varchar],
      ['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', OID.uuid], ['192.168.0.1/24', OID.inet]] as const) {
      expect(d(text, oid)).to.equal(text);
    }
  });

  it('bytea: hex and escape output → base64; garbage stays text', () => {
    expect(d('\\x00ff10', OID.bytea)).to.equal(Buffer.from([0, 255, 16]).toString('base64'));
    expect(d('\\x', OID.bytea)).to.equal('');
    expect(d('ab\\\\c\\001', OID.bytea)).to.equal(Buffer.from([0x61, 0x62, 0x5c, 0x63, 1]).toString('base64'));
    expect(d('\\xzz', OID.bytea)).to.equal('\\xzz');
  });

  it('timestamptz → RFC 3339 with microseconds; infinity and BC unchanged', () => {
    expect(d('2020-12-01 09:43:00.123456+00', OID.timestamptz)).to.equal('2020-12-01T09:43:00.123456Z');
    expect(d('2020-12-01 09:43:00+00', OID.timestamptz)).to.equal('2020-12-01T09:43:00Z');
    expect(d('2020-12-01 11:43:00.5+02', OID.timestamptz)).to.equal('2020-12-01T11:43:00.5+02:00');
    expect(d('2020-12-01 04:13:00-05:30', OID.timestamptz)).to.equal('2020-12-01T04:13:00-05:30');
    for (const kept of ['infinity', '-infinity', '0044-03-15 12:00:00+00 BC', '1850-01-01 00:00:00+00:53:28']) {
      expect(d(kept, OID.timestamptz)).to.equal(kept);
    }
  });

  it('timestamp, date, time, timetz, interval', () => {
    expect(d('2020-12-01 09:43:00', OID.timestamp)).to.equal('2020-12-01T09:43:00');
    expect(d('2020-12-01 09:43:00.000001', OID.timestamp)).to.equal('2020-12-01T09:43:00.000001');
    expect(d('infinity', OID.timestamp)).to.equal('infinity');
    expect(d('2020-12-01', OID.date)).to.equal('2020-12-01');
    expect(d('09:43:00.5', OID.time)).to.equal('09:43:00.5');
    expect(d('09:43:00+02', OID.timetz)).to.equal('09:43:00+02:00');
    expect(d('09:43:00.25-05:30', OID.timetz)).to.equal('09:43:00.25-05:30');
    expect(d('P1Y2M3DT4H5M6.5S', OID.interval)).to.equal('P1Y2M3DT4H5M6.5S');
  });

  it('arrays: nested, quoted, NULL elements, bounds prefix, decoded by element type', () => {
    expect(d('{1,2,NULL,4}', OID.int4Arr)).to.deep.equal([1, 2, null, 4]);
    expect(d('{{1,2},{3,4}}', OID.int2Arr)).to.deep.equal([[1, 2], [3, 4]]);
    expect(d('[2:3]={7,8}', OID.int4Arr)).to.deep.equal([7, 8]);
    expect(d('{"a,b","c\\"d",NULL,"NULL","",x,"back\\\\slash"}', OID.textArr))
      .to.deep.equal(['a,b', 'c"d', null, 'NULL', '', 'x', 'back\\slash']);
    expect(d('{t,f}', OID.boolArr)).to.deep.equal([true, false]);
    expect(d('{1,9223372036854775807}', OID.int8Arr)).to.deep.equal([1, '9223372036854775807']);
    expect(d('{NaN,1.5,-Infinity}', OID.float8Arr)).to.deep.equal(['NaN', 1.5, '-Infinity']);
    expect(d('{1.10,NaN}', OID.numericArr)).to.deep.equal(['1.10', 'NaN']);
    expect(d('{"{\\"a\\": 1}","[1, 2]",null}', OID.jsonbArr)).to.deep.equal([{ a: 1 }, [1, 2], null]);
    expect(d('{"\\"s\\""}', OID.jsonArr)).to.deep.equal(['s']);
    expect(d('{"\\\\x0102"}', OID.byteaArr)).to.deep.equal([Buffer.from([1, 2]).toString('base64')]);
    expect(d('{"2020-12-01 09:43:00.5+00",infinity}', OID.tstzArr)).to.deep.equal(['2020-12-01T09:43:00.5Z', 'infinity']);
    expect(d('{"2020-12-01 09:43:00"}', OID.tsArr)).to.deep.equal(['2020-12-01T09:43:00']);
    expect(d('{09:43:00+02}', OID.timetzArr)).to.deep.equal(['09:43:00+02:00']);
    expect(d('{2020-12-01}', OID.dateArr)).to.deep.equal(['2020-12-01']);
    expect(d('{P1D}', OID.intervalArr)).to.deep.equal(['P1D']);
    expect(d('{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', OID.uuidArr)).to.deep.equal(['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11']);
    expect(d('{}', OID.varcharArr)).to.deep.equal([]);
  });

  it('never throws: malformed input comes back as the text', () => {
    expect(d('{1,2', OID.int4Arr)).to.equal('{1,2');
    expect(d('not an array', OID.int4Arr)).to.equal('not an array');
    expect(d('abc', OID.int4)).to.equal('abc');
    expect(d('maybe', OID.bool)).to.equal('maybe');
    expect(d('yesterday', OID.timestamptz)).to.equal('yesterday');
  });

  it('unknown OIDs decode as strings', () => {
    expect(registry.has(987654)).to.equal(false);
    expect(d('(1,2)', 987654)).to.equal('(1,2)');
    expect(d('(0,0),(1,1)', 603)).to.equal('(0,0),(1,1)'); // box: built in, string
  });

  describe('TypeRegistry', () => {
    it('knows built-in scalars and arrays, with their element types', () => {
      const r = new TypeRegistry();
      for (const oid of [16, 20, 25, 1184, 3802, 1000, 1007, 1009, 2951, 199, 3807, 1001, 1115, 1185, 1182, 1183, 1270, 1187]) {
        expect(r.has(oid), `oid ${oid}`).to.equal(true);
      }
      expect(r.elementOf(1007)).to.equal(23);
      expect(r.elementOf(2951)).to.equal(2950);
      expect(r.elementOf(23)).to.equal(undefined);
    });

    it('registers domains, enums, arrays and composites', () => {
      const r = new TypeRegistry();
      const dv = (text: string, oid: number) => decodeValue(text, oid, r);
      // An array of an unknown element first reads its elements as strings…
      r.register(50002, { kind: 'array', elementOid: 50001 });
      expect(dv('{1,2}', 50002)).to.deep.equal(['1', '2']);
      // …and once the element turns out to be a domain over int4, as numbers (the cache is reset).
      r.register(50001, { kind: 'domain', baseOid: 23 });
      expect(dv('{1,2}', 50002)).to.deep.equal([1, 2]);
      expect(dv('7', 50001)).to.equal(7);
      r.register(50003, { kind: 'enum' });
      r.register(50004, { kind: 'array', elementOid: 50003 });
      expect(dv('happy', 50003)).to.equal('happy');
      expect(dv('{happy,"very sad"}', 50004)).to.deep.equal(['happy', 'very sad']);
      r.register(50005, { kind: 'domain', baseOid: 3807 }); // a domain over jsonb[]
      expect(dv('{"{\\"k\\": 1}"}', 50005)).to.deep.equal([{ k: 1 }]);
      r.register(50006, { kind: 'composite' });
      expect(dv('(1,"a b")', 50006)).to.equal('(1,"a b")');
      expect(r.has(50006)).to.equal(true);
    });

    it('survives a domain cycle', () => {
      const r = new TypeRegistry();
      r.register(60001, { kind: 'domain', baseOid: 60002 });
      r.register(60002, { kind: 'domain', baseOid: 60001 });
      expect(decodeValue('x', 60001, r)).to.equal('x');
    });

    it('registerFromPgType reads pg_type rows (numbers or strings)', () => {
      const r = new TypeRegistry();
      registerFromPgType(r, [
        { oid: '70001', typtype: 'e', typbasetype: '0', typelem: '0', typcategory: 'E' },
        { oid: 70002, typtype: 'b', typbasetype: 0, typelem: 70001, typcategory: 'A' },
        { oid: 70003, typtype: 'd', typbasetype: 20, typelem: 0, typcategory: 'N' },
        { oid: 70004, typtype: 'c', typbasetype: 0, typelem: 0, typcategory: 'C' },
        { oid: 70005, typtype: 'b', typbasetype: 0, typelem: 0, typcategory: 'U' },
        { oid: 70006, typtype: 'r', typbasetype: 0, typelem: 0, typcategory: 'R' },
      ]);
      expect(decodeValue('{a,b}', 70002, r)).to.deep.equal(['a', 'b']);
      expect(decodeValue('12', 70003, r)).to.equal(12);
      expect(decodeValue('[1,5)', 70006, r)).to.equal('[1,5)');
      for (const oid of [70001, 70002, 70003, 70004, 70005, 70006]) expect(r.has(oid)).to.equal(true);
      expect(USER_TYPES_SQL).to.contain('$1::oid[]');
    });
  });
});
