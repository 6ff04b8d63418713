/**
 * `pg-cloudevents backfill` and /api/backfills against real PostgreSQL: requests checked before
 * they are stored, list/show/cancel, the progress on a terminal (tmux) and off it, and, with a
 * `run` leading, a backfill followed to its end, interrupted, cancelled, and asked through the API.
 */
import { expect } from 'chai';
import type { CloudEvent } from 'cloudevents';
import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { loadConfig } from '../../src/config/load';
import { connect } from '../../src/pg/db';
import { createKnex } from '../../src/pg/schema/knex';
import { validateBackfill, type BackfillAsk } from '../../src/sources/backfill/request';
import { BackfillStore, type BackfillError, type BackfillRow } from '../../src/sources/backfill/store';
import { createTestDatabase, waitFor, type TestDatabase } from './harness/postgres';
import { CLI_PATH, exitWithin, spawnCli, type CliProcess } from './harness/process';
import { startReceiver, type Receiver } from './harness/receiver';
import { startTerminal, type Terminal } from './harness/tmux';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

/** Unique per run (tag bfcli): slot names are cluster-wide, worktrees share the server. */
const NAME = `pgce_bfcli_${randomBytes(3).toString('hex')}`;
const TOKEN = 'bfcli-admin-token-0123456789abcdef';
/** items 1..10 were created 60 days ago, 11..40 today: `--where` recent selects 30. */
const RECENT = "created_at > now() - interval '30 days'";

type Payload = { data: { id: number }; signal_kwargs: Record<string, unknown>; db_table: string };
const backfilled = (events: CloudEvent<unknown>[], id: string) => events.filter((e) => e.id.startsWith(`backfill-${id}-`));

