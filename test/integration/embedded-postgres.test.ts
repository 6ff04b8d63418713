import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, type Notification } from 'pg';
import { createPool } from '../../src/pg/db';
import { LeaderElector } from '../../src/pg/leader';
import { migrateSchema } from '../../src/pg/schema/migrate';
import { EMBEDDED_SERVER_PATH, startEmbeddedPostgres, type EmbeddedPostgres } from './harness/embedded-postgres';
import { waitFor } from './harness/postgres';
import { spawnCli } from './harness/process';

/**
 * scripts/pglite-server.js, the demo's embedded PostgreSQL (PGlite in WebAssembly), through `pg`
 * and knex as the product uses them: what capture by triggers needs (plpgsql row and TRUNCATE
 * triggers writing jsonb, transaction ids and snapshots, NOTIFY to a LISTENing connection), several
 * pooled connections on PGlite's one session, the product's migrations and leader election, and a
 * data directory that survives restarts.
 */

const JOURNAL_SQL = `
  CREATE SCHEMA pgce_pgl;
  CREATE TABLE pgce_pgl.journal (
    id bigserial PRIMARY KEY, xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    op text NOT NULL, tbl text NOT NULL, new jsonb, old jsonb);
  CREATE TABLE public.pgl_orders (id serial PRIMARY KEY, customer text, total numeric(10,2));
  CREATE FUNCTION pgce_pgl.capture() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    INSERT INTO pgce_pgl.journal (op, tbl, new, old) VALUES (TG_OP, TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME,
      CASE WHEN TG_LEVEL = 'ROW' AND TG_OP <> 'DELETE' THEN to_jsonb(NEW) END,
      CASE WHEN TG_LEVEL = 'ROW' AND TG_OP <> 'INSERT' THEN to_jsonb(OLD) END);
    PERFORM pg_notify('pgce_pgl_journal', TG_OP);
    RETURN NULL;
  END $$;
  CREATE TRIGGER capture AFTER INSERT OR UPDATE OR DELETE ON public.pgl_orders
    FOR EACH ROW EXECUTE FUNCTION pgce_pgl.capture();
  CREATE TRIGGER capture_truncate AFTER TRUNCATE ON public.pgl_orders
    FOR EACH STATEMENT EXECUTE FUNCTION pgce_pgl.capture();`;

