import { expect } from 'chai';
import { Client } from 'pg';
import type { Knex } from 'knex';
import { createKnex } from '../../../src/pg/schema/knex';
import { MIGRATIONS } from '../../../src/pg/schema/migrations';
import { TRIGGER_RULES_CHANNEL } from '../../../src/pg/schema/migrations/000005-trigger-rules';
import { DEFAULT_DESTINATION_NAME } from '../../../src/pg/schema/migrations/000004-dead-letters-destination';
import { migrateToLatest, pendingMigrations } from '../../../src/pg/schema/migrate';
import { quoteIdent } from '../../../src/pg/catalog-sql';
import { createTestDatabase, type TestDatabase } from '../harness/postgres';
import { preKnexSql as oldSql } from '../harness/pre-knex-schema';

// Per run: several worktrees may run this file at once against one PostgreSQL.
const RUN = process.pid;
const ALL = MIGRATIONS.map((m) => m.name);
const QUIET = { info: () => undefined };

const config = (schema: string) => ({ deadLetters: { schema, table: 'dead_letters' } });

async function recorded(db: TestDatabase, schema: string): Promise<string[]> {
  return (await db.query(`SELECT name FROM ${quoteIdent(schema)}.knex_migrations ORDER BY id`)).rows.map((r) => r.name);
}

