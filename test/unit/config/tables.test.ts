import { expect } from 'chai';
import { parseTableName, resolveTables, splitTableList } from '../../../src/config/tables';
import { ErrorCodes, PgceError } from '../../../src/errors';

function refusal(text: string): string {
  try {
    parseTableName(text);
  } catch (err) {
    expect(err).to.be.instanceOf(PgceError);
    expect((err as PgceError).code).to.equal(ErrorCodes.CONFIG_INVALID);
    return (err as PgceError).message;
  }
  throw new Error(`accepted ${text}`);
}

describe('config/tables', () => {
  describe('parseTableName', () => {
    it('defaults the schema to public', () => {
      expect(parseTableName('polls_question')).to.deep.equal({ schema: 'public', name: 'polls_question' });
      expect(parseTableName('  polls_question ')).to.deep.equal({ schema: 'public', name: 'polls_question' });
    });

    it('splits schema.table', () => {
      expect(parseTableName('shop.orders')).to.deep.equal({ schema: 'shop', name: 'orders' });
      expect(parseTableName('s$1._t2')).to.deep.equal({ schema: 's$1', name: '_t2' });
    });

    it('folds unquoted names to lower case, as PostgreSQL does', () => {
      expect(parseTableName('Shop.Orders')).to.deep.equal({ schema: 'shop', name: 'orders' });
    });

    it('keeps double-quoted names as written, dots, spaces and "" included', () => {
      expect(parseTableName('"My Schema"."Weird.Name"')).to.deep.equal({ schema: 'My Schema', name: 'Weird.Name' });
      expect(parseTableName('"Orders"')).to.deep.equal({ schema: 'public', name: 'Orders' });
      expect(parseTableName('public."say ""hi"""')).to.deep.equal({ schema: 'public', name: 'say "hi"' });
      expect(parseTableName('"a,b".c')).to.deep.equal({ schema: 'a,b', name: 'c' });
    });

    it('accepts non-ASCII letters unquoted', () => {
      expect(parseTableName('données.événements')).to.deep.equal({ schema: 'données', name: 'événements' });
    });

    it('refuses what PostgreSQL would not resolve, saying why', () => {
      expect(refusal('')).to.include('empty table name');
      expect(refusal('db.shop.orders')).to.include('a database name is not allowed');
      expect(refusal('"open.orders')).to.include('unterminated quoted identifier');
      expect(refusal('public.""')).to.include('zero-length quoted identifier');
      expect(refusal('my table')).to.include('unexpected " " at position 3');
      expect(refusal('public.')).to.include('expected a name at position 8');
      expect(refusal('1orders')).to.include('expected a name at position 1');
      expect(refusal('shop-orders')).to.include('unexpected "-"');
    });

    it('refuses identifiers PostgreSQL would truncate (over 63 bytes)', () => {
      expect(parseTableName('a'.repeat(63)).name).to.have.length(63);
      expect(refusal('a'.repeat(64))).to.include('longer than 63 bytes');
      // 32 two-byte letters = 64 bytes, though only 32 characters.
      expect(refusal(`"${'é'.repeat(32)}"`)).to.include('longer than 63 bytes');
    });
  });

  describe('splitTableList', () => {
    it('splits on commas outside quotes and drops blank items', () => {
      expect(splitTableList('a, shop.b ,,"x,y".z,')).to.deep.equal(['a', 'shop.b', '"x,y".z']);
      expect(splitTableList(' , ')).to.deep.equal([]);
    });
  });

  describe('resolveTables', () => {
    it('defaults app to the schema and model to the table name; keeps explicit ones', () => {
      const problems: string[] = [];
      const tables = resolveTables(
        [{ table: 'polls_question', app: 'polls', model: 'question' }, { table: 'Shop."LineItem"' }],
        (i) => `tables[${i}].table`,
        problems,
      );
      expect(problems).to.deep.equal([]);
      expect(tables).to.deep.equal([
        { table: 'polls_question', schema: 'public', name: 'polls_question', app: 'polls', model: 'question' },
        { table: 'Shop."LineItem"', schema: 'shop', name: 'LineItem', app: 'shop', model: 'LineItem' },
      ]);
    });

    it('reports duplicates (however spelt) and bad names under their labels, keeping the good ones', () => {
      const problems: string[] = [];
      const tables = resolveTables(
        [{ table: 'orders' }, { table: 'bad name' }, undefined, { table: 'PUBLIC."orders"' }],
        (i) => `tables[${i}].table`,
        problems,
      );
      expect(tables.map((t) => t.name)).to.deep.equal(['orders']);
      expect(problems).to.have.length(2);
      expect(problems[0]).to.match(/^tables\[1\]\.table: "bad name": unexpected " "/);
      expect(problems[1]).to.equal('tables[3].table: public.orders is listed twice (first as tables[0].table)');
    });
  });
});
