import { expect } from 'chai';
import { loadConfig } from '../../../src/config/load';
import { deadLetterTeardownWarning, planDeadLetterTeardown, type DeadLetterTableState } from '../../../src/delivery/dead-letters/table';

const ENV = { DATABASE_URL: 'postgres://app@127.0.0.1:5432/app', PG_CLOUDEVENTS_TABLES: 'public.orders' };

function config(deadLetters?: { schema?: string; table?: string }) {
  const base = loadConfig({ env: ENV });
  return { ...base, deadLetters: { ...base.deadLetters, ...deadLetters } };
}

const state = (over: Partial<DeadLetterTableState> = {}): DeadLetterTableState => ({
  schemaExists: true, tableExists: true, empty: true, otherObjectsInSchema: 0, ...over,
});

describe('dead-letters/table: teardown', () => {
  it('drops an empty table and its otherwise empty schema with knex\'s migration record, and keeps one that holds dead letters', () => {
    const c = config({ schema: 'pgcloudevents' });
    expect(planDeadLetterTeardown(state(), c).map((s) => s.sql)).to.deep.equal([
      'DROP TABLE IF EXISTS "pgcloudevents"."dead_letters"',
      'DROP TABLE IF EXISTS "pgcloudevents"."knex_migrations_lock", "pgcloudevents"."knex_migrations"',
      'DROP SCHEMA IF EXISTS "pgcloudevents"',
    ]);
    expect(planDeadLetterTeardown(state({ otherObjectsInSchema: 2 }), c)).to.have.length(1);
    expect(planDeadLetterTeardown(state({ empty: false }), c)).to.deep.equal([]);
    expect(deadLetterTeardownWarning(state({ empty: false }), c)).to.match(/holds dead letters and is kept/);
    expect(deadLetterTeardownWarning(state(), c)).to.equal(undefined);
    expect(planDeadLetterTeardown(state({ tableExists: false }), c)).to.deep.equal([]);
    // `public` is never ours to drop.
    expect(planDeadLetterTeardown(state(), config({ schema: 'public' })).map((s) => s.sql)).to.deep.equal([
      'DROP TABLE IF EXISTS "public"."dead_letters"',
    ]);
  });
});
