import { expect } from 'chai';
import { ErrorCodes, PgceError } from '../../../../src/errors';
import { parsePgOutput, type TupleColumn } from '../../../../src/sources/logical/pgoutput';
import { tuple, w } from './pgoutput-writer';

// 2020-12-01T09:43:00.250123Z in µs since 2000-01-01.
const COMMIT_MICROS = BigInt(Date.UTC(2020, 11, 1, 9, 43, 0, 250) - Date.UTC(2000, 0, 1)) * 1000n + 123n;

describe('sources/logical/pgoutput', () => {
  it('parses Begin', () => {
    const msg = parsePgOutput(Buffer.concat([w.tag('B'), w.u64(0x16b3748n), w.i64(COMMIT_MICROS), w.u32(4_000_000_000)]));
    expect(msg).to.deep.equal({
      tag: 'begin',
      finalLsn: 0x16b3748n,
      commitTime: new Date('2020-12-01T09:43:00.250Z'),
      commitTimeMicros: COMMIT_MICROS,
      xid: 4_000_000_000,
    });
  });

  it('parses Commit', () => {
    const msg = parsePgOutput(Buffer.concat([w.tag('C'), w.u8(0), w.u64(100n), w.u64(164n), w.i64(COMMIT_MICROS)]));
    expect(msg).to.deep.equal({
      tag: 'commit', flags: 0, commitLsn: 100n, endLsn: 164n,
      commitTime: new Date('2020-12-01T09:43:00.250Z'), commitTimeMicros: COMMIT_MICROS,
    });
  });

  it('parses Origin and Type', () => {
    expect(parsePgOutput(Buffer.concat([w.tag('O'), w.u64(77n), w.str('node_a')]))).to.deep.equal({
      tag: 'origin', originLsn: 77n, name: 'node_a',
    });
    expect(parsePgOutput(Buffer.concat([w.tag('Y'), w.u32(16390), w.str('public'), w.str('mood')]))).to.deep.equal({
      tag: 'type', id: 16390, schema: 'public', name: 'mood',
    });
  });

  it('parses Relation: replica identity, key flags, type OIDs and modifiers', () => {
    const identities = { d: 'default', n: 'nothing', f: 'full', i: 'index' } as const;
    for (const [char, name] of Object.entries(identities)) {
      const buf = Buffer.concat([
        w.tag('R'), w.u32(16400), w.str('shop'), w.str('order_lines'), w.tag(char), w.i16(3),
        w.u8(1), w.str('order_id'), w.u32(23), w.i32(-1),
        w.u8(1), w.str('line'), w.u32(21), w.i32(-1),
        w.u8(0), w.str('note'), w.u32(1043), w.i32(68),
      ]);
      expect(parsePgOutput(buf)).to.deep.equal({
        tag: 'relation', id: 16400, schema: 'shop', table: 'order_lines', replicaIdentity: name,
        columns: [
          { name: 'order_id', typeOid: 23, typeMod: -1, isKey: true, flags: 1 },
          { name: 'line', typeOid: 21, typeMod: -1, isKey: true, flags: 1 },
          { name: 'note', typeOid: 1043, typeMod: 68, isKey: false, flags: 0 },
        ],
      });
    }
  });

  it('reads an empty namespace as pg_catalog', () => {
    const msg = parsePgOutput(Buffer.concat([w.tag('R'), w.u32(1), w.str(''), w.str('t'), w.tag('d'), w.i16(0)]));
    expect(msg).to.include({ tag: 'relation', schema: 'pg_catalog', table: 't' });
    const type = parsePgOutput(Buffer.concat([w.tag('Y'), w.u32(23), w.str(''), w.str('int4')]));
    expect(type).to.include({ tag: 'type', schema: 'pg_catalog', name: 'int4' });
  });

  it('parses Insert with every tuple column kind', () => {
    const bin = Buffer.from([0, 1, 2, 255]);
    const msg = parsePgOutput(Buffer.concat([
      w.tag('I'), w.u32(16400), w.tag('N'),
      tuple([['t', '22'], ['n'], ['u'], ['t', 'grüße ✓'], ['b', bin], ['t', '']]),
    ]));
    expect(msg).to.deep.equal({
      tag: 'insert',
      relationId: 16400,
      new: [
        { kind: 't', value: '22' }, { kind: 'n' }, { kind: 'u' }, { kind: 't', value: 'grüße ✓' },
        { kind: 'b', value: bin }, { kind: 't', value: '' },
      ],
    });
  });

  it('copies binary values so the message outlives the input buffer', () => {
    const buf = Buffer.concat([w.tag('I'), w.u32(1), w.tag('N'), tuple([['b', Buffer.from([7, 7])]])]);
    const msg = parsePgOutput(buf);
    buf.fill(0);
    if (msg.tag !== 'insert') throw new Error('not an insert');
    expect((msg.new[0] as Extract<TupleColumn, { kind: 'b' }>).value).to.deep.equal(Buffer.from([7, 7]));
  });

  it('parses Update: new only, with a key tuple, with a full old tuple', () => {
    const newT = tuple([['t', '1'], ['t', 'b']]);
    const plain = parsePgOutput(Buffer.concat([w.tag('U'), w.u32(5), w.tag('N'), newT]));
    expect(plain).to.deep.equal({ tag: 'update', relationId: 5, new: [{ kind: 't', value: '1' }, { kind: 't', value: 'b' }] });

    const keyed = parsePgOutput(Buffer.concat([w.tag('U'), w.u32(5), w.tag('K'), tuple([['t', '0'], ['n']]), w.tag('N'), newT]));
    expect(keyed).to.deep.include({ tag: 'update', key: [{ kind: 't', value: '0' }, { kind: 'n' }] });
    expect(keyed).to.not.have.property('old');

    const full = parsePgOutput(Buffer.concat([w.tag('U'), w.u32(5), w.tag('O'), tuple([['t', '1'], ['t', 'a']]), w.tag('N'), newT]));
    expect(full).to.deep.include({ tag: 'update', old: [{ kind: 't', value: '1' }, { kind: 't', value: 'a' }] });
    expect(full).to.not.have.property('key');
  });

  it('parses Delete with a key or a full old tuple', () => {
    expect(parsePgOutput(Buffer.concat([w.tag('D'), w.u32(9), w.tag('K'), tuple([['t', '3']])]))).to.deep.equal({
      tag: 'delete', relationId: 9, key: [{ kind: 't', value: '3' }],
    });
    expect(parsePgOutput(Buffer.concat([w.tag('D'), w.u32(9), w.tag('O'), tuple([['t', '3']])]))).to.deep.equal({
      tag: 'delete', relationId: 9, old: [{ kind: 't', value: '3' }],
    });
  });

  it('parses Truncate options bit by bit', () => {
    const make = (options: number) => Buffer.concat([w.tag('T'), w.i32(2), w.u8(options), w.u32(11), w.u32(12)]);
    expect(parsePgOutput(make(0))).to.deep.equal({ tag: 'truncate', relationIds: [11, 12], cascade: false, restartIdentity: false });
    expect(parsePgOutput(make(1))).to.include({ cascade: true, restartIdentity: false });
    expect(parsePgOutput(make(2))).to.include({ cascade: false, restartIdentity: true });
    expect(parsePgOutput(make(3))).to.include({ cascade: true, restartIdentity: true });
  });

  it('parses Message', () => {
    const content = Buffer.from([0, 1, 2]);
    const msg = parsePgOutput(Buffer.concat([w.tag('M'), w.u8(1), w.u64(200n), w.str('pgce'), w.i32(3), content]));
    expect(msg).to.deep.equal({ tag: 'message', flags: 1, transactional: true, lsn: 200n, prefix: 'pgce', content });
    const plain = parsePgOutput(Buffer.concat([w.tag('M'), w.u8(0), w.u64(200n), w.str('p'), w.i32(0)]));
    expect(plain).to.include({ transactional: false });
  });

  describe('malformed input → PGCE_ERR_PROTOCOL naming the tag and the offset', () => {
    const cases: Record<string, Buffer> = {
      'unknown tag': Buffer.from('Zabc'),
      'empty message': Buffer.alloc(0),
      'truncated Begin': Buffer.concat([w.tag('B'), w.u64(1n)]),
      'unterminated string': Buffer.concat([w.tag('Y'), w.u32(1), Buffer.from('public')]),
      'text length past the end': Buffer.concat([w.tag('I'), w.u32(1), w.tag('N'), w.i16(1), w.tag('t'), w.i32(50), Buffer.from('short')]),
      'negative text length': Buffer.concat([w.tag('I'), w.u32(1), w.tag('N'), w.i16(1), w.tag('t'), w.i32(-2)]),
      'unknown tuple column kind': Buffer.concat([w.tag('I'), w.u32(1), w.tag('N'), w.i16(1), w.tag('x')]),
      'insert without N': Buffer.concat([w.tag('I'), w.u32(1), w.tag('K'), tuple([])]),
      'update without N': Buffer.concat([w.tag('U'), w.u32(1), w.tag('K'), tuple([]), w.tag('K')]),
      'delete without K or O': Buffer.concat([w.tag('D'), w.u32(1), w.tag('N'), tuple([])]),
      'unknown replica identity': Buffer.concat([w.tag('R'), w.u32(1), w.str('s'), w.str('t'), w.tag('q'), w.i16(0)]),
      'truncate with too many ids': Buffer.concat([w.tag('T'), w.i32(3), w.u8(0), w.u32(1)]),
      'protocol v2 stream start': Buffer.concat([w.tag('S'), w.u32(1), w.u8(1)]),
    };
    for (const [name, buf] of Object.entries(cases)) {
      it(name, () => {
        let caught: unknown;
        try {
          parsePgOutput(buf);
        } catch (err) {
          caught = err;
        }
        expect(caught).to.be.instanceOf(PgceError);
        expect((caught as PgceError).code).to.equal(ErrorCodes.PROTOCOL);
        if (buf.length) expect((caught as PgceError).message).to.match(/offset \d+/);
      });
    }

    it('names the message kind when a known message is cut short', () => {
      expect(() => parsePgOutput(Buffer.concat([w.tag('C'), w.u8(0), w.u64(1n)]))).to.throw(/Commit message at offset 10/);
    });
  });
});
