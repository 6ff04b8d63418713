import { expect } from 'chai';
import type { CloudEvent } from 'cloudevents';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { acknowledgedEverything, createTestDatabase, slotInfo, waitFor, type TestDatabase } from './harness/postgres';
import { spawnCli } from './harness/process';
import { startReceiver, type Receiver } from './harness/receiver';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

/** Unique per run: several worktrees share the server, and slot names are cluster-wide. */
const suffix = () => `hs_${randomBytes(4).toString('hex')}`;

interface Column { name: string; type: string; key: boolean }
interface SchemaData { old: Column[]; new: Column[]; added: string[]; dropped: string[]; changed: unknown[] }

const isSchema = (e: CloudEvent<unknown>) => e.type === 'orm.schema_change';
const rowKeys = (e: CloudEvent<unknown>) => Object.keys((e.data as { data: Record<string, unknown> }).data).sort();
const names = (cols: Column[]) => cols.map((c) => c.name).sort();
/** The position of an event: a schema change's is its first row's (its id without `-schema`). */
const position = (e: CloudEvent<unknown>) => e.id.replace(/-schema$/, '');

/** Inserts one row at a time on its own connection until stopped; `count` says how many are in. */
function startWriter(db: TestDatabase) {
  const client = new Client({ connectionString: db.url });
  let stop = false;
  let count = 0;
  const done = (async () => {
    await client.connect();
    try {
      // Only `id`, which every shape keeps, so the same statement works across every ALTER.
      while (!stop) await client.query('INSERT INTO hs_items (id) VALUES ($1)', [++count]);
    } finally {
      await client.end();
    }
  })();
  return { count: () => count, stop: async () => { stop = true; await done; } };
}

async function runCli(db: TestDatabase, name: string, receiver: Receiver, events: string) {
  const config = writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: ${name}, publication: ${name}, statusInterval: PT0.2S, reconnectDelay: PT0.1S }
deadLetters: { schema: ${name}_dl, table: failed }
tables: [ hs_items ]
events: ${events}
triggers:
  - name: hs-saved
    tables: [hs_items]
    on: [post_save]
    actions: [{ cloudevent: { type: com.example.hs.saved } }]
