import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Client, Pool } from 'pg';
import type { InsertChange } from '../../src/capture/change';
import { applySteps } from '../../src/capture/setup';
import { loadConfig } from '../../src/config/load';
import type { Config } from '../../src/config/types';
import type { FailedDelivery } from '../../src/delivery/dead-letter';
import { createDeadLetterHandler } from '../../src/delivery/dead-letters/handler';
import { inspectDeadLetterTable, planDeadLetterSetup } from '../../src/delivery/dead-letters/ddl';
import { DeadLetterStore } from '../../src/delivery/dead-letters/store';
import { DeliveryError, ErrorCodes, PgceError } from '../../src/errors';
import { HttpSink } from '../../src/sinks/http';
import { createTestDatabase, waitFor, type TestDatabase } from './harness/postgres';
import { spawnCli } from './harness/process';
import { startReceiver, type Receiver } from './harness/receiver';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

const NO_DIR = join(tmpdir(), 'pgce-e2-no-such-dir');

function testConfig(db: TestDatabase, over: { sink?: string; deadLetterSink?: string; retry?: number } = {}): Config {
  const base = loadConfig({
    env: { DATABASE_URL: db.url, PG_CLOUDEVENTS_TABLES: 'public.items', ...(over.sink ? { K_SINK: over.sink, CLOUDEVENTS_HANDLER: 'http' } : { CLOUDEVENTS_HANDLER: 'console' }) },
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

function failed(ordinal: number, error: Error = new DeliveryError('sink answered 400 Bad Request: nope', { status: 400 }), status: number | undefined = 400): FailedDelivery {
  return {
    event: event(ordinal), change: change(ordinal), error, status, attempts: 3,
    firstAttemptAt: new Date('2024-05-01T10:00:01.000Z'), lastAttemptAt: new Date('2024-05-01T10:00:02.500Z'),
  };
}

async function createTable(db: TestDatabase, config: Config): Promise<void> {
  const client = new Client({ connectionString: db.url });
  await client.connect();
  try {
    const state = await inspectDeadLetterTable(client, config);
    await applySteps(client, planDeadLetterSetup(state, config));
  } finally {
    await client.end();
  }
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
    db = await createTestDatabase('pgce_e2_store');
    pool = new Pool({ connectionString: db.url, max: 3 });
    config = testConfig(db);
    store = new DeadLetterStore(pool, config.deadLetters);
  });
  after(async function () {
    await pool?.end();
    // Kept for inspection when a test failed (STYLE.md pattern 7).
    if (this.currentTest?.state !== 'failed') await db?.drop();
  });

  describe('table and store', () => {
    it('setup plan creates the table with the documented columns, idempotently', async () => {
      await createTable(db, config);
      // Applying the same DDL again (a second `setup`, a replica racing) changes nothing.
      await createTable(db, config);
      const rendered = planDeadLetterSetup({ tableExists: false }, config);
      const client = new Client({ connectionString: db.url });
      await client.connect();
      await applySteps(client, rendered).finally(() => client.end());
      const { rows } = await db.query(
        `SELECT column_name, data_type, is_nullable FROM information_schema.columns
          WHERE table_schema = 'pgcloudevents' AND table_name = 'dead_letters' ORDER BY ordinal_position`,
      );
      expect(rows.map((r) => `${r.column_name} ${r.data_type} ${r.is_nullable}`)).to.deep.equal([
        'id bigint NO', 'event_id text NO', 'source text YES', 'type text YES', 'subject text YES',
        'partition_key text YES', 'event jsonb NO', 'error text NO', 'status integer YES', 'attempts integer NO',
        'first_attempt_at timestamp with time zone NO', 'last_attempt_at timestamp with time zone NO',
        'created_at timestamp with time zone NO', 'commit_lsn pg_lsn YES',
      ]);
      const idx = await db.query(`SELECT indexdef FROM pg_indexes WHERE schemaname = 'pgcloudevents' AND indexname = 'dead_letters_created_at_idx'`);
      expect(idx.rows[0].indexdef).to.include('(created_at)');
      expect(await inspectDeadLetterTable(pool, config)).to.deep.equal({
        schemaExists: true, tableExists: true, empty: true, otherObjectsInSchema: 0,
      });
      await store.insert(failed(1));
      expect((await inspectDeadLetterTable(pool, config)).empty).to.equal(false);
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
      // Replayable: the stored JSON rebuilds the very event.
      expect(new CloudEvent(row!.event as never).toJSON()).to.deep.equal(event(2).toJSON());

      const page1 = await store.list({ limit: 2 });
      const page2 = await store.list({ limit: 2, afterId: page1[1].id });
      const page3 = await store.list({ limit: 2, afterId: page2[1].id });
      expect([...page1, ...page2, ...page3].map((r) => r.id)).to.deep.equal(ids);
      expect(page1[0]).not.to.have.property('event');
      expect((await store.list({ limit: 1, withEvent: true }))[0].event).to.deep.equal(JSON.parse(event(1).toString()));

      expect(await store.delete(ids[0])).to.equal(true);
      expect(await store.delete(ids[0])).to.equal(false);
      expect(await store.get(ids[0])).to.equal(undefined);

      await db.query(`UPDATE pgcloudevents.dead_letters SET created_at = now() - interval '10 days' WHERE id = ANY($1::bigint[])`, [[ids[1], ids[2]]]);
      expect(await store.purge({ before: new Date(Date.now() - 7 * 86_400_000) })).to.equal(2);
      expect((await store.list()).map((r) => r.id)).to.deep.equal([ids[3], ids[4]]);
      expect(await store.purge()).to.equal(2);
      expect(await store.count()).to.equal(0);
    });

    it('recordFailure adds attempts and replaces the error; NUL characters do not block a row', async () => {
      const id = await store.insert({ ...failed(9, new Error('bad\u0000byte')), event: event(9, { data: { s: 'a\u0000b' } }) });
      await store.recordFailure(id, { error: new DeliveryError('sink answered 503', { status: 503 }), status: 503, attempts: 4 });
      const row = await store.get(id);
      expect(row).to.include({ attempts: 7, status: 503, error: 'sink answered 503' });
      expect((row!.event as { data: { s: string } }).data.s).to.equal('a\uFFFDb');
      await store.purge();
    });

    it('a missing table is a clear error naming setup', async () => {
      const other = new DeadLetterStore(pool, { schema: 'pgcloudevents', table: 'nope' });
      const err = await rejection(other.count());
      expect(err).to.be.instanceOf(PgceError);
      expect((err as PgceError).code).to.equal(ErrorCodes.UNKNOWN_TABLE);
      expect(err.message).to.match(/pgcloudevents\.nope does not exist: run `pg-cloudevents setup`/);
      const noSchema = new DeadLetterStore(pool, { schema: 'nowhere', table: 'dead_letters' });
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
        return { ...failed(ordinal), error: err as DeliveryError, status: (err as DeliveryError).status, attempts: 1 };
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
      expect(row.event).to.deep.equal(JSON.parse(event(1).toString()));
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
      const downStore = new DeadLetterStore(downPool, config.deadLetters);
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
});

describe('pg-cloudevents dead-letters (CLI, real PostgreSQL and receiver)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let pool: Pool;
  let receiver: Receiver;
  let store: DeadLetterStore;
  let env: Record<string, string>;

  async function cli(args: string[], extra: Record<string, string> = {}) {
    const p = spawnCli(['dead-letters', ...args], { ...env, LOG_LEVEL: 'warn', ...extra });
    const { code } = await p.exit();
    return { code, stdout: p.stdout(), stderr: p.stderr() };
  }

  before(async () => {
    db = await createTestDatabase('pgce_e2_cli');
    pool = new Pool({ connectionString: db.url, max: 2 });
    receiver = await startReceiver();
    const config = testConfig(db);
    await createTable(db, config);
    store = new DeadLetterStore(pool, config.deadLetters);
    env = {
      DATABASE_URL: db.url,
      PG_CLOUDEVENTS_TABLES: 'public.items',
      K_SINK: receiver.url,
      CLOUDEVENTS_HANDLER: 'http',
      PG_CLOUDEVENTS_CONFIG: writeTempFile(
        'dl.yaml',
        `${FAST_DELIVERY_YAML}  retry: 2\nsink: { oidcTokenPath: ${join(NO_DIR, 'token')} }\ndeadLetters: { schema: pgcloudevents }\n`,
      ),
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
    expect(lines[0]).to.match(/^ID\s+CREATED\s+EVENT ID\s+SUBJECT\s+STATUS\s+ATTEMPTS\s+ERROR$/);
    expect(lines[1]).to.match(new RegExp(`^${a}\\s+\\d{4}-\\d\\d-\\d\\dT\\S+Z\\s+00000000016B3748-00000001\\s+DCE:public.items/1\\s+400\\s+3\\s+sink answered 400 Bad Request: nope$`));
    expect(lines[2]).to.match(new RegExp(`^${b}\\s.*\\s500\\s+11\\s+sink answered 500 Internal Server Error: boom line two$`));
    expect(lines[3]).to.equal('2 dead letter(s) in pgcloudevents.dead_letters');

    const json = await cli(['list', '--json']);
    expect(json.code, json.stderr).to.equal(0);
    const rows = JSON.parse(json.stdout);
    expect(rows.map((r: { id: string }) => r.id)).to.deep.equal([a, b]);
    expect(rows[0]).to.include({ eventId: event(1).id, status: 400, attempts: 3, commitLsn: '0/16B3748' });
    expect(rows[1].event).to.deep.equal(JSON.parse(event(2).toString()));

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

  it('replay --all: a 400 keeps its row (with the new error and attempts) and exits 1; the others are removed', async () => {
    const ids = [await store.insert(failed(1)), await store.insert(failed(2)), await store.insert(failed(3))];
    receiver.respondWith((req) => (req.headers['ce-subject'] === 'DCE:public.items/2' ? { status: 400, body: 'still bad' } : undefined));
    const r = await cli(['replay', '--all']);
    expect(r.code, r.stdout + r.stderr).to.equal(1);
    expect(r.stdout).to.include(`failed    ${ids[1]} (event ${event(2).id}) after 1 attempt(s): sink answered 400 Bad Request: still bad; kept`);
    expect(r.stdout).to.include('replay: 2 delivered and removed, 1 failed and kept');
    expect(receiver.accepted.map((e) => e.id)).to.deep.equal([event(1).id, event(3).id]);
    const left = await store.list();
    expect(left.map((row) => row.id)).to.deep.equal([ids[1]]);
    expect(left[0]).to.include({ attempts: 4, status: 400, error: 'sink answered 400 Bad Request: still bad' });
  });

  it('replay against a sink that stays at 503 gives up after delivery.retry and keeps the row', async () => {
    const id = await store.insert(failed(1));
    receiver.respondWith(() => ({ status: 503 }));
    const r = await cli(['replay', '--id', id]);
    expect(r.code).to.equal(1);
    expect(receiver.requests).to.have.length(3); // retry: 2
    expect(await store.count()).to.equal(1);
  });

  it('replay of an unknown id exits 1; bad usage exits 2', async () => {
    const r = await cli(['replay', '--id', '999999']);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.include('no dead letter with id 999999');
    for (const args of [['replay'], ['replay', '--id', '1', '--all'], ['replay', '--id', 'x'], ['purge', '--before', 'yesterday'], ['frobnicate'], []]) {
      const u = await cli(args);
      expect(u.code, args.join(' ')).to.equal(2);
      expect(u.stderr).to.include('usage: pg-cloudevents dead-letters');
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
