import { expect } from 'chai';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { MIGRATIONS } from '../../../../src/pg/schema/migrations';
import { checkSchemaName, derivedName } from '../../../../src/pg/schema/names';
import { migrateToLatest, schemaBehindWarning } from '../../../../src/pg/schema/migrate';
import { createKnex } from '../../../../src/pg/schema/knex';
import { ConfigError } from '../../../../src/errors';

// Compiled tests run from dist/test/…: the modules beside the compiled list are .js there.
const FOLDER = join(__dirname, '..', '..', '..', '..', 'src', 'pg', 'schema', 'migrations');

describe('pg/schema: the migrations list', () => {
  it('lists every migration module of the folder once, in name order, each named after its file', () => {
    const modules = readdirSync(FOLDER)
      .filter((f) => /^\d{6}-.*\.(ts|js)$/.test(f) && !f.endsWith('.d.ts'))
      .map((f) => f.replace(/\.(ts|js)$/, ''))
      .sort();
    expect(MIGRATIONS.map((m) => m.name.replace('_', '-').replace(/_/g, '-'))).to.deep.equal(modules);
    const names = MIGRATIONS.map((m) => m.name);
    expect(names).to.deep.equal([...names].sort());
    expect(new Set(names).size).to.equal(names.length);
    expect(names).to.deep.equal(['000001_dead_letters', '000002_dead_letters_exact_events', '000003_capture_slots', '000004_dead_letters_destination', '000005_trigger_rules', '000006_backfills', '000007_journal']);
  });

  it('derives index and constraint names within PostgreSQL\'s 63 bytes, never cutting a character', () => {
    expect(derivedName('dead_letters', '_event_id_key')).to.equal('dead_letters_event_id_key');
    const long = derivedName('x'.repeat(63), '_created_at_idx');
    expect(long).to.have.length(63);
    expect(long).to.match(/_created_at_idx$/);
    const wide = derivedName('é'.repeat(40), '_event_or_raw_change');
    expect(Buffer.byteLength(wide)).to.be.at.most(63);
    expect(wide).to.match(/^é+_event_or_raw_change$/);
  });

  it('refuses a pg_ schema before PostgreSQL does ("reserved for system schemas"), without connecting', async () => {
    expect(() => checkSchemaName('pg_cloudevents')).to.throw(ConfigError, /deadLetters\.schema: "pg_cloudevents" starts with pg_/);
    const config = { databaseUrl: 'postgres://nobody@127.0.0.1:1/none', deadLetters: { schema: 'pg_x', table: 'dead_letters' } };
    const knex = createKnex(config);
    try {
      const err = await migrateToLatest(knex, config, { info: () => undefined }).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(ConfigError);
    } finally {
      await knex.destroy();
    }
  });

  it('a schema behind is a warning naming the pending migrations; a current one says nothing', () => {
    const config = { deadLetters: { schema: 'pgcloudevents', table: 'dead_letters' } };
    expect(schemaBehindWarning([], config)).to.equal(undefined);
    expect(schemaBehindWarning(['000003_capture_slots'], config)).to.equal(
      'schema pgcloudevents is behind: migration 000003_capture_slots pending (pg-cloudevents setup, or run at start, applies them)');
  });
});