describe('backfill: requests, the command and /api/backfills (real PostgreSQL)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let knex: Knex;
  let store: BackfillStore;
  let env: Record<string, string>;
  const terminals: Terminal[] = [];

  async function cli(args: string[], extra: Record<string, string> = {}) {
    const p = spawnCli(args, { ...env, ...extra });
    const { code } = await exitWithin(p, 30_000);
    return { code, stdout: p.stdout(), stderr: p.stderr() };
  }
  const state = async (id: string) => (await store.get(id))!.state;
  const until = (id: string, check: (r: BackfillRow) => boolean, what: string, timeoutMs = 20_000) => waitFor(async () => {
    const row = await store.get(id);
    return row && check(row) ? row : undefined;
  }, { timeoutMs, intervalMs: 50, what: `backfill ${id} ${what}` });
  const terminal = (args: string[]) => {
    const t = startTerminal(`${NAME}_${terminals.length}`, [process.execPath, CLI_PATH, ...args], env);
    terminals.push(t);
    return t;
  };

  before(async () => {
    db = await createTestDatabase(NAME);
    await db.query(`CREATE TABLE items (id int PRIMARY KEY, note text, created_at timestamptz NOT NULL DEFAULT now());
      INSERT INTO items (id, note, created_at) SELECT g, 'item ' || g, CASE WHEN g <= 10 THEN now() - interval '60 days' ELSE now() END FROM generate_series(1, 40) g;
      CREATE TABLE no_key (note text); ALTER TABLE no_key REPLICA IDENTITY FULL;
      CREATE TABLE other (id int PRIMARY KEY)`);
    env = {
      DATABASE_URL: db.url, LOG_LEVEL: 'warn',
      PG_CLOUDEVENTS_CONFIG: writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: ${NAME}, publication: ${NAME}, statusInterval: PT0.2S }
triggersTable: { enabled: false }
tables: [ items, no_key ]
`),
    };
    const setup = await cli(['setup']);
    expect(setup.code, setup.stderr).to.equal(0);
    knex = createKnex({ databaseUrl: db.url });
    store = new BackfillStore(knex, { schema: 'pgcloudevents', backfills: 'backfills' }, NAME);
  });

  after(async () => {
    for (const t of terminals) t.close();
    await knex?.destroy();
    await db?.drop();
  });

  it('refuses, naming why and what to do: a table without a key, a --where PostgreSQL rejects, a table not captured or gone; nothing is stored', async () => {
    // Through the command (its message and exit code) ...
    const refusals: [string[], RegExp][] = [
      [['--table', 'no_key'], /--table: public\.no_key has no primary key \(nor a replica identity index; REPLICA IDENTITY FULL is not a key\), so it cannot be backfilled: a backfill reads the table in key order, chunk by chunk, and matches live changes to the rows it read by their key.*Add a primary key \(ALTER TABLE public\.no_key ADD PRIMARY KEY/],
      [['--table', 'items', '--where', 'nope > 1'], /--where "nope > 1" is not a valid condition on public\.items: PostgreSQL says: column "nope" does not exist/],
      [['--table', 'items', '--table', 'other'], /--table: public\.other is not captured, so it cannot be backfilled \(captured tables: public\.items, public\.no_key\)/],
    ];
    for (const [args, message] of refusals) {
      const r = await cli(['backfill', ...args, '--detach']);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).to.equal(1);
      expect(r.stderr).to.match(message);
      expect(r.stderr).to.include('[PGCE_ERR_BACKFILL]');
    }
    // ... and the check itself, on one connection as the command uses it.
    const config = loadConfig({ env: { ...env, PG_CLOUDEVENTS_TABLES: 'items,gone', PG_CLOUDEVENTS_SLOT: NAME, PG_CLOUDEVENTS_PUBLICATION: NAME }, configPath: env.PG_CLOUDEVENTS_CONFIG });
    const client = await connect(db.url);
    try {
      const refused = async (ask: BackfillAsk) => validateBackfill(client, config, ask, 'cli').then(() => 'accepted', (err: BackfillError) => `${err.reason}: ${err.message}`);
      expect(await refused({ tables: ['gone'] })).to.equal('invalid: --table: public.gone does not exist (it is in the configuration; was it dropped or renamed?)');
      expect(await refused({ tables: ['items'], where: 'id' })).to.equal('invalid: --where "id" is not a valid condition on public.items: PostgreSQL says: argument of WHERE must be type boolean, not type integer');
      expect(await refused({ tables: ['items'], where: "note = 'x' AND nextval('nope') > 0" })).to.match(/PostgreSQL says: relation "nope" does not exist$/);
      expect(await refused({ tables: ['items'], where: 'true) OR (1 = 1' })).to.equal('invalid: --where "true) OR (1 = 1" closes a parenthesis it did not open, at position 5: it must be one condition');
      // The check leaves the connection as it found it: outside a transaction, usable.
      expect(await validateBackfill(client, config, { tables: ['items'], where: RECENT, chunk: 5, rate: 10 }, 'api')).to.deep.equal([
        { schema: 'public', table: 'items', where: RECENT, chunkSize: 5, rate: 10, origin: 'api' },
      ]);
      expect((await client.query('SELECT pg_current_xact_id_if_assigned() IS NULL AS idle, now() = statement_timestamp() AS outside')).rows[0]).to.deep.equal({ idle: true, outside: true });
    } finally {
      await client.end();
    }
    const { rows: [{ n }] } = await db.query('SELECT count(*)::int AS n FROM pgcloudevents.backfills');
    expect(n, 'a refused request stores nothing (one table refused: none of the request)').to.equal(0);
  });

  it('--detach, list, show and cancel (before any leader: requests stay pending)', async () => {
    const first = await cli(['backfill', '--table', 'items', '--where', RECENT, '--chunk', '7', '--rate', '300/m', '--detach']);
    expect(first.code, first.stderr).to.equal(0);
    const id = /^requested backfill (\d+): public\.items where created_at > now\(\) - interval '30 days', chunks of 7 rows, at most 5 rows\/s; the leader of slot \S+ performs it$/m.exec(first.stdout)![1];
    expect(first.stdout).to.include(`cancel: pg-cloudevents backfill cancel ${id}`);
    const second = await cli(['backfill', '--table', 'public.items', '--detach', '--json']);
    const [json] = (JSON.parse(second.stdout) as { backfills: Record<string, unknown>[] }).backfills;
    expect(json).to.deep.include({ table: 'public.items', state: 'pending', where: null, chunkSize: 1000, rate: null, origin: 'cli', slot: NAME, rowsDone: 0 });

    const list = await cli(['backfill', 'list']);
    expect(list.code).to.equal(0);
    const lines = list.stdout.trimEnd().split('\n');
    expect(lines[0]).to.match(/^ID\s+TABLE\s+STATE\s+ROWS\s+EVENTS\s+ORIGIN\s+CREATED\s+WHERE$/);
    expect(lines[1]).to.match(new RegExp(`^${json.id}\\s+public\\.items\\s+pending\\s+0\\s+0\\s+cli\\s+\\S+Z$`));
    expect(lines[2]).to.match(new RegExp(`^${id}\\s+public\\.items\\s+pending\\s+0\\s+0\\s+cli\\s+\\S+Z\\s+${RECENT.replace(/[()]/g, '\\$&')}$`));

    const show = await cli(['backfill', 'show', id]);
    expect(show.stdout).to.match(new RegExp(`^backfill ${id} public\\.items: pending: waiting for backfill ${id} \\(public\\.items\\)|^backfill ${id} public\\.items: pending: waiting for the leader of slot ${NAME}$`, 'm'));
    expect(show.stdout).to.match(/^ {2}rate: +5 rows\/s$/m);

    const cancel = await cli(['backfill', 'cancel', id]);
    expect(cancel.code, cancel.stderr).to.equal(0);
    expect(cancel.stdout).to.equal(`backfill ${id} (public.items) cancelled before it started\n`);
    expect(await state(id)).to.equal('cancelled');
    const again = await cli(['backfill', 'cancel', id]);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.equal(`pg-cloudevents backfill cancel: backfill ${id} is already cancelled [PGCE_ERR_BACKFILL]\n`);
    // Leave nothing for the leader of the tests below.
    await store.cancel(json.id as string);
  });

  it('follows off a terminal with plain lines until the end; exit 1 naming a failure (progress written by the test, not a leader)', async () => {
    const follower = spawnCli(['backfill', '--table', 'items'], env);
    const id = /^requested backfill (\d+)/.exec(await follower.waitForLine(/^requested backfill \d+/))![1];
    await follower.waitForLine(new RegExp(`^backfill ${id} public\\.items: pending: waiting for the leader of slot ${NAME}$`));
    await store.start(id, 40);
    await store.progress(id, ['20'], 20, 20);
    await follower.waitForLine(new RegExp(`^backfill ${id} public\\.items: 20/~40 rows \\(50%\\), running, `));
    await store.progress(id, ['40'], 20, 19);
    await store.finish(id, 'done');
    const { code } = await exitWithin(follower, 10_000);
    expect(code, follower.stderr()).to.equal(0);
    expect(follower.stdout()).to.match(new RegExp(`^backfill ${id} public\\.items: 40 rows \\(100%\\), done in \\d+s: 39 events \\(1 rows skipped: a live change had newer state\\)$`, 'm'));
    expect(follower.stderr(), 'no escape sequences off a terminal').not.to.include('\u001b[');

    const failing = spawnCli(['backfill', '--table', 'items'], env);
    const failed = /^requested backfill (\d+)/.exec(await failing.waitForLine(/^requested backfill \d+/))![1];
    await failing.waitForLine(/pending: waiting for the leader/);
    await store.start(failed, 40);
    await store.finish(failed, 'failed', 'reading public.items failed: permission denied');
    expect((await exitWithin(failing, 10_000)).code).to.equal(1);
    expect(failing.stderr()).to.include(`pg-cloudevents backfill: backfill ${failed} (public.items) failed: reading public.items failed: permission denied`);
  });

  describe('with a leader (run)', () => {
    let receiver: Receiver;
    let run: CliProcess;
    let port: number;
    const api = (path: string, init: RequestInit = {}, token: string | null = TOKEN) => fetch(`http://127.0.0.1:${port}/api${path}`, {
      ...init, headers: { 'content-type': 'application/json', ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
    });

    before(async () => {
      receiver = await startReceiver();
      port = await freePort();
      // triggersTable off and no workflows: ADMIN_TOKEN alone turns the admin API on (backfills).
      run = spawnCli(['run'], { ...env, LOG_LEVEL: 'info', K_SINK: receiver.url, PORT: String(port), ADMIN_TOKEN: TOKEN });
      await run.waitForLine(/capturing/, 30_000);
    });
    after(async () => {
      run?.kill('SIGTERM');
      await run?.exit();
      await receiver?.close();
    });

    it('on a terminal (tmux): a bar per table with rows, rate, ETA and state until done; --where backfills only the rows it selects', async () => {
      const t = terminal(['backfill', '--table', 'items', '--where', RECENT, '--chunk', '5', '--rate', '10/s']);
      const id = /requested backfill (\d+)/.exec(await t.waitForScreen(/requested backfill \d+/))![1];
      // Midway: part of the bar filled, the rows against the planner's estimate, a rate and an ETA.
      const midway = await t.waitForScreen(new RegExp(`#${id} public\\.items +\\[█+░+\\] +\\d+% +[1-9]\\d*/~\\d+ rows +running, \\d+ rows/s, ETA (\\d+s|-)`));
      expect(midway).not.to.match(/^exit=/m);
      expect(await t.exitCode(), t.screen()).to.equal(0);
      const screen = t.screen();
      expect(screen).to.match(new RegExp(`#${id} public\\.items +\\[█{30}\\] 100% +30 rows +done in \\d+s: 30 events`));
      expect(screen).to.match(new RegExp(`^backfill ${id} public\\.items: 30 rows \\(100%\\), done in \\d+s: 30 events$`, 'm'));
      const events = backfilled(await receiver.waitFor((all) => backfilled(all, id).length >= 30), id);
      expect(events.map((e) => (e.data as Payload).data.id).sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 30 }, (_, i) => i + 11));
      expect((events[0].data as Payload).signal_kwargs).to.deep.include({ created: true, raw: true });
      expect(events[0].type).to.equal('orm.post_save');
    });

    it('Ctrl-C (tmux) stops following only: the backfill goes on, and the command says how to follow or cancel it; cancel then stops it', async () => {
      const t = terminal(['backfill', '--table', 'items', '--chunk', '2', '--rate', '4/s']);
      const id = /requested backfill (\d+)/.exec(await t.waitForScreen(/requested backfill \d+/))![1];
      await t.waitForScreen(new RegExp(`#${id} public\\.items .* running, `));
      t.sendKeys('C-c');
      expect(await t.exitCode()).to.equal(130);
      expect(t.screen()).to.match(new RegExp(`stopped following; backfill ${id} \\(public\\.items\\) goes on in the leader of slot ${NAME}`));
      expect(t.screen()).to.include(`cancel: pg-cloudevents backfill cancel ${id}`);
      const moving = (await store.get(id))!;
      expect(moving.state).to.equal('running');
      await until(id, (r) => r.rowsDone > moving.rowsDone, 'to go on after the follower left');

      const cancel = await cli(['backfill', 'cancel', id]);
      expect(cancel.code, cancel.stderr).to.equal(0);
      expect(cancel.stdout).to.match(new RegExp(`^backfill ${id} \\(public\\.items\\) cancelled after \\d+ rows: the leader stops before its next chunk; the events it sent stay sent$`, 'm'));
      const stopped = (await store.get(id))!;
      expect(stopped.state).to.equal('cancelled');
      expect(stopped.rowsDone).to.be.below(40);
    });

    it('a cancel while following off a terminal: the follower says so and exits 1', async () => {
      const follower = spawnCli(['backfill', '--table', 'items', '--chunk', '2', '--rate', '4/s'], env);
      const id = /^requested backfill (\d+)/.exec(await follower.waitForLine(/^requested backfill \d+/))![1];
      await follower.waitForLine(new RegExp(`^backfill ${id} public\\.items: \\d+/~\\d+ rows \\(\\d+%\\), running, `));
      const answer = await api(`/backfills/${id}/cancel`, { method: 'POST' });
      expect(answer.status).to.equal(200);
      expect((await answer.json()) as Record<string, unknown>).to.deep.include({ id, state: 'cancelled' });
      expect((await exitWithin(follower, 10_000)).code).to.equal(1);
      expect(follower.stderr()).to.match(new RegExp(`^pg-cloudevents backfill: backfill ${id} \\(public\\.items\\) was cancelled after \\d+ rows$`, 'm'));
      expect(follower.stderr()).to.match(new RegExp(`^backfill ${id} public\\.items: .*cancelled \\(the events sent before stay sent\\)$`, 'm'));
    });

    it('/api/backfills: the token; a request checked as the command checks it (400), 201 with the rows; list and one; cancel (DELETE), 404 and 409', async () => {
      expect((await api('/backfills', {}, null)).status).to.equal(401);
      expect((await api('/backfills', { method: 'POST', body: JSON.stringify({ tables: ['items'] }) }, 'wrong-token-0123456789')).status).to.equal(401);
      const refusals: [unknown, RegExp][] = [
        [{ tables: ['no_key'] }, /^tables: public\.no_key has no primary key/],
        [{ tables: ['items'], where: 'nope > 1' }, /^where "nope > 1" is not a valid condition on public\.items: PostgreSQL says: column "nope" does not exist$/],
        [{ tables: ['other'] }, /^tables: public\.other is not captured/],
        [{ tables: ['items'], chunk: 0 }, /^chunk: must be a whole number of rows from 1 to 100000/],
        [{ tables: ['items'], rate: '100/m' }, /^rate: 100\/m is 1\.67 rows per second/],
        [{ table: 'items' }, /^\(body\)\.table: unknown/],
      ];
      for (const [body, message] of refusals) {
        const r = await api('/backfills', { method: 'POST', body: JSON.stringify(body) });
        expect(r.status, JSON.stringify(body)).to.equal(400);
        const { errors } = (await r.json()) as { errors: string[] };
        expect(errors[0]).to.match(message);
      }

      const created = await api('/backfills', { method: 'POST', body: JSON.stringify({ tables: ['items'], where: 'id > 30', chunk: 1, rate: 2 }) });
      expect(created.status).to.equal(201);
      const [row] = ((await created.json()) as { backfills: Record<string, unknown>[] }).backfills;
      expect(row).to.deep.include({ table: 'public.items', where: 'id > 30', chunkSize: 1, rate: 2, origin: 'api', slot: NAME });
      const id = row.id as string;
      const list = (await (await api('/backfills?limit=1')).json()) as { backfills: { id: string }[] };
      expect(list.backfills.map((b) => b.id)).to.deep.equal([id]);
      expect((await api('/backfills?limit=0')).status).to.equal(400);
      await until(id, (r) => r.state === 'running' && r.rowsDone > 0, 'to run');
      const one = (await (await api(`/backfills/${id}`)).json()) as Record<string, unknown>;
      expect(one).to.deep.include({ id, state: 'running' });
      expect(one.rowsDone).to.be.greaterThan(0);
      expect(one.rowsEstimated, 'the planner\'s estimate, taken at the start').to.be.a('number');

      const deleted = await api(`/backfills/${id}`, { method: 'DELETE' });
      expect(deleted.status).to.equal(200);
      expect(((await deleted.json()) as { state: string }).state).to.equal('cancelled');
      const again = await api(`/backfills/${id}`, { method: 'DELETE' });
      expect(again.status).to.equal(409);
      expect(await again.json()).to.deep.equal({ error: `backfill ${id} is already cancelled` });
      const missing = await api('/backfills/999999');
      expect(missing.status).to.equal(404);
      expect(await missing.json()).to.deep.equal({ error: `backfill 999999 does not exist (for slot ${NAME})` });
      expect((await api('/backfills/999999/cancel', { method: 'POST' })).status).to.equal(404);
      expect((await api('/backfills/abc')).status).to.equal(400);
    });
  });
});
