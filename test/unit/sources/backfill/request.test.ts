import { expect } from 'chai';
import type { Config } from '../../../../src/config/types';
import { ErrorCodes } from '../../../../src/errors';
import { MAX_CHUNK_SIZE, parseChunk, parseRate, validateBackfill, whereShapeProblem } from '../../../../src/sources/backfill/request';
import { BackfillError, DEFAULT_CHUNK_SIZE } from '../../../../src/sources/backfill/store';
import { askOf } from '../../../../src/server/admin-backfills';

function refusal(fn: () => unknown): BackfillError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(BackfillError);
    expect((err as BackfillError).code).to.equal(ErrorCodes.BACKFILL);
    expect((err as BackfillError).reason).to.equal('invalid');
    return err as BackfillError;
  }
  throw new Error('expected a refusal');
}

describe('sources/backfill/request: what a backfill request may ask', () => {
  it('--chunk: a whole number of rows from 1 to 100000', () => {
    expect(parseChunk('1')).to.equal(1);
    expect(parseChunk(' 1000 ')).to.equal(1000);
    expect(parseChunk(String(MAX_CHUNK_SIZE))).to.equal(100_000);
    expect(parseChunk(250, 'api')).to.equal(250);
    for (const bad of ['0', '100001', '-5', '1.5', 'ten', '', '1e3']) {
      expect(refusal(() => parseChunk(bad)).message).to.match(/^--chunk: must be a whole number of rows from 1 to 100000/);
    }
    expect(refusal(() => parseChunk(2.5, 'api')).message).to.match(/^chunk: must be/);
  });

  it('--rate: 5000/s, 5000 (per second) or 300/m, kept in whole rows per second', () => {
    expect(parseRate('5000/s')).to.equal(5000);
    expect(parseRate('5000')).to.equal(5000);
    expect(parseRate('300/m')).to.equal(5);
    expect(parseRate('60/m')).to.equal(1);
    expect(parseRate(' 7 / s ')).to.equal(7);
    expect(parseRate(42, 'api')).to.equal(42);
    expect(refusal(() => parseRate('100/m')).message).to.equal('--rate: 100/m is 1.67 rows per second; the rate is kept in whole rows per second: give 1/s (60/m) or 2/s');
    expect(refusal(() => parseRate('30/m')).message).to.include('0.50 rows per second');
    for (const bad of ['0', '0/s', '-1', 'fast', '5000/h', '1.5/s', '']) {
      expect(refusal(() => parseRate(bad)).message, bad).to.match(/^--rate: must be a positive number of rows per second or minute: 5000\/s, 5000 \(per second\) or 300\/m/);
    }
    expect(refusal(() => parseRate('99999999999')).message).to.match(/more than 2147483647 rows per second/);
    expect(refusal(() => parseRate(0, 'api')).message).to.match(/^rate: /);
  });

  it('--where: one condition, kept inside its parentheses; quoted text may hold anything', () => {
    for (const ok of [
      "created_at > now() - interval '30 days'",
      "note = 'a;b -- c /* d ) ('",
      "\"odd)name\" = 1",
      "note = $$ ); DROP $$ OR note = $x$ -- $x$",
      "note = E'it\\'s )'",
      'id IN (SELECT id FROM other WHERE (a OR b))',
      'price-1 > 0',
    ]) expect(whereShapeProblem(ok), ok).to.equal(undefined);
    const cases: [string, RegExp][] = [
      ['true) OR (1=1', /closes a parenthesis it did not open, at position 5/],
      ['true); DROP TABLE x; --', /closes a parenthesis/],
      ['true; DROP TABLE x', /contains ";" at position 5/],
      ['id > 1 -- the rest', /contains a comment at position 8/],
      ['id > 1 /* x */', /contains a comment/],
      ['(id > 1', /leaves a parenthesis open/],
      ["note = 'open", /unterminated string starting at position 8/],
      ['"open = 1', /unterminated quoted identifier/],
      ['note = $$ x', /unterminated dollar-quoted string/],
      ['id > $1', /contains a parameter \(\$1…\) at position 6: write the value itself/],
      ['   ', /is empty; leave it out to backfill every row/],
    ];
    for (const [where, problem] of cases) expect(whereShapeProblem(where), where).to.match(problem);
  });

  describe('validateBackfill before any query (no database reached)', () => {
    const config = { capture: { mode: 'logical', slot: 's' }, tables: [{ table: 'public.orders', schema: 'public', name: 'orders', app: 'public', model: 'orders' }] } as unknown as Config;
    const db = { query: async () => { throw new Error('no query expected'); } };
    const refused = async (ask: Parameters<typeof validateBackfill>[2], style: 'cli' | 'api' = 'cli') => {
      try {
        await validateBackfill(db, config, ask, 'cli', style);
      } catch (err) {
        expect(err).to.be.instanceOf(BackfillError);
        return (err as BackfillError).message;
      }
      throw new Error('expected a refusal');
    };

    it('a table that is not captured, named twice, or not a name', async () => {
      expect(await refused({ tables: ['public.customers'] })).to.equal('--table: public.customers is not captured, so it cannot be backfilled (captured tables: public.orders); add it to tables (or PG_CLOUDEVENTS_TABLES) and run setup first');
      expect(await refused({ tables: ['customers'] }, 'api')).to.match(/^tables: public\.customers is not captured/);
      expect(await refused({ tables: ['orders', 'public.orders'] })).to.equal('--table: public.orders is named twice');
      expect(await refused({ tables: ['a.b.c'] })).to.match(/^--table: "a\.b\.c": expected table or schema\.table/);
      expect(await refused({ tables: [] })).to.match(/^--table: name at least one captured table \(public\.orders\)/);
    });

    it('PostgreSQL 13: refused in logical mode (watermarks are pgoutput messages), accepted in trigger mode (journal rows) — database answers faked', async () => {
      // One row answers both lookups: the table (version, relid, kind) and its key (columns).
      const pg13 = { query: async () => ({ rows: [{ server_version: '13.14', relid: 16384, kind: 'r', columns: ['id'] }] }) };
      const logical = await validateBackfill(pg13, config, { tables: ['orders'] }, 'cli').then(() => 'accepted', (err: BackfillError) => err.message);
      expect(logical).to.match(/^PostgreSQL 13\.14 cannot backfill: .*PostgreSQL 14 or later$/);
      const trigger = { ...config, capture: { mode: 'trigger', slot: 's' } } as unknown as Config;
      expect(await validateBackfill(pg13, trigger, { tables: ['orders'] }, 'cli')).to.deep.equal([
        { schema: 'public', table: 'orders', where: undefined, chunkSize: DEFAULT_CHUNK_SIZE, rate: undefined, origin: 'cli' },
      ]);
    });

    it('a bad where, chunk or rate is refused before the tables are looked up', async () => {
      expect(await refused({ tables: ['orders'], where: '1); SELECT (1' })).to.match(/^--where "1\); SELECT \(1" closes a parenthesis/);
      expect(await refused({ tables: ['orders'], chunk: 0 }, 'api')).to.match(/^chunk: /);
    });
  });

  it('the API body: tables (an array), where, chunk, rate; nothing else', () => {
    expect(askOf({ tables: ['orders'] })).to.deep.equal({ tables: ['orders'] });
    expect(askOf({ tables: ['orders', 'x.y'], where: 'id > 1', chunk: 10, rate: '300/m' })).to.deep.equal({ tables: ['orders', 'x.y'], where: 'id > 1', chunk: 10, rate: 5 });
    expect(askOf({ tables: ['orders'], rate: 20, where: null })).to.deep.equal({ tables: ['orders'], rate: 20 });
    const cases: [unknown, RegExp][] = [
      [null, /^\(body\): must be a JSON object/],
      [['orders'], /^\(body\): must be a JSON object/],
      [{ table: 'orders' }, /^\(body\)\.table: unknown; a backfill request takes tables, where, chunk, rate/],
      [{ tables: 'orders' }, /^tables: must be a non-empty array/],
      [{ tables: [] }, /^tables: must be a non-empty array/],
      [{ tables: [1] }, /^tables: must be a non-empty array/],
      [{ tables: ['orders'], where: 1 }, /^where: must be a string/],
      [{ tables: ['orders'], chunk: '10' }, /^chunk: must be a number/],
      [{ tables: ['orders'], rate: '5/h' }, /^rate: must be a positive number/],
    ];
    for (const [body, problem] of cases) expect(refusal(() => askOf(body)).message, JSON.stringify(body)).to.match(problem);
  });
});