async function columns(db: TestDatabase, schema: string, table: string): Promise<string[]> {
  const { rows } = await db.query(
    `SELECT column_name, data_type, is_nullable FROM information_schema.columns
      WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, [schema, table]);
  return rows.map((r) => `${r.column_name} ${r.data_type} ${r.is_nullable}`);
}

async function indexes(db: TestDatabase, schema: string): Promise<string[]> {
  const { rows } = await db.query(
    `SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename NOT LIKE 'knex\\_%' ORDER BY indexname`, [schema]);
  return rows.map((r) => r.indexname);
}

const EVENT = (id: string) => JSON.stringify({ specversion: '1.0', id, source: '/s', type: 't', sequence: id, partitionkey: `k/${id}` });

describe('pg/schema: knex migrations of the pgcloudevents schema (real PostgreSQL)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let knex: Knex;

  before(async () => {
    db = await createTestDatabase(`pgce_h11mig_schema_${RUN}`);
    knex = createKnex({ databaseUrl: db.url });
  });
  after(async function () {
    await knex?.destroy();
    if (this.currentTest?.state !== 'failed') await db?.drop();
    else await db?.close();
  });

  it('an empty database gets every migration, recorded in <schema>.knex_migrations; a second run does nothing', async () => {
    const c = config('fresh');
    expect(await pendingMigrations(knex, c)).to.deep.equal(ALL);
    expect((await db.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'fresh'`)).rowCount, 'reading changes nothing').to.equal(0);
    expect((await migrateToLatest(knex, c, QUIET)).ran).to.deep.equal(ALL);
    expect(await recorded(db, 'fresh')).to.deep.equal(ALL);
    expect((await db.query(`SELECT is_locked FROM fresh.knex_migrations_lock`)).rows).to.deep.equal([{ is_locked: 0 }]);
    expect(await columns(db, 'fresh', 'dead_letters')).to.deep.equal([
      'id bigint NO', 'event_id text NO', 'source text YES', 'type text YES', 'subject text YES',
      'partition_key text YES', 'event text YES', 'error text NO', 'status integer YES', 'attempts integer NO',
      'first_attempt_at timestamp with time zone NO', 'last_attempt_at timestamp with time zone NO',
      'created_at timestamp with time zone NO', 'commit_lsn pg_lsn YES',
      'raw_change text YES', 'sequence text YES', 'superseded_by_sequence text YES', 'destination text NO',
    ]);
    expect(await columns(db, 'fresh', 'capture_slots')).to.deep.equal([
      'slot_name text NO', 'database text NO', 'created_lsn pg_lsn YES', 'created_at timestamp with time zone NO',
      'acknowledged_lsn pg_lsn YES', 'acknowledged_at timestamp with time zone YES',
    ]);
    expect((await migrateToLatest(knex, c, QUIET)).ran).to.deep.equal([]);
    expect(await pendingMigrations(knex, c)).to.deep.equal([]);
    expect(await recorded(db, 'fresh')).to.deep.equal(ALL);
  });

  it('an install made by the numbered SQL files (000001 only) is adopted: rows kept, duplicates folded as 000002 did, schema current', async () => {
    const c = config('old_v1');
    await db.query(oldSql('000001.sql', 'old_v1', 'dead_letters'));
    const insert = `INSERT INTO old_v1.dead_letters (event_id, partition_key, event, error, attempts, first_attempt_at, last_attempt_at)
      VALUES ($1, $2, $3::jsonb, $4, 1, now(), now())`;
    await db.query(insert, ['e1', 'k/e1', EVENT('e1'), 'first']);
    await db.query(insert, ['e1', 'k/e1', EVENT('e1'), 'again']);
    await db.query(insert, ['e2', 'k/e2', EVENT('e2'), 'other']);
    const ids = (await db.query('SELECT id::text AS id FROM old_v1.dead_letters ORDER BY id')).rows.map((r) => r.id);
    expect(await pendingMigrations(knex, c)).to.deep.equal(ALL);

    expect((await migrateToLatest(knex, c, QUIET)).ran).to.deep.equal(ALL);
    const rows = (await db.query('SELECT id::text AS id, event_id, event, error, sequence FROM old_v1.dead_letters ORDER BY id')).rows;
    const jsonb = async (text: string) => (await db.query('SELECT $1::jsonb::text AS t', [text])).rows[0].t;
    expect(rows).to.deep.equal([
      { id: ids[0], event_id: 'e1', event: await jsonb(EVENT('e1')), error: 'first', sequence: 'e1' },
      { id: ids[2], event_id: 'e2', event: await jsonb(EVENT('e2')), error: 'other', sequence: 'e2' },
    ]);
    expect(await indexes(db, 'old_v1')).to.include.members([
      'dead_letters_created_at_idx', 'dead_letters_event_id_key', 'dead_letters_partition_key_idx', 'capture_slots_pkey',
    ]);
    expect(await recorded(db, 'old_v1')).to.deep.equal(ALL);
  });

  it('an install made by every numbered SQL file and slot-record.sql is adopted: rows and shape kept, each row recorded for the default destination', async () => {
    const c = config('old_v2');
    await db.query(oldSql('000001.sql', 'old_v2', 'dead_letters'));
    await db.query(oldSql('000002.sql', 'old_v2', 'dead_letters'));
    await db.query(oldSql('slot-record.sql', 'old_v2', 'capture_slots'));
    await db.query(`INSERT INTO old_v2.dead_letters (event_id, partition_key, sequence, event, error, attempts, first_attempt_at, last_attempt_at)
      VALUES ('e9', 'k/e9', 'e9', '{"id":"e9","b":1,"a":2}', 'kept byte for byte', 2, now(), now())`);
    await db.query(`INSERT INTO old_v2.capture_slots (slot_name, database, created_lsn, acknowledged_lsn, acknowledged_at)
      VALUES ('a_slot', current_database(), '0/1000', '0/2000', now())`);
    const before = {
      dead: (await db.query('SELECT * FROM old_v2.dead_letters')).rows,
      slots: (await db.query('SELECT * FROM old_v2.capture_slots')).rows,
      dl: await columns(db, 'old_v2', 'dead_letters'),
      idx: await indexes(db, 'old_v2'),
    };
    expect(await pendingMigrations(knex, c)).to.deep.equal(ALL);
    expect((await migrateToLatest(knex, c, QUIET)).ran).to.deep.equal(ALL);
    expect((await db.query('SELECT * FROM old_v2.dead_letters')).rows).to.deep.equal(
      before.dead.map((r) => ({ ...r, destination: DEFAULT_DESTINATION_NAME })));
    expect((await db.query('SELECT * FROM old_v2.capture_slots')).rows).to.deep.equal(before.slots);
    expect(await columns(db, 'old_v2', 'dead_letters')).to.deep.equal([...before.dl, 'destination text NO']);
    expect(await indexes(db, 'old_v2')).to.deep.equal(['backfills_active', 'backfills_pkey', ...before.idx, 'journal_capture_txid', 'journal_pkey', 'triggers_pkey'], 'the trigger rules (000005), backfills (000006) and journal (000007) tables are new');
    expect(await recorded(db, 'old_v2')).to.deep.equal(ALL);
  });

  it('000004 adopts a table of the version before it, with rows: each row gets the default destination; running it again changes nothing', async () => {
    const c = config('pre_dest');
    await migrateToLatest(knex, c, QUIET);
    // The previous version's table: no destination column, 000004 not recorded.
    await db.query('ALTER TABLE pre_dest.dead_letters DROP COLUMN destination');
    await db.query(`DELETE FROM pre_dest.knex_migrations WHERE name = '000004_dead_letters_destination'`);
    await db.query(`INSERT INTO pre_dest.dead_letters (event_id, sequence, event, error, attempts, first_attempt_at, last_attempt_at)
      VALUES ('d1', 'd1', $1, 'refused', 3, now(), now())`, [EVENT('d1')]);
    expect(await pendingMigrations(knex, c)).to.deep.equal(['000004_dead_letters_destination']);
    expect((await migrateToLatest(knex, c, QUIET)).ran).to.deep.equal(['000004_dead_letters_destination']);
    expect((await db.query('SELECT event_id, destination FROM pre_dest.dead_letters')).rows).to.deep.equal([
      { event_id: 'd1', destination: DEFAULT_DESTINATION_NAME },
    ]);
    expect(DEFAULT_DESTINATION_NAME).to.equal('default');
    await db.query(`INSERT INTO pre_dest.dead_letters (event_id, event, error, attempts, first_attempt_at, last_attempt_at, destination)
      VALUES ('d2', $1, 'refused', 1, now(), now(), 'r')`, [EVENT('d2')]);
    const m = MIGRATIONS.find((x) => x.name === '000004_dead_letters_destination')!;
    await m.up(knex, { schema: 'pre_dest', deadLetters: 'dead_letters', slotRecord: 'capture_slots', triggerRules: 'triggers', backfills: 'backfills', journal: 'journal' });
    expect((await db.query('SELECT event_id, destination FROM pre_dest.dead_letters ORDER BY id')).rows).to.deep.equal([
      { event_id: 'd1', destination: 'default' }, { event_id: 'd2', destination: 'r' },
    ]);
  });

  it('two migrators racing on an empty schema both succeed, and each migration runs and is recorded once', async () => {
    for (let round = 0; round < 3; round++) {
      const c = config(`race_${round}`);
      const other = createKnex({ databaseUrl: db.url });
      try {
        const results = await Promise.all([migrateToLatest(knex, c, QUIET), migrateToLatest(other, c, QUIET)]);
        expect(results.map((r) => r.ran).sort((a, b) => b.length - a.length)).to.deep.equal([ALL, []]);
      } finally {
        await other.destroy();
      }
      expect(await recorded(db, `race_${round}`)).to.deep.equal(ALL);
      expect((await db.query(`SELECT is_locked FROM race_${round}.knex_migrations_lock`)).rows).to.deep.equal([{ is_locked: 0 }]);
    }
  });

  it('a table gone since its migrations ran (dropped by teardown or by hand) is made again by the next run', async () => {
    const c = config('gone');
    await migrateToLatest(knex, c, QUIET);
    await db.query('DROP TABLE gone.dead_letters');
    const again = ['000001_dead_letters', '000002_dead_letters_exact_events', '000004_dead_letters_destination'];
    expect(await pendingMigrations(knex, c)).to.deep.equal(again);
    expect((await migrateToLatest(knex, c, QUIET)).ran).to.deep.equal(again);
    expect(await columns(db, 'gone', 'dead_letters')).to.include('superseded_by_sequence text YES');
    expect(await recorded(db, 'gone')).to.have.members(ALL);
    expect(await recorded(db, 'gone')).to.have.length(ALL.length);
  });

  it('000005 makes the trigger rules table, and every statement that changes it wakes listeners on its channel', async () => {
    const c = config('rules');
    await migrateToLatest(knex, c, QUIET);
    expect(await columns(db, 'rules', 'triggers')).to.deep.equal([
      'name text NO', 'rule jsonb NO', 'created_at timestamp with time zone NO', 'updated_at timestamp with time zone NO',
    ]);
    const listener = new Client({ connectionString: db.url });
    await listener.connect();
    try {
      const woken: string[] = [];
      let wake: () => void = () => undefined;
      listener.on('notification', (n) => { woken.push(`${n.channel}:${n.payload}`); wake(); });
      await listener.query(`LISTEN ${TRIGGER_RULES_CHANNEL}`);
      const next = () => new Promise<void>((resolve) => { wake = resolve; });
      for (const sql of [
        `INSERT INTO rules.triggers (name, rule) VALUES ('a', '{}')`,
        `UPDATE rules.triggers SET rule = '{"x":1}'`,
        `DELETE FROM rules.triggers`,
        `TRUNCATE rules.triggers`,
      ]) {
        const arrived = next();
        await db.query(sql);
        await arrived;
      }
      expect(woken).to.deep.equal(Array(4).fill(`${TRIGGER_RULES_CHANNEL}:`));
    } finally {
      await listener.end();
    }
  });
});
