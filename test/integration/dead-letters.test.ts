import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import Redis from 'ioredis';
import { Client, Pool } from 'pg';
import type { InsertChange } from '../../src/sources/change';
import { loadConfig } from '../../src/config/load';
import type { Config } from '../../src/config/types';
import type { FailedDelivery } from '../../src/delivery/dead-letter';
import { createDeadLetterHandler } from '../../src/delivery/dead-letters/handler';
import { inspectDeadLetterTable } from '../../src/delivery/dead-letters/table';
import { knexOn } from '../../src/pg/schema/knex';
import { migrateSchema } from '../../src/pg/schema/migrate';
import { preKnexSql } from './harness/pre-knex-schema';
import { eventFromStoredText } from '../../src/delivery/dead-letters/event-text';
import { DeadLetterStore, type DestinationKey } from '../../src/delivery/dead-letters/store';
import { SupersededTracker } from '../../src/delivery/dead-letters/superseded';
import { RawJson } from '../../src/events/json-text';
import { structuredJson } from '../../src/events/structured';
import { DeliveryError, ErrorCodes, PgceError } from '../../src/errors';
import { Lifecycle } from '../../src/lifecycle';
import { ConsoleSink } from '../../src/sinks/console';
import { HttpSink } from '../../src/sinks/http';
import type { Destination, Sink } from '../../src/sinks/types';
import { replay } from '../../src/cli/dead-letters-replay';
import { createTestDatabase, waitFor, type TestDatabase } from './harness/postgres';
import { spawnCli } from './harness/process';
import { startReceiver, type Receiver } from './harness/receiver';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

const NO_DIR = join(tmpdir(), 'pgce-e2-no-such-dir');
// Databases and slots named per run: this file may run from several worktrees at once against
// one PostgreSQL, and a second run would drop the first one's database under it.
const RUN = process.pid;

function testConfig(db: TestDatabase, over: { sink?: string; deadLetterSink?: string; retry?: number } = {}): Config {
  const base = loadConfig({
    env: {
      DATABASE_URL: db.url, PG_CLOUDEVENTS_TABLES: 'public.items',
      // Named: nothing here connects through the CLI, which resolves the per-database default.
      PG_CLOUDEVENTS_SLOT: `pgce_e2_dl_${RUN}`, PG_CLOUDEVENTS_PUBLICATION: `pgce_e2_dl_${RUN}`,
      ...(over.sink ? { K_SINK: over.sink, CLOUDEVENTS_HANDLER: 'http' } : { CLOUDEVENTS_HANDLER: 'console' }),
    },
  });
  return {
    ...base,
    // Explicit: PostgreSQL refuses the pg_ prefix of the current default (see the report).
    deadLetters: { schema: 'pgcloudevents', table: 'dead_letters' },
    sink: { ...base.sink, caCertsDir: NO_DIR, oidcTokenPath: join(NO_DIR, 'token'), timeoutMs: 2000 },
    delivery: { ...base.delivery, backoffDelayMs: 20, backoffMaxMs: 100, retry: over.retry, deadLetterSink: over.deadLetterSink },
  };
}

function change(ordinal: number): InsertChange {
  return {
    kind: 'insert',
    relation: {
      id: 16384, schema: 'public', table: 'items', replicaIdentity: 'default',
      columns: [{ name: 'id', typeOid: 23, typeMod: -1, isKey: true }], keyColumns: ['id'],
    },
    commitLsn: 0x16b3748n,
    commitTime: new Date('2024-05-01T10:00:00.000Z'),
    xid: 750,
    ordinal,
    new: { id: ordinal },
    missingColumns: [],
  };
}

function event(ordinal: number, over: Record<string, unknown> = {}): CloudEvent<unknown> {
  const id = `00000000016B3748-${String(ordinal).padStart(8, '0')}`;
  return new CloudEvent<unknown>({
    id, source: '/pg-cloudevents/pgce_e2', type: 'orm.post_save', subject: `DCE:public.items/${ordinal}`,
    time: '2024-05-01T10:00:00.000Z', datacontenttype: 'application/json',
    app: 'public', model: 'items', sequence: id, partitionkey: `public.items/${ordinal}`,
    data: { data: { id: ordinal, note: 'naïve \u2603' }, signal_kwargs: { created: true }, db_table: 'items' },
    ...over,
  });
}

/** Where the failures of these tests failed, unless a test says otherwise. */
const CONSOLE: Destination = { name: 'console', sink: new ConsoleSink(), batchSize: 1 };
/** The default route's destination (the configured handler), as `run` records it. */
const DEFAULT_ROUTE: Destination = { ...CONSOLE, name: 'default' };

function failed(ordinal: number, error: Error = new DeliveryError('sink answered 400 Bad Request: nope', { status: 400 }), status: number | undefined = 400): FailedDelivery {
  return {
    event: event(ordinal), change: change(ordinal), destination: DEFAULT_ROUTE, error, status, attempts: 3,
    firstAttemptAt: new Date('2024-05-01T10:00:01.000Z'), lastAttemptAt: new Date('2024-05-01T10:00:02.500Z'),
  };
}

/** What `setup` and `run` do for the table: the schema's migrations. */
async function createTable(db: TestDatabase, config: Config): Promise<void> {
  await migrateSchema({ ...config, databaseUrl: db.url }, { info: () => undefined });
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => expect.fail('expected a rejection'),
    (e: unknown) => e as Error,
  );
}

