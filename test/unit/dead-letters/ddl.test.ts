import { expect } from 'chai';
import { renderStep } from '../../../src/sources/logical/setup';
import { loadConfig } from '../../../src/config/load';
import {
  ddlIdentifiers, deadLetterTeardownWarning, planDeadLetterSetup, planDeadLetterTeardown, renderDdl,
  type DeadLetterTableState,
} from '../../../src/delivery/dead-letters/ddl';

const ENV = { DATABASE_URL: 'postgres://app@127.0.0.1:5432/app', PG_CLOUDEVENTS_TABLES: 'public.orders' };

function config(deadLetters?: { schema?: string; table?: string }) {
  const base = loadConfig({ env: ENV });
  return { ...base, deadLetters: { ...base.deadLetters, ...deadLetters } };
}

const state = (over: Partial<DeadLetterTableState> = {}): DeadLetterTableState => ({
  schemaExists: true, tableExists: true, empty: true, otherObjectsInSchema: 0, upToDate: true, ...over,
});

describe('dead-letters/ddl', () => {
  it('substitutes only quoted identifiers, leaves casts alone and drops comments', () => {
    const sql = renderDdl('-- :schema in a comment\nSELECT 1::int FROM :schema.:table;\n', { schema: '"s"', table: '"t"' });
    expect(sql).to.equal('SELECT 1::int FROM "s"."t"');
  });

  it('refuses a placeholder it does not know', () => {
    expect(() => renderDdl('SELECT :nope', { schema: '"s"' })).to.throw(/unknown placeholder :nope/);
  });

  it('quotes the configured names and derives the other names within 63 bytes', () => {
    const ids = ddlIdentifiers({ schema: 'pg_cloudevents', table: 'x'.repeat(63) });
    expect(ids.schema).to.equal('"pg_cloudevents"');
    expect(ids.table).to.equal(`"${'x'.repeat(63)}"`);
    expect(ids.created_at_index.length - 2).to.equal(63);
    expect(ids.created_at_index).to.match(/_created_at_idx"$/);
    expect(ids.event_id_index).to.match(/^"x+_event_id_key"$/);
    expect(ids.event_check).to.match(/^"x+_event_or_raw_change"$/);
    // PostgreSQL counts bytes: a multi-byte table name is cut shorter, never mid-character.
    const wide = ddlIdentifiers({ schema: 's', table: 'é'.repeat(40) });
    for (const name of [wide.created_at_index, wide.event_id_index, wide.partition_key_index, wide.event_check]) {
      expect(Buffer.byteLength(name.slice(1, -1))).to.be.at.most(63);
      expect(name).to.match(/^"é+_[a-z_]+"$/);
    }
  });

  it('plans every numbered file when the table is missing, the later ones when it is outdated, nothing when up to date', () => {
    const c = config({ schema: 'ops', table: 'failed_events' });
    const steps = planDeadLetterSetup({ tableExists: false, upToDate: false }, c);
    expect(steps.map((s) => s.description)).to.deep.equal([
      'create dead-letter table ops.failed_events (000001.sql)',
      'create dead-letter table ops.failed_events (000002.sql)',
    ]);
    const printed = renderStep(steps[0]);
    expect(printed).to.include('CREATE SCHEMA IF NOT EXISTS "ops";');
    expect(printed).to.include('CREATE TABLE IF NOT EXISTS "ops"."failed_events" (');
    expect(printed).to.include('CREATE INDEX IF NOT EXISTS "failed_events_created_at_idx" ON "ops"."failed_events" (created_at);');
    const upgrade = renderStep(steps[1]);
    expect(upgrade).to.include('ALTER TABLE "ops"."failed_events" ALTER COLUMN event TYPE text USING event::text;');
    expect(upgrade).to.include('ADD CONSTRAINT "failed_events_event_or_raw_change" CHECK (event IS NOT NULL OR raw_change IS NOT NULL);');
    expect(upgrade).to.include('CREATE UNIQUE INDEX IF NOT EXISTS "failed_events_event_id_key" ON "ops"."failed_events" (event_id);');
    // The escape in the backfill's guard survives rendering (not taken for a placeholder or comment).
    expect(upgrade).to.include("position(E'\\\\u0000' IN event) = 0");
    for (const step of steps) expect(step.sql).not.to.match(/(?<![:\w]):[a-z_]+\b|--/);

    expect(planDeadLetterSetup({ tableExists: true, upToDate: false }, c).map((s) => s.description)).to.deep.equal([
      'upgrade dead-letter table ops.failed_events (000002.sql)',
    ]);
    expect(planDeadLetterSetup({ tableExists: true, upToDate: true }, config())).to.deep.equal([]);
  });

  it('refuses a pg_ schema before PostgreSQL does ("reserved for system schemas")', () => {
    expect(() => planDeadLetterSetup({ tableExists: false, upToDate: false }, config({ schema: 'pg_cloudevents' }))).to.throw(/deadLetters\.schema: "pg_cloudevents" starts with pg_/);
  });

  it('teardown drops an empty table and its otherwise empty schema, and keeps one that holds dead letters', () => {
    const c = config({ schema: 'pgcloudevents' });
    expect(planDeadLetterTeardown(state(), c).map((s) => s.sql)).to.deep.equal([
      'DROP TABLE IF EXISTS "pgcloudevents"."dead_letters"',
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
