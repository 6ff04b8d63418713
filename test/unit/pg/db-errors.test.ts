import { expect } from 'chai';
import { isRetriableDbError, type DbErrorContext } from '../../../src/pg/db-errors';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });
const CONTEXTS: DbErrorContext[] = ['query', 'connect', 'replication'];

describe('pg/db-errors: one classification for every connection', () => {
  for (const code of ['28000', '28P01', '3D000', '42501', '42704', '55000']) {
    it(`${code} is final wherever it happens`, () => {
      for (const c of CONTEXTS) expect(isRetriableDbError(withCode(code), c), c).to.equal(false);
    });
  }

  for (const code of ['08006', '57P01', '57P03', '53300', '55006', '40001', 'ECONNREFUSED', 'ECONNRESET']) {
    it(`${code} is retried wherever it happens`, () => {
      for (const c of CONTEXTS) expect(isRetriableDbError(withCode(code), c), c).to.equal(true);
    });
  }

  it("pg's own wording for a dropped connection is retried", () => {
    expect(isRetriableDbError(new Error('Connection terminated unexpectedly'), 'query')).to.equal(true);
  });

  it('an unknown error is final on a query (it would fail the same way) but retried on a connection or stream', () => {
    const syntax = withCode('42601');
    expect(isRetriableDbError(syntax, 'query')).to.equal(false);
    expect(isRetriableDbError(syntax, 'connect')).to.equal(true);
    expect(isRetriableDbError(syntax, 'replication')).to.equal(true);
    expect(isRetriableDbError('not even an error', 'query')).to.equal(false);
  });
});