async function connect(url: string): Promise<Client> {
  const c = new Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

/** Frontend messages written by hand (protocol 3.0, §55.7), for a client that sends them in pieces. */
const wire = {
  frame: (type: string, ...parts: Buffer[]) => {
    const body = Buffer.concat(parts);
    const head = Buffer.alloc(5);
    head.write(type, 0, 'latin1');
    head.writeInt32BE(4 + body.length, 1);
    return Buffer.concat([head, body]);
  },
  cstr: (s: string) => Buffer.from(`${s}\0`, 'utf8'),
  int16: (n: number) => Buffer.from([n >> 8, n & 0xff]),
  startup() {
    const body = Buffer.concat([Buffer.from([0, 3, 0, 0]), this.cstr('user'), this.cstr('postgres'), this.cstr('database'), this.cstr('postgres'), Buffer.from([0])]);
    const len = Buffer.alloc(4);
    len.writeInt32BE(4 + body.length);
    return Buffer.concat([len, body]);
  },
  /** Parse and Bind of the unnamed statement and portal, no parameters. */
  parseBind(sql: string) {
    return Buffer.concat([this.frame('P', this.cstr(''), this.cstr(sql), this.int16(0)),
      this.frame('B', this.cstr(''), this.cstr(''), this.int16(0), this.int16(0), this.int16(0))]);
  },
  /** Describe and Execute of the unnamed portal, then Sync. */
  executeSync() {
    return Buffer.concat([this.frame('D', Buffer.from('P'), this.cstr('')), this.frame('E', this.cstr(''), Buffer.alloc(4)), this.frame('S')]);
  },
};

/** Resolves with the value, or with `late` if `p` has not settled within `ms` (p goes on). */
function within<T>(p: Promise<T>, ms: number, late: T): Promise<T> {
  return Promise.race([p, new Promise<T>((resolve) => setTimeout(() => resolve(late), ms).unref())]);
}

describe('embedded PostgreSQL (scripts/pglite-server.js)', function () {
  this.timeout(90_000);
  let server: EmbeddedPostgres;
  const clients: Client[] = [];
  const client = async () => {
    const c = await connect(server.url);
    clients.push(c);
    return c;
  };

  before(async () => {
    server = await startEmbeddedPostgres();
    await (await client()).query(JOURNAL_SQL);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await server?.stop();
  });

  it('runs plpgsql AFTER row triggers and a TRUNCATE statement trigger writing jsonb and the transaction id', async () => {
    const c = await client();
    await c.query('INSERT INTO public.pgl_orders (customer, total) VALUES ($1, $2)', ['ada', 9.99]);
    await c.query('UPDATE public.pgl_orders SET total = total + 1');
    await c.query('DELETE FROM public.pgl_orders');
    await c.query('TRUNCATE public.pgl_orders');
    const { rows } = await c.query('SELECT op, xid::text AS xid, new, old FROM pgce_pgl.journal ORDER BY id');
    expect(rows.map((r) => [r.op, r.new, r.old])).to.deep.equal([
      ['INSERT', { id: 1, customer: 'ada', total: 9.99 }, null],
      ['UPDATE', { id: 1, customer: 'ada', total: 10.99 }, { id: 1, customer: 'ada', total: 9.99 }],
      ['DELETE', null, { id: 1, customer: 'ada', total: 10.99 }],
      ['TRUNCATE', null, null],
    ]);
    const xids = rows.map((r) => BigInt(r.xid));
    expect(new Set(xids).size, 'one transaction id per statement').to.equal(4);
    expect([...xids].sort((a, b) => (a < b ? -1 : 1))).to.deep.equal(xids);
    const snap = (await c.query(`SELECT pg_current_xact_id()::text AS xid, pg_snapshot_xmin(pg_current_snapshot())::text AS xmin`)).rows[0];
    // One session: no other transaction is ever in progress, so the snapshot's xmin is this one's.
    expect(BigInt(snap.xmin)).to.equal(BigInt(snap.xid));
    expect(BigInt(snap.xid) > xids[3]).to.equal(true);
  });

  it('delivers a trigger\'s pg_notify to the connection that LISTENs, not to the one that wrote', async () => {
    const listener = await client();
    const writer = await client();
    const heard: string[] = [];
    const writerHeard: string[] = [];
    listener.on('notification', (n: Notification) => heard.push(n.payload ?? ''));
    writer.on('notification', (n: Notification) => writerHeard.push(n.payload ?? ''));
    await listener.query('LISTEN pgce_pgl_journal');
    await writer.query('BEGIN');
    await writer.query(`INSERT INTO public.pgl_orders (customer, total) VALUES ('grace', 1)`);
    await writer.query(`UPDATE public.pgl_orders SET total = 2`);
    await writer.query('COMMIT');
    await waitFor(async () => heard.length >= 2, { timeoutMs: 5_000, what: 'two notifications on the listening connection' });
    expect(heard).to.deep.equal(['INSERT', 'UPDATE']);
    expect(writerHeard).to.deep.equal([]);
  });

  it('keeps a transaction of one pooled connection whole: another connection runs only after its COMMIT', async () => {
    const pool = createPool(server.url, 4);
    try {
      const a = await pool.connect();
      const b = await pool.connect();
      try {
        await a.query('BEGIN');
        await a.query(`INSERT INTO public.pgl_orders (customer, total) VALUES ('linus', 3)`);
        const count = b.query(`SELECT count(*)::int AS n FROM public.pgl_orders WHERE customer = 'linus'`);
        expect(await within(count.then(() => 'answered'), 300, 'waiting'), 'while A is in its transaction').to.equal('waiting');
        await a.query('COMMIT');
        expect((await count).rows[0].n, 'B ran after A committed').to.equal(1);
      } finally {
        a.release();
        b.release();
      }
      // Concurrent parameterised statements with different texts each get their own answer.
      const answers = await Promise.all(Array.from({ length: 120 }, (_, i) => pool.query(`SELECT $1::int * ${(i % 5) + 2} AS c${i}`, [i])));
      expect(answers.filter((r, i) => r.rows[0][`c${i}`] !== i * ((i % 5) + 2)).length, 'answers of another statement').to.equal(0);
      expect(pool.totalCount).to.equal(4);
    } finally {
      await pool.end();
    }
  });

  it('does not interleave another connection into an extended-protocol exchange that arrives in pieces', async () => {
    const b = await client();
    const a = net.connect(server.port, '127.0.0.1');
    let received = Buffer.alloc(0);
    a.on('data', (d: Buffer) => { received = Buffer.concat([received, d]); });
    try {
      await new Promise((resolve) => a.once('connect', resolve));
      a.write(wire.startup());
      await waitFor(async () => received.includes(Buffer.from('Z\0\0\0\x05I', 'latin1')), { timeoutMs: 5_000, what: 'startup answer' });
      received = Buffer.alloc(0);
      a.write(wire.parseBind(`SELECT 'from-A' AS who`));
      await waitFor(async () => received.length > 0, { timeoutMs: 5_000, what: 'ParseComplete and BindComplete' });
      const other = b.query('SELECT $1::text AS who', ['from-B']);
      expect(await within(other.then(() => 'answered'), 300, 'waiting'), 'B during A\'s exchange').to.equal('waiting');
      a.write(wire.executeSync());
      expect((await other).rows[0].who).to.equal('from-B');
      await waitFor(async () => received.includes(Buffer.from('Z\0\0\0\x05I', 'latin1')), { timeoutMs: 5_000, what: 'A\'s ReadyForQuery' });
      expect(received.toString('latin1')).to.contain('from-A').and.not.contain('ERROR');
    } finally {
      a.destroy();
    }
  });

  it('rolls back the transaction of a connection that goes away inside it, and the others go on', async () => {
    const a = await connect(server.url);
    await a.query('BEGIN');
    await a.query(`INSERT INTO public.pgl_orders (customer, total) VALUES ('gone', 4)`);
    (a as unknown as { connection: { stream: net.Socket } }).connection.stream.destroy();
    const b = await client();
    const { rows } = await b.query(`SELECT count(*)::int AS n FROM public.pgl_orders WHERE customer = 'gone'`);
    expect(rows[0].n).to.equal(0);
  });

  it('runs the product\'s knex migrations, two first runs at once', async () => {
    const config = { databaseUrl: server.url, deadLetters: { schema: 'pgce_pgl_schema', table: 'dead_letters' } };
    const log = { info: () => undefined };
    const [one, two] = await Promise.all([migrateSchema(config, log), migrateSchema(config, log)]);
    expect(one.ran.length + two.ran.length).to.be.greaterThan(0);
    expect(one.ran.length === 0 || two.ran.length === 0, 'only one of them ran the migrations').to.equal(true);
    expect((await migrateSchema(config, log)).ran).to.deep.equal([]);
  });

  it('lets the product\'s leader election lead; session advisory locks are shared by every connection (one session)', async () => {
    const elector = new LeaderElector({ connectionString: server.url, slot: 'pgce_pgl_leader', pollIntervalMs: 100 });
    await elector.start();
    try {
      await elector.waitForLeadership(AbortSignal.timeout(10_000));
      expect(elector.role).to.equal('leader');
      // What the README says: a second replica would lead too, so the embedded database is for one.
      const other = await client();
      const { rows } = await other.query('SELECT pg_try_advisory_lock(1234) AS a, pg_try_advisory_lock(1234) AS b');
      const third = await client();
      expect((await third.query('SELECT pg_try_advisory_lock(1234) AS c')).rows[0].c).to.equal(true);
      expect(rows[0]).to.deep.equal({ a: true, b: true });
    } finally {
      await elector.stop();
    }
  });

  it('keeps committed rows in its data directory across a SIGKILL, and refuses a second server on it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgce-pgl-'));
    const dataDir = join(dir, 'data');
    try {
      let s = await startEmbeddedPostgres({ dataDir });
      let c = await connect(s.url);
      await c.query('CREATE TABLE kept (id int); INSERT INTO kept VALUES (1)');
      await c.query('INSERT INTO kept VALUES (2)');
      await c.end();
      // A second server on the same directory would be a second writer: refused while the first runs.
      // (After the SIGKILL below, its pid file is stale and the restart takes it over.)
      const second = spawnCli([EMBEDDED_SERVER_PATH, '--port', '0', '--data-dir', dataDir], {}, { command: process.execPath });
      expect((await second.exit()).code).to.equal(1);
      expect(second.stderr()).to.match(/is in use by process \d+/);
      s.process.kill('SIGKILL');
      await s.process.exit();

      s = await startEmbeddedPostgres({ dataDir });
      c = await connect(s.url);
      expect((await c.query('SELECT array_agg(id ORDER BY id) AS ids FROM kept')).rows[0].ids).to.deep.equal([1, 2]);
      await c.end();
      await s.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