`);
  const cli = spawnCli(['run'], { DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(await freePort()) });
  await cli.waitForLine(/capturing/, 30_000);
  return cli;
}

describe('schema-change events end to end (real PostgreSQL, real HTTP receiver)', function () {
  this.timeout(120_000);

  it('add, drop, rename and retype a column while writing: one event each, before the first row in the new shape; none after a reconnect', async () => {
    const name = `pgce_${suffix()}`;
    const db = await createTestDatabase(name);
    const receiver = await startReceiver();
    // Schema events answered late: without the barrier, rows in the new shape would overtake them.
    receiver.respondWith((req) => (req.body.includes('schema_change') || req.headers['ce-type'] === 'orm.schema_change' ? { status: 202, delayMs: 150 } : undefined));
    await db.query('CREATE TABLE hs_items (id int PRIMARY KEY, n int, label varchar(10))');
    const cli = await runCli(db, name, receiver, '{ schemaChanges: true }');
    const writer = startWriter(db);
    const moreRows = async (what: string) => {
      const from = writer.count();
      await waitFor(async () => writer.count() >= from + 5, { what: `5 rows after ${what}` });
    };
    try {
      await moreRows('start');
      await db.query('ALTER TABLE hs_items ADD COLUMN note text');
      await moreRows('add');
      await db.query('ALTER TABLE hs_items DROP COLUMN n');
      await moreRows('drop');
      await db.query('ALTER TABLE hs_items RENAME COLUMN label TO title');
      await moreRows('rename');
      await db.query('ALTER TABLE hs_items ALTER COLUMN id TYPE bigint, ALTER COLUMN title TYPE varchar(20)');
      await moreRows('retype');
      await writer.stop();
      await acknowledgedEverything(db, name);

      const events = receiver.accepted.filter((e) => e.type !== 'com.example.hs.saved');
      const schema = events.filter(isSchema);
      const S0: Column[] = [{ name: 'id', type: 'integer', key: true }, { name: 'n', type: 'integer', key: false }, { name: 'label', type: 'character varying(10)', key: false }];
      const S1 = [...S0, { name: 'note', type: 'text', key: false }];
      const S2 = S1.filter((c) => c.name !== 'n');
      const S3 = S2.map((c) => (c.name === 'label' ? { ...c, name: 'title' } : c));
      const S4 = [{ name: 'id', type: 'bigint', key: true }, { name: 'title', type: 'character varying(20)', key: false }, S3[2]];
      expect(schema.map((e) => (e.data as SchemaData).old)).to.deep.equal([S0, S1, S2, S3]);
      expect(schema.map((e) => (e.data as SchemaData).new)).to.deep.equal([S1, S2, S3, S4]);
      expect(schema.map((e) => e.data as SchemaData).map(({ added, dropped, changed }) => ({ added, dropped, changed: changed.length }))).to.deep.equal([
        { added: ['note'], dropped: [], changed: 0 },
        { added: [], dropped: ['n'], changed: 0 },
        { added: ['title'], dropped: ['label'], changed: 0 },
        { added: [], dropped: [], changed: 2 },
      ]);
      for (const e of schema) expect(e.subject).to.equal('DCE:public.hs_items');
      expect(new Set(schema.map((e) => e.id)).size, 'ids are distinct').to.equal(4);

      // Every row: the shape of the last schema change at or before its position, and it arrived
      // after that schema change.
      const rows = events.filter((e) => !isSchema(e));
      expect(rows.length).to.equal(writer.count());
      const shapes = [S0, S1, S2, S3, S4];
      for (const row of rows) {
        let shape = 0;
        while (shape < schema.length && position(schema[shape]) <= position(row)) shape++;
        expect(rowKeys(row), `row ${row.id}`).to.deep.equal(names(shapes[shape]));
        if (shape > 0) {
          expect(receiver.accepted.indexOf(row), `row ${row.id} after ${schema[shape - 1].id}`).to.be.greaterThan(receiver.accepted.indexOf(schema[shape - 1]));
        }
      }
      // The trigger ignores schema changes: one derived event per row, none for a schema change.
      expect(receiver.accepted.filter((e) => e.type === 'com.example.hs.saved')).to.have.length(rows.length);

      // A reconnect sends the Relation message again: not a schema change.
      const before = await slotInfo(db.url, name);
      await db.query('SELECT pg_terminate_backend($1)', [before!.activePid]);
      await waitFor(async () => {
        const now = await slotInfo(db.url, name);
        return now?.activePid != null && now.activePid !== before!.activePid;
      }, { what: 'capture to reconnect', timeoutMs: 30_000 });
      await db.query("INSERT INTO hs_items (id, title) VALUES (100000, 'after')");
      await acknowledgedEverything(db, name);
      expect(receiver.accepted.filter(isSchema)).to.have.length(4);
      expect(receiver.accepted.some((e) => e.subject === 'DCE:public.hs_items/100000' && e.type === 'orm.post_save')).to.equal(true);
      expect(receiver.errors).to.deep.equal([]);
    } finally {
      await writer.stop().catch(() => undefined);
      cli.kill('SIGTERM');
      expect((await cli.exit()).code).to.equal(0);
      await receiver.close();
      await db.drop();
    }
  });

  it('off by default: an ALTER TABLE gives no schema_change event, the rows still flow', async () => {
    const name = `pgce_${suffix()}`;
    const db = await createTestDatabase(name);
    const receiver = await startReceiver();
    await db.query('CREATE TABLE hs_items (id int PRIMARY KEY, label varchar(10))');
    const cli = await runCli(db, name, receiver, '{ enabled: true }');
    try {
      await db.query('INSERT INTO hs_items VALUES (1, null)');
      await db.query('ALTER TABLE hs_items ADD COLUMN note text');
      await db.query("INSERT INTO hs_items VALUES (2, null, 'x')");
      await acknowledgedEverything(db, name);
      expect(receiver.accepted.filter(isSchema)).to.deep.equal([]);
      expect(receiver.accepted.filter((e) => e.type === 'orm.post_save').map(rowKeys)).to.deep.equal([['id', 'label'], ['id', 'label', 'note']]);
    } finally {
      cli.kill('SIGTERM');
      expect((await cli.exit()).code).to.equal(0);
      await receiver.close();
      await db.drop();
    }
  });
});