describe('dead letters against real PostgreSQL', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let pool: Pool;
  let config: Config;
  let store: DeadLetterStore;

  before(async () => {
    db = await createTestDatabase(`pgce_e2_store_${RUN}`);
    pool = new Pool({ connectionString: db.url, max: 3 });
    config = testConfig(db);
    store = new DeadLetterStore(knexOn(pool), config.deadLetters);
  });
  after(async function () {
    await pool?.end();
    // Kept for inspection when a test failed.
    if (this.currentTest?.state !== 'failed') await db?.drop();
  });

  describe('table and store', () => {
    it('the schema migrations create the table with the documented columns, idempotently', async () => {
      await createTable(db, config);
      // Migrating again (a second `setup`, a replica racing) changes nothing.
      await createTable(db, config);
      const { rows } = await db.query(
        `SELECT column_name, data_type, is_nullable FROM information_schema.columns
          WHERE table_schema = 'pgcloudevents' AND table_name = 'dead_letters' ORDER BY ordinal_position`,
      );
      expect(rows.map((r) => `${r.column_name} ${r.data_type} ${r.is_nullable}`)).to.deep.equal([
        'id bigint NO', 'event_id text NO', 'source text YES', 'type text YES', 'subject text YES',
        'partition_key text YES', 'event text YES', 'error text NO', 'status integer YES', 'attempts integer NO',
        'first_attempt_at timestamp with time zone NO', 'last_attempt_at timestamp with time zone NO',
        'created_at timestamp with time zone NO', 'commit_lsn pg_lsn YES',
        'raw_change text YES', 'sequence text YES', 'superseded_by_sequence text YES', 'destination text NO',
      ]);
      const idx = await db.query(`SELECT indexdef FROM pg_indexes WHERE schemaname = 'pgcloudevents' AND indexname = 'dead_letters_created_at_idx'`);
      expect(idx.rows[0].indexdef).to.include('(created_at)');
      // The schema's other relations: the slot record, trigger rules, backfills and journal tables.
      expect(await inspectDeadLetterTable(knexOn(pool), config)).to.deep.equal({
        schemaExists: true, tableExists: true, empty: true, otherObjectsInSchema: 4,
      });
      await store.insert(failed(1));
      expect((await inspectDeadLetterTable(knexOn(pool), config)).empty).to.equal(false);
      await store.purge();
    });

    it('insert, get, list (paged, with and without the event), count, delete, purge', async () => {
      await store.purge();
      const ids: string[] = [];
      for (let i = 1; i <= 5; i++) ids.push(await store.insert(failed(i)));
      expect(await store.count()).to.equal(5);

      const row = await store.get(ids[1]);
      expect(row).to.include({
        id: ids[1], eventId: '00000000016B3748-00000002', source: '/pg-cloudevents/pgce_e2', type: 'orm.post_save',
        subject: 'DCE:public.items/2', partitionKey: 'public.items/2', error: 'sink answered 400 Bad Request: nope',
        status: 400, attempts: 3, commitLsn: '0/16B3748',
      });
      expect(row!.firstAttemptAt.toISOString()).to.equal('2024-05-01T10:00:01.000Z');
      expect(row!.lastAttemptAt.toISOString()).to.equal('2024-05-01T10:00:02.500Z');
      // Replayable: the stored text is what the sink sent, and rebuilds the very event.
      expect(row!.event).to.equal(structuredJson(event(2)));
      expect(eventFromStoredText(row!.event!).toJSON()).to.deep.equal(event(2).toJSON());
      expect(row).to.include({ sequence: event(2).id, supersededBySequence: null, undecodable: false });

      const page1 = await store.list({ limit: 2 });
      const page2 = await store.list({ limit: 2, afterId: page1[1].id });
      const page3 = await store.list({ limit: 2, afterId: page2[1].id });
      expect([...page1, ...page2, ...page3].map((r) => r.id)).to.deep.equal(ids);
      expect(page1[0]).not.to.have.property('event');
      expect((await store.list({ limit: 1, withEvent: true }))[0].event).to.equal(structuredJson(event(1)));

      expect(await store.delete(ids[0])).to.equal(true);
      expect(await store.delete(ids[0])).to.equal(false);
      expect(await store.get(ids[0])).to.equal(undefined);

      await db.query(`UPDATE pgcloudevents.dead_letters SET created_at = now() - interval '10 days' WHERE id = ANY($1::bigint[])`, [[ids[1], ids[2]]]);
      expect(await store.purge({ before: new Date(Date.now() - 7 * 86_400_000) })).to.equal(2);
      expect((await store.list()).map((r) => r.id)).to.deep.equal([ids[3], ids[4]]);
      expect(await store.purge()).to.equal(2);
      expect(await store.count()).to.equal(0);
    });

    it('list pages in id order, numerically (ids 8 to 12 cross a digit)', async () => {
      await store.purge();
      await db.query(`SELECT setval(pg_get_serial_sequence('pgcloudevents.dead_letters', 'id'), 7)`);
      const ids: string[] = [];
      for (let i = 1; i <= 5; i++) ids.push(await store.insert(failed(i)));
      expect(ids).to.deep.equal(['8', '9', '10', '11', '12']);
      expect((await store.list()).map((r) => r.id)).to.deep.equal(ids);
      const paged: string[] = [];
      for (let afterId: string | undefined; ;) {
        const page = await store.list({ limit: 2, afterId, withEvent: true });
        paged.push(...page.map((r) => r.id));
        if (page.length < 2) break;
        afterId = page[page.length - 1].id;
      }
      expect(paged).to.deep.equal(ids);
      await store.purge();
    });

    it('recordFailure adds attempts and replaces the error; an event with U+0000 is stored exactly (only the error text loses it)', async () => {
      const id = await store.insert({ ...failed(9, new Error('bad\u0000byte')), event: event(9, { data: { s: 'a\u0000b' } }) });
      await store.recordFailure(id, { error: new DeliveryError('sink answered 503', { status: 503 }), status: 503, attempts: 4 });
      const row = await store.get(id);
      expect(row).to.include({ attempts: 7, status: 503, error: 'sink answered 503' });
      expect(row!.event).to.include('"s":"a\\u0000b"');
      expect((eventFromStoredText(row!.event!).data as { s: string }).s).to.equal('a\u0000b');
      await store.purge();
    });

    it('one row per event id: storing the same failure again keeps the row and its event, adds the attempts', async () => {
      await store.purge();
      const first = await store.insert(failed(7));
      // A crash after the row was stored but before the position was acknowledged: the event is
      // delivered again after the restart, fails again, and is dead-lettered a second time.
      const again = await store.insert({
        ...failed(7, new DeliveryError('sink answered 422 Unprocessable Entity: still', { status: 422 }), 422),
        event: event(7, { data: { changed: true } }),
        attempts: 2, lastAttemptAt: new Date('2024-05-01T11:00:00.000Z'),
      });
      expect(again).to.equal(first);
      expect(await store.count()).to.equal(1);
      const row = await store.get(first);
      expect(row).to.include({ attempts: 5, status: 422, error: 'sink answered 422 Unprocessable Entity: still' });
      expect(row!.lastAttemptAt.toISOString()).to.equal('2024-05-01T11:00:00.000Z');
      expect(row!.firstAttemptAt.toISOString()).to.equal('2024-05-01T10:00:01.000Z');
      expect(row!.event, 'the event first stored is kept').to.equal(structuredJson(event(7)));
      // The database refuses a second row for the id whatever writes it.
      const err = await rejection(db.query(
        `INSERT INTO pgcloudevents.dead_letters (event_id, event, error, attempts, first_attempt_at, last_attempt_at)
         VALUES ($1, '{}', 'x', 1, now(), now())`, [event(7).id]));
      expect((err as { code?: string }).code).to.equal('23505');
      await store.purge();
    });

    it('an undecodable change is stored with its raw row and reason, once per id; a row needs an event or a raw change', async () => {
      await store.purge();
      const record = {
        eventId: '00000000016B3748-00000042', source: '/pg-cloudevents/pgce_e2', partitionKey: 'public.items/42',
        commitLsn: 0x16b3748n, raw: '{"id":"42","price":"NaN?"}', error: 'cannot decode column price: unexpected value',
      };
      const id = await store.insertUndecodable(record);
      expect(await store.insertUndecodable({ ...record, error: 'cannot decode column price: again' })).to.equal(id);
      expect(await store.count()).to.equal(1);
      const row = await store.get(id);
      expect(row).to.include({
        eventId: record.eventId, source: record.source, partitionKey: 'public.items/42', type: null, subject: null,
        undecodable: true, event: null, rawChange: record.raw, error: 'cannot decode column price: again',
        attempts: 0, status: null, commitLsn: '0/16B3748',
      });
      const [listed] = await store.list();
      expect(listed).to.include({ id, undecodable: true });
      expect(listed).not.to.have.property('rawChange');
      const err = await rejection(db.query(
        `INSERT INTO pgcloudevents.dead_letters (event_id, error, attempts, first_attempt_at, last_attempt_at)
         VALUES ('x', 'x', 0, now(), now())`));
      expect((err as { code?: string }).code).to.equal('23514'); // check_violation
      expect(await store.purge()).to.equal(1);
    });

    it('an install set up by 000001.sql only is upgraded by the migrations setup/run apply: event as text, one row per id (the oldest kept), the new columns', async () => {
      const legacy: Config = { ...config, deadLetters: { schema: 'legacy', table: 'dead_letters' } };
      const legacyStore = new DeadLetterStore(knexOn(pool), legacy.deadLetters);
      const client = new Client({ connectionString: db.url });
      await client.connect();
      try {
        await client.query(preKnexSql('000001.sql', 'legacy', 'dead_letters'));
        // Rows as the previous version wrote them (jsonb), the same event twice among them.
        const insertOld = `INSERT INTO legacy.dead_letters (event_id, partition_key, event, error, attempts, first_attempt_at, last_attempt_at, created_at)
          VALUES ($1, $2, $3::jsonb, $4, 1, now(), now(), $5)`;
        const e1 = JSON.stringify(event(1).toJSON());
        await client.query(insertOld, [event(1).id, 'public.items/1', e1, 'first', '2024-05-01T10:00:00Z']);
        await client.query(insertOld, [event(1).id, 'public.items/1', e1, 'again', '2024-05-01T11:00:00Z']);
        await client.query(insertOld, [event(2).id, 'public.items/2', JSON.stringify(event(2).toJSON()), 'other', '2024-05-01T12:00:00Z']);
        const oldIds = (await client.query('SELECT id::text AS id FROM legacy.dead_letters ORDER BY id')).rows.map((r) => r.id);

        // The new code against the old shape: a message that says what to do.
        const err = await rejection(legacyStore.insert(failed(3)));
        expect((err as PgceError).code).to.equal(ErrorCodes.UNKNOWN_TABLE);
        expect(err.message).to.include('legacy.dead_letters was set up by an older version: run `pg-cloudevents setup`');

        await createTable(db, legacy);
        const after = await client.query('SELECT id::text AS id, event_id, event, error, sequence FROM legacy.dead_letters ORDER BY id');
        const jsonbText = (await client.query('SELECT $1::jsonb::text AS t', [e1])).rows[0].t;
        expect(after.rows).to.deep.equal([
          { id: oldIds[0], event_id: event(1).id, event: jsonbText, error: 'first', sequence: event(1).id },
          { id: oldIds[2], event_id: event(2).id, event: (await client.query('SELECT $1::jsonb::text AS t', [JSON.stringify(event(2).toJSON())])).rows[0].t, error: 'other', sequence: event(2).id },
        ]);
        // An old row is still replayable: its (jsonb-rendered) text rebuilds the event.
        expect(eventFromStoredText(after.rows[0].event).toJSON()).to.deep.equal(event(1).toJSON());
        // Migrating again (another replica, a later setup) changes nothing.
        await createTable(db, legacy);
        expect((await client.query('SELECT id::text AS id, event_id, event, error, sequence FROM legacy.dead_letters ORDER BY id')).rows).to.deep.equal(after.rows);

        // The store now works on it, one row per id.
        expect(await legacyStore.insert(failed(1))).to.equal(oldIds[0]);
        await legacyStore.insert(failed(3));
        await legacyStore.insert(failed(3));
        expect(await legacyStore.count()).to.equal(3);
      } finally {
        await client.query('DROP SCHEMA legacy CASCADE').catch(() => undefined);
        await client.end();
      }
    });

    it('newer-state tracking: a delivery of a key with dead letters marks its older rows; nothing ever throws into the emitter', async () => {
      await store.purge();
      const seq = (n: number) => `00000000016B3748-${String(n).padStart(8, '0')}`;
      // The event of row `key` at position n of the change stream.
      const at = (key: number, n: number) => event(key, { id: seq(n), sequence: seq(n) });
      const a = await store.insert(failed(1));
      let marks = 0;
      const counting = Object.assign(Object.create(store) as DeadLetterStore, {
        markSuperseded: (at: DestinationKey, sequence: string) => (marks++, store.markSuperseded(at, sequence)),
      });
      const lifecycle = new Lifecycle();
      const delivered = (e: CloudEvent<unknown>, destination = 'default') => lifecycle.emit('delivery:delivered', { event: e, destination, attempts: 1, latencyMs: 1, commitTime: new Date() });
      const tracker = new SupersededTracker(counting);
      tracker.subscribe(lifecycle);
      try {
        // Delivered before the keys were loaded: remembered, and applied once they are.
        delivered(at(1, 5));
        await tracker.idle();
        expect((await store.get(a))!.supersededBySequence).to.equal(seq(5));
        delivered(at(1, 9), 'trigger:other/0'); // another destination's delivery of the row: not this row's newer state
        await tracker.idle();
        expect((await store.get(a))!.supersededBySequence).to.equal(seq(5));
        delivered(at(1, 9));
        delivered(at(1, 7)); // an older one (a redelivery after a restart) never lowers it
        delivered(at(2, 10)); // a key without dead letters: no query
        await tracker.idle();
        expect((await store.get(a))!.supersededBySequence).to.equal(seq(9));
        expect(marks).to.equal(3);

        // A dead letter stored now (the handler calls watch) is watched from then on.
        const b = await store.insert(failed(2));
        tracker.watch(event(2), 'default');
        delivered(at(2, 11));
        await tracker.idle();
        expect((await store.get(b))!.supersededBySequence).to.equal(seq(11));
        expect((await store.get(a))!.supersededBySequence).to.equal(seq(9));

        // Once a key's rows are gone (replayed, purged), its deliveries cost nothing again.
        await store.purge();
        delivered(at(1, 12));
        await tracker.idle();
        const before = marks;
        delivered(at(1, 13));
        await tracker.idle();
        expect(marks).to.equal(before);
      } finally {
        tracker.unsubscribe();
      }

      // A database that fails, events without the extensions: logged, never thrown.
      const broken = new SupersededTracker({
        tableName: 'x.y',
        partitionKeys: async () => { throw new Error('database down'); },
        markSuperseded: async () => { throw new Error('database down'); },
      });
      const other = new Lifecycle();
      broken.subscribe(other);
      broken.watch(event(3), 'default');
      expect(() => other.emit('capture:connected', { slot: 's', publication: 'p', startLsn: 0n })).not.to.throw();
      expect(() => other.emit('delivery:delivered', { event: at(3, 20), destination: 'default', attempts: 1, latencyMs: 1, commitTime: new Date() })).not.to.throw();
      const plain = new CloudEvent({ id: 'x', source: '/s', type: 't' });
      expect(() => other.emit('delivery:delivered', { event: plain, destination: 'default', attempts: 1, latencyMs: 1, commitTime: new Date() })).not.to.throw();
      await broken.idle();
      broken.unsubscribe();
    });

    it('a missing table is a clear error naming setup', async () => {
      const other = new DeadLetterStore(knexOn(pool), { schema: 'pgcloudevents', table: 'nope' });
      const err = await rejection(other.count());
      expect(err).to.be.instanceOf(PgceError);
      expect((err as PgceError).code).to.equal(ErrorCodes.UNKNOWN_TABLE);
      expect(err.message).to.match(/pgcloudevents\.nope does not exist: run `pg-cloudevents setup`/);
      const noSchema = new DeadLetterStore(knexOn(pool), { schema: 'nowhere', table: 'dead_letters' });
      expect((await rejection(noSchema.count())).message).to.include('nowhere.dead_letters does not exist');
    });
  });

  describe('handler', () => {
    let sinkReceiver: Receiver;
    let dlsReceiver: Receiver;

    beforeEach(async () => {
      sinkReceiver = await startReceiver();
      dlsReceiver = await startReceiver();
      await createTable(db, config);
      await store.purge();
    });
    afterEach(async () => {
      await sinkReceiver.close();
      await dlsReceiver.close();
    });

    /** A real final failure: the sink answers 422 with `body`. */
    async function realFailure(sinkUrl: string, body: string, ordinal = 1): Promise<FailedDelivery> {
      sinkReceiver.respondWith(() => ({ status: 422, body }));
      const sink = new HttpSink(testConfig(db, { sink: sinkUrl }).sink);
      try {
        await sink.send(event(ordinal));
        throw new Error('the sink accepted the event');
      } catch (err) {
        expect(err).to.be.instanceOf(DeliveryError);
        return {
          ...failed(ordinal), destination: { name: 'http', sink, batchSize: 1 },
          error: err as DeliveryError, status: (err as DeliveryError).status, attempts: 1,
        };
      } finally {
        await sink.close();
      }
    }

    it('sends to the dead-letter sink with Knative’s extensions, then stores the row', async () => {
      const sinkUrl = sinkReceiver.url.replace('http://', 'http://user:secret@');
      const cfg = testConfig(db, { sink: sinkUrl, deadLetterSink: dlsReceiver.url });
      const body = `{"error":"quantity must be positive","detail":"${'x'.repeat(2000)}"}`;
      const fail = await realFailure(sinkUrl, body);
      const handler = createDeadLetterHandler({ config: cfg, store });
      try {
        await handler(fail, new AbortController().signal);
      } finally {
        await handler.close();
      }
      expect(dlsReceiver.errors).to.deep.equal([]);
      expect(dlsReceiver.requests).to.have.length(1);
      expect(dlsReceiver.requests[0].mode).to.equal('binary');
      const got = dlsReceiver.events[0] as CloudEvent<unknown> & Record<string, unknown>;
      const { knativeerrordest, knativeerrorcode, knativeerrordata, ...original } = got.toJSON() as Record<string, unknown>;
      expect(original).to.deep.equal(event(1).toJSON());
      expect(knativeerrordest).to.equal(sinkReceiver.url); // the credentials stay with us
      expect(String(knativeerrorcode)).to.equal('422');
      expect(dlsReceiver.requests[0].headers['ce-knativeerrorcode']).to.equal('422');
      const data = knativeerrordata as string;
      expect(data).to.have.length(1024);
      expect(Buffer.from(data, 'base64').toString()).to.equal(body.slice(0, 768));

      const [row] = await store.list({ withEvent: true });
      expect(row).to.include({ eventId: event(1).id, status: 422, attempts: 1 });
      expect(row.error).to.match(/^sink answered 422 Unprocessable Entity: \{"error":"quantity must be positive"/);
      expect(row.event).to.equal(structuredJson(event(1)));
    });

    it('a dead-letter sink that stays down is retried a bounded number of times and the row is still stored', async () => {
      const down = `http://127.0.0.1:${await freePort()}/`;
      const cfg = testConfig(db, { sink: sinkReceiver.url, deadLetterSink: down });
      const fail = await realFailure(sinkReceiver.url, 'no');
      const handler = createDeadLetterHandler({ config: cfg, store });
      const started = Date.now();
      await handler(fail, new AbortController().signal);
      await handler.close();
      // 5 attempts with 20, 40, 80, 100 ms between them: well under the test's patience.
      expect(Date.now() - started).to.be.below(5000);
      expect((await store.list()).map((r) => r.eventId)).to.deep.equal([event(1).id]);
    });

    it('without a dead-letter sink only the row is written', async () => {
      const handler = createDeadLetterHandler({ config: testConfig(db), store });
      await handler(failed(2), new AbortController().signal);
      expect(await store.count()).to.equal(1);
      expect(dlsReceiver.requests).to.have.length(0);
    });

    it('a database that refuses the insert is retried until the table is back', async () => {
      await db.query('DROP TABLE pgcloudevents.dead_letters');
      let waits = 0;
      const sleep = (ms: number, signal?: AbortSignal) => {
        waits++;
        return new Promise<void>((resolve, reject) => {
          const t = setTimeout(resolve, ms);
          signal?.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
        });
      };
      const handler = createDeadLetterHandler({ config, store, sleep });
      let settled = false;
      const storing = handler(failed(3), new AbortController().signal).finally(() => (settled = true));
      await waitFor(async () => waits >= 3, { what: 'three failed inserts' });
      expect(settled).to.equal(false);
      await createTable(db, config);
      await storing;
      expect((await store.list()).map((r) => r.eventId)).to.deep.equal([event(3).id]);
    });

    it('a database that is down is retried, and an abort rejects without storing', async () => {
      const downPool = new Pool({ connectionString: `postgres://postgres@127.0.0.1:${await freePort()}/x`, connectionTimeoutMillis: 500 });
      downPool.on('error', () => undefined);
      const downStore = new DeadLetterStore(knexOn(downPool), config.deadLetters);
      let waits = 0;
      const sleep = (ms: number, signal?: AbortSignal) => {
        waits++;
        return new Promise<void>((resolve, reject) => {
          const t = setTimeout(resolve, ms);
          signal?.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
        });
      };
      const ac = new AbortController();
      const handler = createDeadLetterHandler({ config, store: downStore, sleep });
      const storing = handler(failed(4), ac.signal);
      storing.catch(() => undefined);
      await waitFor(async () => waits >= 2, { what: 'two failed inserts' });
      const abortedAt = Date.now();
      ac.abort();
      const err = await rejection(storing);
      expect(Date.now() - abortedAt).to.be.below(1000);
      expect((err as PgceError).code).to.equal(ErrorCodes.DELIVERY_ABORTED);
      await downPool.end();
    });

    it('an abort while the dead-letter sink is being retried rejects too', async () => {
      dlsReceiver.respondWith(() => ({ status: 503 }));
      const cfg = testConfig(db, { deadLetterSink: dlsReceiver.url });
      const slow = { ...cfg, delivery: { ...cfg.delivery, backoffDelayMs: 30_000, backoffMaxMs: 30_000 } };
      const handler = createDeadLetterHandler({ config: slow, store });
      const ac = new AbortController();
      const storing = handler(failed(5), ac.signal);
      storing.catch(() => undefined);
      await dlsReceiver.waitFor(1);
      ac.abort();
      const err = await rejection(storing);
      await handler.close();
      expect((err as PgceError).code).to.equal(ErrorCodes.DELIVERY_ABORTED);
      expect(await store.count()).to.equal(0);
    });
  });

  describe('replay (the function)', () => {
    beforeEach(async () => {
      await createTable(db, config);
      await store.purge();
    });

    it('sends each row to the destination it recorded (resolved by name), not to the configured handler', async () => {
      // The configured handler is an HTTP sink nobody listens on: a replay that used it would fail.
      const cfg = testConfig(db, { sink: `http://127.0.0.1:${await freePort()}/` });
      const handler = createDeadLetterHandler({ config: cfg, store });
      await handler(failed(6), new AbortController().signal);
      await handler.close();
      const accepted: CloudEvent<unknown>[] = [];
      const memory: Sink = {
        name: 'memory',
        send: async (e) => void accepted.push(e),
        close: async () => undefined,
        describe: () => 'memory',
      };
      const printed: string[] = [];
      const write = process.stdout.write;
      process.stdout.write = ((chunk: string) => printed.push(String(chunk)) > 0) as typeof process.stdout.write;
      let code: number;
      const asked: string[] = [];
      try {
        code = await replay(cfg, {
          destination: (name) => (asked.push(name), { name, sink: memory, batchSize: 1 }),
          retry: 0,
          json: false,
          rows: async function* (s) {
            yield* await s.list({ withEvent: true });
          },
        });
      } finally {
        process.stdout.write = write;
      }
      expect(code, printed.join('')).to.equal(0);
      expect(accepted.map((e) => e.toJSON())).to.deep.equal([event(6).toJSON()]);
      expect(asked, 'the row recorded failed(6)\'s destination').to.deep.equal(['default']);
      expect(await store.count()).to.equal(0);
    });
  });
});

describe('pg-cloudevents dead-letters (CLI, real PostgreSQL and receiver)', function () {
  // Several CLI runs per test: generous for a busy machine, not a speed assertion.
  this.timeout(180_000);
  let db: TestDatabase;
  let pool: Pool;
  let receiver: Receiver;
  let store: DeadLetterStore;
  let env: Record<string, string>;

  /** A configuration like the default one of these tests, without `delivery.retry` unless given. */
  function configFile(opts: { retry?: number; mode?: 'binary' | 'structured' } = {}): string {
    const retry = opts.retry === undefined ? '' : `  retry: ${opts.retry}\n`;
    const mode = opts.mode ? `, mode: ${opts.mode}` : '';
    return writeTempFile(
      'dl.yaml',
      `${FAST_DELIVERY_YAML}${retry}sink: { oidcTokenPath: ${join(NO_DIR, 'token')}${mode} }\ndeadLetters: { schema: pgcloudevents }\n`,
    );
  }

  async function cli(args: string[], extra: Record<string, string> = {}) {
    const p = spawnCli(['dead-letters', ...args], { ...env, LOG_LEVEL: 'warn', ...extra });
    const { code } = await p.exit();
    return { code, stdout: p.stdout(), stderr: p.stderr() };
  }

  before(async () => {
    db = await createTestDatabase(`pgce_e2_cli_${RUN}`);
    pool = new Pool({ connectionString: db.url, max: 2 });
    receiver = await startReceiver();
    const config = testConfig(db);
    await createTable(db, config);
    store = new DeadLetterStore(knexOn(pool), config.deadLetters);
    env = {
      DATABASE_URL: db.url,
      PG_CLOUDEVENTS_TABLES: 'public.items',
      K_SINK: receiver.url,
      CLOUDEVENTS_HANDLER: 'http',
      PG_CLOUDEVENTS_CONFIG: configFile({ retry: 2 }),
    };
  });
  beforeEach(async () => {
    await store.purge();
    receiver.respondWith(undefined);
    receiver.requests.length = 0;
    receiver.events.length = 0;
    receiver.accepted.length = 0;
  });
  after(async function () {
    await pool?.end();
    await receiver?.close();
    if (this.currentTest?.state !== 'failed') await db?.drop();
  });

  it('list shows a table; --json prints every row with its event', async () => {
    const a = await store.insert(failed(1));
    const b = await store.insert({ ...failed(2, new DeliveryError('sink answered 500 Internal Server Error: boom\nline two', { status: 500 }), 500), attempts: 11 });
    const table = await cli(['list']);
    expect(table.code, table.stderr).to.equal(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).to.match(/^ID\s+CREATED\s+EVENT ID\s+DESTINATION\s+SUBJECT\s+STATUS\s+ATTEMPTS\s+ERROR$/);
    expect(lines[1]).to.match(new RegExp(`^${a}\\s+\\d{4}-\\d\\d-\\d\\dT\\S+Z\\s+00000000016B3748-00000001\\s+default\\s+DCE:public.items/1\\s+400\\s+3\\s+sink answered 400 Bad Request: nope$`));
    expect(lines[2]).to.match(new RegExp(`^${b}\\s.*\\s500\\s+11\\s+sink answered 500 Internal Server Error: boom line two$`));
    expect(lines[3]).to.equal('2 dead letter(s) in pgcloudevents.dead_letters');

    const json = await cli(['list', '--json']);
    expect(json.code, json.stderr).to.equal(0);
    const rows = JSON.parse(json.stdout);
    expect(rows.map((r: { id: string }) => r.id)).to.deep.equal([a, b]);
    expect(rows[0]).to.include({ eventId: event(1).id, status: 400, attempts: 3, commitLsn: '0/16B3748', destination: 'default' });
    expect(rows[1].event).to.deep.equal(JSON.parse(event(2).toString()));
    expect(json.stdout, 'the event spliced in as stored').to.include(`"event":${structuredJson(event(2))}}`);

    await store.purge();
    expect((await cli(['list'])).stdout).to.equal('no dead letters in pgcloudevents.dead_letters\n');
    expect(JSON.parse((await cli(['list', '--json'])).stdout)).to.deep.equal([]);
  });

  it('replay --id delivers through the sink and removes the row', async () => {
    const keep = await store.insert(failed(1));
    const id = await store.insert(failed(2));
    const r = await cli(['replay', '--id', id]);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.include(`delivered ${id} (event ${event(2).id}) after 1 attempt(s); removed`);
    expect(receiver.errors).to.deep.equal([]);
    expect(receiver.events.map((e) => e.toJSON())).to.deep.equal([event(2).toJSON()]);
    expect((await store.list()).map((row) => row.id)).to.deep.equal([keep]);
  });

  it('replay sends each row back to the destination it recorded: a Redis broker r and the default HTTP receiver (real Redis)', async () => {
    const stream = `pgce_dlq_${RUN}_${Date.now()}`;
    const redis = new Redis('redis://127.0.0.1:6379');
    const broker = writeTempFile('dl-r.yaml', `${FAST_DELIVERY_YAML}  retry: 2
sink: { oidcTokenPath: ${join(NO_DIR, 'token')} }
deadLetters: { schema: pgcloudevents }
brokers:
  r: { type: redis, conn: { url: "redis://127.0.0.1:6379" }, params: { stream: "${stream}" } }
`);
    try {
      const toR = await store.insert({ ...failed(1), destination: { name: 'r', sink: CONSOLE.sink, batchSize: 1 } });
      const toDefault = await store.insert({ ...failed(2), destination: { name: 'default', sink: CONSOLE.sink, batchSize: 1 } });
      const r = await cli(['replay', '--all'], { PG_CLOUDEVENTS_CONFIG: broker });
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      expect(r.stdout).to.include(`delivered ${toR} (event ${event(1).id})`);
      expect(r.stdout).to.include(`delivered ${toDefault} (event ${event(2).id})`);
      expect(receiver.events.map((e) => e.id), 'only the default row reaches the HTTP receiver').to.deep.equal([event(2).id]);
      const entries = await redis.xrange(stream, '-', '+');
      expect(entries.map(([, f]) => f[f.indexOf('id') + 1]), 'only the r row reaches the stream').to.deep.equal([event(1).id]);
      expect(await store.count()).to.equal(0);
    } finally {
      await redis.del(stream);
      redis.disconnect();
    }
  });

  it('a row whose destination no longer exists (a removed broker) is kept and named, exit 1; the others go where they belong; --destination filters', async () => {
    const gone = await store.insert({ ...failed(1), destination: { name: 'removed_broker', sink: CONSOLE.sink, batchSize: 1 } });
    const toDefault = await store.insert({ ...failed(2), destination: { name: 'default', sink: CONSOLE.sink, batchSize: 1 } });
    const third = await store.insert({ ...failed(3), destination: { name: 'default', sink: CONSOLE.sink, batchSize: 1 } });
    const only = await cli(['replay', '--all', '--destination', 'default', '--json']);
    expect(only.code, only.stderr).to.equal(0);
    expect(JSON.parse(only.stdout).results.map((x: { id: string; destination: string }) => [x.id, x.destination])).to.deep.equal([
      [toDefault, 'default'], [third, 'default'],
    ]);
    expect(receiver.events.map((e) => e.id)).to.deep.equal([event(2).id, event(3).id]);
    const r = await cli(['replay', '--all']);
    expect(r.code, r.stdout + r.stderr).to.equal(1);
    expect(r.stdout).to.include(`kept      ${gone} (event ${event(1).id}): destination removed_broker not found: `);
    expect(r.stdout).to.include('not found: destination(s) removed_broker');
    expect(r.stdout).to.include(`kept in pgcloudevents.dead_letters: 1 dead letter(s): id ${gone}`);
    expect(receiver.events, 'never sent elsewhere').to.have.length(2);
    const [row] = await store.list();
    expect(row).to.include({ id: gone, destination: 'removed_broker', attempts: 3 });
  });

  it('replay --all: a 400 keeps its row (with the new error and attempts) and exits 1; the others are removed', async () => {
    const ids = [await store.insert(failed(1)), await store.insert(failed(2)), await store.insert(failed(3))];
    receiver.respondWith((req) => (req.headers['ce-subject'] === 'DCE:public.items/2' ? { status: 400, body: 'still bad' } : undefined));
    const r = await cli(['replay', '--all']);
    expect(r.code, r.stdout + r.stderr).to.equal(1);
    expect(r.stdout).to.include(`failed    ${ids[1]} (event ${event(2).id}) after 1 attempt(s): sink answered 400 Bad Request: still bad; kept`);
    expect(r.stdout).to.include('replay: 2 delivered and removed, 1 failed and kept');
    expect(r.stdout).to.include(`kept in pgcloudevents.dead_letters: 1 dead letter(s): id ${ids[1]}`);
    expect(receiver.accepted.map((e) => e.id)).to.deep.equal([event(1).id, event(3).id]);
    const left = await store.list();
    expect(left.map((row) => row.id)).to.deep.equal([ids[1]]);
    expect(left[0]).to.include({ attempts: 4, status: 400, error: 'sink answered 400 Bad Request: still bad' });
  });

  it('replay against a sink that keeps answering 503 ends after --retry (delivery.retry unset = forever): exit 1, every row kept and named; a 2xx sink then empties the table, exit 0', async () => {
    const ids = [await store.insert(failed(1)), await store.insert(failed(2)), await store.insert(failed(3))];
    receiver.respondWith(() => ({ status: 503 }));
    const forever = { PG_CLOUDEVENTS_CONFIG: configFile() };
    const r = await cli(['replay', '--all'], forever);
    expect(r.code, r.stdout + r.stderr).to.equal(1);
    // 1 + 3 retries (the default) of the first event; then the sink is taken for down and the
    // later rows are not tried.
    expect(receiver.requests.map((q) => q.headers['ce-id']), r.stdout).to.deep.equal(Array(4).fill(event(1).id));
    const what = `${ids[0]} (event ${event(1).id})`;
    for (let n = 1; n <= 3; n++) {
      expect(r.stdout).to.include(`retrying  attempt ${n}/4 for ${what} failed: sink answered 503 Service Unavailable; next attempt in `);
    }
    expect(r.stdout).to.include(`failed    ${what} after 4 attempt(s): sink answered 503 Service Unavailable; kept`);
    expect(r.stdout).to.include('stopped: the sink still failed after 3 retries (sink answered 503 Service Unavailable); the 2 later dead letter(s) were not tried');
    expect(r.stdout).to.include('replay: 0 delivered and removed, 1 failed and kept, 2 not tried and kept');
    expect(r.stdout).to.include(`kept in pgcloudevents.dead_letters: 3 dead letter(s): id ${ids[0]} and 2 not tried`);
    expect((await store.list()).map((row) => row.id)).to.deep.equal(ids);
    expect((await store.get(ids[0]))!.attempts).to.equal(3 + 4);

    receiver.requests.length = 0;
    const one = await cli(['replay', '--id', ids[1], '--retry', '1', '--json'], forever);
    expect(one.code).to.equal(1);
    expect(receiver.requests).to.have.length(2);
    expect(JSON.parse(one.stdout)).to.deep.include({ delivered: 0, failed: 1, skipped: 0, notTried: 0, kept: [ids[1]] });
    expect(one.stderr).to.include(`attempt 1/2 for ${ids[1]} (event ${event(2).id}) failed`);

    receiver.respondWith(undefined);
    const ok = await cli(['replay', '--all'], forever);
    expect(ok.code, ok.stdout + ok.stderr).to.equal(0);
    expect(ok.stdout).to.include('replay: 3 delivered and removed, 0 failed and kept');
    expect(ok.stdout).not.to.include('kept in');
    expect(receiver.accepted.map((e) => e.id)).to.deep.equal([event(1).id, event(2).id, event(3).id]);
    expect(await store.count()).to.equal(0);
  });

  it('an undecodable change: list shows it, replay skips it saying where its raw row is (exit 1), purge --id removes it', async () => {
    const good = await store.insert(failed(1));
    const bad = await store.insertUndecodable({
      eventId: '00000000016B3748-00000042', source: '/pg-cloudevents/pgce_e2_cli', partitionKey: 'public.items/42',
      commitLsn: 0x16b3748n, raw: '{"id":"42","price":"?"}', error: 'cannot build the event: unexpected value',
    });
    const table = await cli(['list']);
    expect(table.stdout.split('\n')[2]).to.match(new RegExp(`^${bad}\\s.*00000000016B3748-00000042\\s+default\\s+\\(undecodable\\)\\s+-\\s+0\\s+cannot build the event: unexpected value$`));
    const json = JSON.parse((await cli(['list', '--json'])).stdout);
    expect(json[1]).to.include({ id: bad, undecodable: true, event: null, rawChange: '{"id":"42","price":"?"}', type: null });
    expect(json[0]).to.include({ id: good, undecodable: false, rawChange: null });

    const r = await cli(['replay', '--all']);
    expect(r.code, r.stdout + r.stderr).to.equal(1);
    expect(r.stdout).to.include(
      `skipped   ${bad} (event 00000000016B3748-00000042): an undecodable change has no event and cannot be replayed ` +
        `(cannot build the event: unexpected value); its raw row is kept in pgcloudevents.dead_letters, row ${bad}, column raw_change`,
    );
    expect(r.stdout).to.include('replay: 1 delivered and removed, 0 failed and kept, 1 undecodable skipped and kept');
    expect(r.stdout).to.include(`kept in pgcloudevents.dead_letters: 1 dead letter(s): id ${bad}`);
    expect(receiver.accepted.map((e) => e.id)).to.deep.equal([event(1).id]);
    expect((await store.list()).map((row) => row.id)).to.deep.equal([bad]);
    const byId = await cli(['replay', '--id', bad, '--json']);
    expect(byId.code).to.equal(1);
    expect(JSON.parse(byId.stdout).results).to.deep.equal([{
      id: bad, eventId: '00000000016B3748-00000042', destination: 'default', partitionKey: 'public.items/42', sequence: null, outcome: 'skipped',
      attempts: 0, status: null, error: 'cannot build the event: unexpected value', undecodable: true, superseded: false,
      supersededBySequence: null,
    }]);

    const purged = await cli(['purge', '--id', bad]);
    expect(purged.code, purged.stderr).to.equal(0);
    expect(purged.stdout).to.equal(`purged dead letter ${bad} from pgcloudevents.dead_letters\n`);
    expect(await store.count()).to.equal(0);
    expect((await cli(['purge', '--id', bad])).code).to.equal(1);
  });

  for (const mode of ['structured', 'binary'] as const) {
    it(`replay sends byte for byte what failed (${mode} mode): U+0000 in a string, keys in an order jsonb would change, exact big numbers`, async () => {
      const original = event(5, {
        data: {
          zz: 'a\u0000b', a: { yy: [true, null, 'x\u0000'], b: 1 }, n: 0.1, note: 'naïve \u2603',
          // json/jsonb numbers as capture keeps them (exact digits, written verbatim).
          big: new RawJson('12345678901234567890'), tiny: [new RawJson('0.1000000000000000055511151231257827')],
        },
      });
      receiver.respondWith(() => ({ status: 400, body: 'refused' }));
      const cfg = testConfig(db, { sink: receiver.url });
      const sink = new HttpSink({ ...cfg.sink, mode });
      let error: DeliveryError | undefined;
      try {
        await sink.send(original);
      } catch (err) {
        error = err as DeliveryError;
      } finally {
        await sink.close();
      }
      expect(error?.status).to.equal(400);
      await createDeadLetterHandler({ config: cfg, store })(
        { ...failed(5), event: original, error: error!, status: 400, attempts: 1 }, new AbortController().signal,
      );
      const [first] = receiver.requests;
      receiver.respondWith(undefined);
      const r = await cli(['replay', '--all'], { PG_CLOUDEVENTS_CONFIG: configFile({ mode }) });
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      expect(receiver.requests).to.have.length(2);
      const replayed = receiver.requests[1];
      expect(replayed.mode).to.equal(mode);
      expect(Buffer.from(replayed.body)).to.deep.equal(Buffer.from(first.body));
      const ce = (headers: Record<string, string>) => Object.entries(headers).filter(([k]) => k.startsWith('ce-') || k === 'content-type');
      expect(ce(replayed.headers)).to.deep.equal(ce(first.headers));
      if (mode === 'structured') expect(replayed.body).to.equal(structuredJson(original));
      expect(replayed.body).to.include('"zz":"a\\u0000b","a":{"yy":[true,null,"x\\u0000"],"b":1}');
      expect(replayed.body).to.include('"big":12345678901234567890,"tiny":[0.1000000000000000055511151231257827]');
    });
  }

  it('replay of an unknown id exits 1; bad usage exits 2', async () => {
    const r = await cli(['replay', '--id', '999999']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.include('no dead letter with id 999999');
    for (const args of [['replay'], ['replay', '--id', '1', '--all'], ['replay', '--id', 'x'], ['purge', '--before', 'yesterday'], ['frobnicate'], []]) {
      const u = await cli(args);
      expect(u.code, args.join(' ')).to.equal(2);
      // The problem and a hint to the command's --help; no sub-command at all shows the help.
      expect(u.stderr, args.join(' ')).to.match(/^see: pg-cloudevents dead-letters( replay| purge)? --help$|^Usage: pg-cloudevents dead-letters /m);
    }
  });

  it('purge --before removes only older rows (duration or timestamp); purge removes the rest', async () => {
    const ids = [await store.insert(failed(1)), await store.insert(failed(2)), await store.insert(failed(3))];
    await db.query(`UPDATE pgcloudevents.dead_letters SET created_at = now() - interval '10 days' WHERE id = $1`, [ids[0]]);
    await db.query(`UPDATE pgcloudevents.dead_letters SET created_at = '2020-01-01T00:00:00Z' WHERE id = $1`, [ids[1]]);
    const old = await cli(['purge', '--before', '2021-01-01']);
    expect(old.code, old.stderr).to.equal(0);
    expect(old.stdout).to.equal('purged 1 dead letter(s) created before 2021-01-01T00:00:00.000Z from pgcloudevents.dead_letters\n');
    const week = await cli(['purge', '--before', 'P7D']);
    expect(week.stdout).to.match(/^purged 1 dead letter\(s\) created before /);
    expect((await store.list()).map((r) => r.id)).to.deep.equal([ids[2]]);
    const all = await cli(['purge']);
    expect(all.stdout).to.equal('purged 1 dead letter(s) from pgcloudevents.dead_letters\n');
    expect(await store.count()).to.equal(0);
  });

  it('a missing table: a message that says to run setup, exit 1', async () => {
    const file = writeTempFile('dl2.yaml', `deadLetters: { schema: pgcloudevents, table: not_there }\n`);
    for (const args of [['list'], ['replay', '--all'], ['purge']]) {
      const r = await cli(args, { PG_CLOUDEVENTS_CONFIG: file });
      expect(r.code, args.join(' ')).to.equal(1);
      expect(r.stderr).to.include('the dead-letter table pgcloudevents.not_there does not exist: run `pg-cloudevents setup`');
    }
  });
});

describe('dead letters and newer state (real pipeline: run, PostgreSQL, receiver)', function () {
  this.timeout(180_000);

  it('an insert dead-lettered, then its row updated and delivered: replay warns naming the newer sequence, --json flags it', async () => {
    const db = await createTestDatabase(`pgce_e2_newer_${RUN}`);
    const receiver = await startReceiver();
    // The insert of row 1 is refused for good; everything else is accepted.
    receiver.respondWith((req) => {
      const body = JSON.parse(req.body) as { data: { id: number }; signal_kwargs: { created?: boolean } };
      return body.signal_kwargs.created && body.data.id === 1 ? { status: 400, body: 'refused' } : undefined;
    });
    await db.query('CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL)');
    const env = {
      DATABASE_URL: db.url,
      K_SINK: receiver.url,
      PG_CLOUDEVENTS_CONFIG: writeTempFile('newer.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: pgce_e2_newer_${RUN}, publication: pgce_e2_newer, statusInterval: PT0.2S }
sink: { oidcTokenPath: ${join(NO_DIR, 'token')} }
tables: [ t ]
`),
    };
    const run = spawnCli(['run'], { ...env, PORT: String(await freePort()) });
    try {
      await run.waitForLine(/capturing/, 60_000);
      await db.query('INSERT INTO t VALUES (1, 0)');
      await waitFor(async () => (await db.query('SELECT 1 FROM pgcloudevents.dead_letters')).rowCount === 1, {
        timeoutMs: 30_000, intervalMs: 100, what: 'the insert dead-lettered',
      });
      await db.query('UPDATE t SET v = 1 WHERE id = 1');
      const updates = () => receiver.accepted.filter((e) => e.subject === 'DCE:public.t/1');
      await waitFor(async () => updates().length > 0, { timeoutMs: 30_000, intervalMs: 100, what: 'the update delivered' });
      const newer = String(updates()[0].sequence);
      const { rows: [dead] } = await db.query('SELECT id::text AS id, event_id, sequence, destination FROM pgcloudevents.dead_letters');
      expect(dead.destination, 'the default route\'s destination').to.equal('default');
      const listed = spawnCli(['dead-letters', 'list'], { ...env, LOG_LEVEL: 'warn' });
      expect((await listed.exit()).code).to.equal(0);
      expect(listed.stdout()).to.match(new RegExp(`^${dead.id}\\s+\\S+\\s+${dead.event_id}\\s+default\\s`, 'm'));
      const listedJson = spawnCli(['dead-letters', 'list', '--json'], { ...env, LOG_LEVEL: 'warn' });
      expect((await listedJson.exit()).code).to.equal(0);
      expect(JSON.parse(listedJson.stdout())[0]).to.include({ id: dead.id, destination: 'default' });
      expect(dead.sequence < newer, 'the update comes after the insert in the change stream').to.equal(true);
      await waitFor(async () => (await db.query('SELECT superseded_by_sequence AS s FROM pgcloudevents.dead_letters')).rows[0].s === newer, {
        timeoutMs: 30_000, intervalMs: 100, what: 'the dead letter marked superseded by the update',
      });

      // The sink still refuses it: --json reports it superseded, and the row stays.
      const flagged = spawnCli(['dead-letters', 'replay', '--all', '--json', '--retry', '0'], { ...env, LOG_LEVEL: 'warn' });
      expect((await flagged.exit()).code).to.equal(1);
      const report = JSON.parse(flagged.stdout());
      expect(report.results).to.have.length(1);
      expect(report.results[0]).to.include({ id: dead.id, eventId: dead.event_id, outcome: 'failed', superseded: true, supersededBySequence: newer });
      expect(flagged.stderr()).to.include(`warning: ${dead.id} (event ${dead.event_id}): a newer event of public.t/1 (sequence ${newer}) was delivered`);

      // Accepted now: delivered (older state last, as warned) and removed.
      receiver.respondWith(undefined);
      const replay = spawnCli(['dead-letters', 'replay', '--all'], { ...env, LOG_LEVEL: 'warn' });
      expect((await replay.exit()).code, replay.stdout() + replay.stderr()).to.equal(0);
      expect(replay.stdout()).to.include(
        `warning   ${dead.id} (event ${dead.event_id}): a newer event of public.t/1 (sequence ${newer}) was delivered ` +
          'after it was dead-lettered; replaying it delivers the older state last',
      );
      expect(receiver.accepted.filter((e) => e.subject === 'DCE:public.t/1').map((e) => e.id)).to.deep.equal([newer, dead.event_id]);
      run.kill('SIGTERM');
      expect((await run.exit()).code).to.equal(0);
    } finally {
      run.kill('SIGKILL');
      await receiver.close();
    }
    await db.drop();
  });
});
