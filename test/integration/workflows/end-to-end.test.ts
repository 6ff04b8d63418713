/**
 * Workflows end to end (README "Workflows"): `run` against real PostgreSQL and Redis, with a
 * CloudEvents receiver as K_SINK and a plain HTTP receiver for webhooks. Rows of payments and
 * shipments for three orders, in both orders and one refunded first; a task whose webhook answers
 * its result (cascade), one that fails for good (dead letter, failed, retry.max's clone); the
 * change acknowledged only after its input is in Redis; a kill -9 in the middle of a run.
 */
import { expect } from 'chai';
import type { CloudEvent } from 'cloudevents';
import Redis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { parseWorkflowsConfig } from '../../../src/workflows/config';
import { showSession } from '../../../src/workflows/inspect';
import type { SessionView } from '../../../src/workflows/model';
import { WorkflowStore } from '../../../src/workflows/store';
import { acknowledged, acknowledgedEverything, createTestDatabase, currentLsn, type TestDatabase, waitFor } from '../harness/postgres';
import { spawnCli, type CliProcess } from '../harness/process';
import { startReceiver, type Receiver } from '../harness/receiver';
import { startWebhookReceiver, type WebhookReceiver } from '../harness/webhook-receiver';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from '../support';
import { deleteKeysUnder } from '../harness/redis';

const REDIS_URL = 'redis://127.0.0.1:6379';
const WORKFLOW = 'order-fulfilment';
/** Helper tag hx: every database, slot and Redis key of this file carries it. */
const unique = () => `pgce_hx_${randomBytes(4).toString('hex')}`;

const TABLES = [
  'CREATE TABLE payments (id int PRIMARY KEY, order_id int NOT NULL, status text NOT NULL, amount int NOT NULL)',
  'CREATE TABLE shipments (id int PRIMARY KEY, order_id int NOT NULL, state text NOT NULL)',
  'CREATE TABLE refunds (id int PRIMARY KEY, order_id int NOT NULL)',
];

/** The workflow, plus a task whose webhook answers a result (t_label → t_notify) and one that fails (t_invoice). */
function workflowYaml(hooks: string): string {
  return `workflows:
  - name: ${WORKFLOW}
    session: "data.order_id"
    ttl: PT1H
    events:
      paid:    { table: public.payments, on: [post_save], when: "data.status = 'captured'" }
      packed:  { table: public.shipments, on: [post_save], when: "data.state = 'packed'" }
      refund:  { table: public.refunds, on: [post_save] }
    tasks:
      t_ship:
        after: [paid, packed]
        unless: [refund]
        withParams: { carrier: { name: dhl }, paid: { currency: EUR } }
        run: { cloudevent: { type: com.example.order.ready } }
      t_label:
        after: [paid, packed]
        unless: [refund]
        run: { webhook: { url: "${hooks}/label" } }
      t_notify:
        after: [t_label]
        run:
          cloudevent: { type: com.example.order.labelled }
          payload: { order: "{{ session }}", instance: "{{ instance }}", label: "{{ inputs.t_label.label }}" }
      t_invoice:
        after: [paid]
        retry: { max: 1 }
        run: { webhook: { url: "${hooks}/invoice" } }
`;
}

interface Run {
  cli: CliProcess;
  /** The health, metrics and status server's port. */
  port: number;
  stop(): Promise<void>;
}

interface Setup {
  name: string;
  prefix: string;
  db: TestDatabase;
  sink: Receiver;
  hooks: WebhookReceiver;
  redis: Redis;
  store: WorkflowStore;
  /** `run` on this database, slot and prefix; `redisUrl` overrides where Redis is. */
  start(options?: { redisUrl?: string; wait?: RegExp }): Promise<Run>;
  cleanup(): Promise<void>;
}

async function setup(): Promise<Setup> {
  const name = unique();
  const prefix = `${name}:`;
  const db = await createTestDatabase(name);
  for (const sql of TABLES) await db.query(sql);
  const sink = await startReceiver();
  const hooks = await startWebhookReceiver();
  // t_label answers its result; t_invoice fails for good for order 2.
  hooks.respondWith((req) => {
    const order = (JSON.parse(req.body || '{}') as { paid?: { order_id?: number } }).paid?.order_id;
    if (req.path === '/label') return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ label: `L-${order}` }) };
    if (req.path === '/invoice') return order === 2 ? { status: 400, body: 'no such customer' } : { status: 204 };
    return undefined;
  });
  const redis = new Redis(REDIS_URL);
  // The same workflow the process runs, read by the real parser, for inspecting Redis.
  const parsed = parseWorkflowsConfig({ redis: { url: REDIS_URL, prefix }, workflows: [YAML_PARSE(workflowYaml(hooks.url))] }, {});
  const store = new WorkflowStore(redis, parsed.workflows[0], { prefix });
  const runs: CliProcess[] = [];
  return {
    name, prefix, db, sink, hooks, redis, store,
    async start(options = {}) {
      const configPath = writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: ${name}, publication: ${name}, statusInterval: PT0.2S }
deadLetters: { schema: ${name}_dl, table: failed }
tables: [ payments, shipments, refunds ]
handler: http
events: { enabled: false }
redis: { url: "${options.redisUrl ?? REDIS_URL}", prefix: "${prefix}", reclaimAfter: PT1S, heartbeatInterval: PT0.2S }
${workflowYaml(hooks.url)}`);
      const port = await freePort();
      const cli = spawnCli(['run'], { DATABASE_URL: db.url, PG_CLOUDEVENTS_CONFIG: configPath, K_SINK: sink.url, PORT: String(port) });
      runs.push(cli);
      try {
        await cli.waitForLine(options.wait ?? /capturing/, 30_000);
      } catch (err) {
        cli.kill('SIGKILL');
        throw new Error(`${(err as Error).message}\n${cli.stdout().slice(-3000)}\n${cli.stderr().slice(-3000)}`);
      }
      return {
        cli,
        port,
        async stop() {
          cli.kill('SIGTERM');
          const { code } = await cli.exit();
          expect(code, cli.stderr().slice(-3000)).to.equal(0);
        },
      };
    },
    async cleanup() {
      for (const cli of runs) cli.kill('SIGKILL');
      await Promise.all(runs.map((c) => c.exit()));
      await deleteKeys(redis, prefix);
      await redis.quit();
      await sink.close();
      await hooks.close();
      await db.drop();
    },
  };
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const YAML_PARSE = (text: string): Record<string, unknown> => (require('yaml') as typeof import('yaml')).parse(text).workflows[0];

/** Deletes every key under `prefix` (SCAN, never KEYS); only this file's names. */
async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  if (!prefix.startsWith('pgce_hx_')) throw new Error(`refusing to delete keys outside this helper's names: ${prefix}`);
  await deleteKeysUnder(redis, prefix);
}

const ofType = (events: CloudEvent<unknown>[], type: string) => events.filter((e) => e.type === type);
const plain = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;

/** Every session settled: nothing scheduled or running, in any of `sessions`. */
async function settled(store: WorkflowStore, sessions: string[]): Promise<Map<string, SessionView>> {
  const views = new Map<string, SessionView>();
  await waitFor(async () => {
    for (const s of sessions) {
      const view = await showSession(store, s);
      if (!view || view.instances.some((i) => i.status === 'scheduled' || i.status === 'running')) return false;
      views.set(s, view);
    }
    return true;
  }, { timeoutMs: 30_000, intervalMs: 100, what: `sessions ${sessions.join(', ')} to settle` });
  return views;
}

function statuses(view: SessionView): Record<string, string> {
  return Object.fromEntries(view.instances.map((i) => [i.name, i.status]));
}

describe('workflows end to end: run with PostgreSQL, Redis, a CloudEvents sink and a webhook receiver', function () {
  this.timeout(120_000);

  it('payment and shipment in either order run t_ship once per order, a refund first runs nothing, a result cascades, a failure is dead-lettered and retried once', async () => {
    const s = await setup();
    try {
      const run = await s.start();
      // Order 1: paid, then packed. Order 2: packed, a pending payment (when is false), then captured.
      // Order 3: refunded first, then paid and packed.
      await s.db.query("INSERT INTO payments VALUES (11, 1, 'captured', 1250)");
      await s.db.query("INSERT INTO shipments VALUES (21, 1, 'packed')");
      await s.db.query("INSERT INTO shipments VALUES (22, 2, 'packed')");
      await s.db.query("INSERT INTO payments VALUES (12, 2, 'pending', 900)");
      await s.db.query("UPDATE payments SET status = 'captured' WHERE id = 12");
      await s.db.query('INSERT INTO refunds VALUES (33, 3)');
      await s.db.query("INSERT INTO payments VALUES (13, 3, 'captured', 500)");
      await s.db.query("INSERT INTO shipments VALUES (23, 3, 'packed')");
      await acknowledgedEverything(s.db, s.name);
      const views = await settled(s.store, ['1', '2', '3']);
      await s.sink.waitFor((events) => ofType(events, 'com.example.order.labelled').length >= 2);

      // t_ship: one derived CloudEvent per fulfilled order, none for the refunded one.
      const ready = ofType(s.sink.accepted, 'com.example.order.ready');
      expect(ready.map((e) => e.subject).sort()).to.deep.equal([`${WORKFLOW}/1/t_ship#0`, `${WORKFLOW}/2/t_ship#0`]);
      const one = ready.find((e) => e.subject === `${WORKFLOW}/1/t_ship#0`)!;
      expect(one.id).to.match(new RegExp(`^workflow:${WORKFLOW}/1/t_ship#0@\\d+$`));
      expect(one.workflow).to.equal(WORKFLOW);
      expect(one.source).to.equal(`/pg-cloudevents/${s.name}`);
      // The inputs merged over withParams: an input wins, withParams fills in (paid.currency).
      expect(one.data).to.deep.equal({
        carrier: { name: 'dhl' },
        paid: { currency: 'EUR', id: 11, order_id: 1, status: 'captured', amount: 1250 },
        packed: { id: 21, order_id: 1, state: 'packed' },
      });
      const two = ready.find((e) => e.subject === `${WORKFLOW}/2/t_ship#0`)!;
      expect((two.data as { paid: unknown }).paid, 'the captured payment, not the pending one').to.deep.include({ id: 12, status: 'captured' });

      // t_label's webhook got the run payload; its JSON answer is the result t_notify reads (cascade).
      expect(s.hooks.to('/label').map((r) => r.headers['idempotency-key']).sort()).to.deep.equal(
        [views.get('1')!, views.get('2')!].map((v) => `workflow:${WORKFLOW}/${v.session}/t_label#0@${Date.parse(v.created)}`).sort(),
      );
      const labelled = ofType(s.sink.accepted, 'com.example.order.labelled');
      expect(labelled.map((e) => plain(e.data)).sort((a, b) => String((a as { order: string }).order).localeCompare((b as { order: string }).order))).to.deep.equal([
        { order: '1', instance: 't_notify#0', label: 'L-1' },
        { order: '2', instance: 't_notify#0', label: 'L-2' },
      ]);
      expect(s.sink.accepted.filter((e) => String(e.subject).startsWith(`${WORKFLOW}/3/`)), 'nothing for the refunded order').to.deep.equal([]);
      expect(s.sink.accepted, 'no other event').to.have.length(4);

      // The refunded order: its tasks abandoned at birth; t_invoice (no unless) ran.
      expect(statuses(views.get('3')!)).to.deep.equal({ 't_invoice#0': 'finished', 't_label#0': 'abandoned', 't_ship#0': 'abandoned' });
      expect(statuses(views.get('1')!)).to.deep.equal({ 't_invoice#0': 'finished', 't_label#0': 'finished', 't_notify#0': 'finished', 't_ship#0': 'finished' });
      // Order 2's invoice failed for good: retried once as a clone, which failed too.
      const order2 = views.get('2')!;
      expect(statuses(order2)).to.include({ 't_invoice#0': 'replayed', 't_invoice#1': 'failed' });
      const clone = order2.instances.find((i) => i.name === 't_invoice#1')!;
      expect(clone.error?.type).to.equal('MaxRetriesExceeded');
      expect(clone.error?.message).to.match(/retry\.max = 1 \(last error: DeliveryError.*answered 400 Bad Request/);
      expect(s.hooks.to('/invoice')).to.have.length(4);

      // Each failed run is a dead letter at workflow:<workflow>/<task>, the derived event stored.
      const { rows } = await s.db.query(`SELECT event_id, subject, destination, status, event::jsonb -> 'data' AS data FROM ${s.name}_dl.failed ORDER BY subject`);
      expect(rows.map((r) => [r.subject, r.destination, r.status])).to.deep.equal([
        [`${WORKFLOW}/2/t_invoice#0`, `workflow:${WORKFLOW}/t_invoice`, 400],
        [`${WORKFLOW}/2/t_invoice#1`, `workflow:${WORKFLOW}/t_invoice`, 400],
      ]);
      expect(rows[0].data).to.deep.include({ paid: { id: 12, order_id: 2, status: 'captured', amount: 900 } });

      // /status and /metrics: the runners, no work left, the runs by outcome, the gauges over Redis.
      const status = (await (await fetch(`http://127.0.0.1:${run.port}/status`)).json()) as { workflows: unknown };
      expect(status.workflows).to.deep.equal({ runners: 'running', redis: 'ready', workflows: [{ name: WORKFLOW, pendingRuns: 0 }] });
      const metrics = await (await fetch(`http://127.0.0.1:${run.port}/metrics`)).text();
      const w = `workflow="${WORKFLOW}"`;
      expect(metrics).to.include(`pgce_workflow_runs_total{${w},task="t_ship",outcome="finished"} 2`);
      expect(metrics).to.include(`pgce_workflow_runs_total{${w},task="t_invoice",outcome="replayed"} 1`);
      expect(metrics).to.include(`pgce_workflow_runs_total{${w},task="t_invoice",outcome="failed"} 1`);
      expect(metrics).to.include(`pgce_workflow_input_to_run_seconds_count{${w},task="t_ship"} 2`);
      expect(metrics).to.include(`pgce_workflow_sessions_open{${w}} 1`);
      expect(metrics).to.include(`pgce_workflow_instances{${w},status="abandoned"} 2`);
      expect(metrics).to.include(`pgce_dead_lettered_total{destination="workflow:${WORKFLOW}/t_invoice"} 2`);
      await run.stop();

      // dead-letters list shows them; replay refuses them, pointing at workflows replay, and keeps them.
      const env = { DATABASE_URL: s.db.url, PG_CLOUDEVENTS_CONFIG: writeTempFile('d.yaml', `deadLetters: { schema: ${s.name}_dl, table: failed }\ntables: [payments]\n`), K_SINK: s.sink.url, LOG_LEVEL: 'warn' };
      const list = spawnCli(['dead-letters', 'list', '--json'], env);
      expect((await list.exit()).code).to.equal(0);
      const listed = JSON.parse(list.stdout()) as { destination: string; subject: string }[];
      expect(listed.map((r) => [r.destination, r.subject])).to.deep.equal([
        [`workflow:${WORKFLOW}/t_invoice`, `${WORKFLOW}/2/t_invoice#0`],
        [`workflow:${WORKFLOW}/t_invoice`, `${WORKFLOW}/2/t_invoice#1`],
      ]);
      const replay = spawnCli(['dead-letters', 'replay', '--all'], env);
      await replay.exit();
      expect(replay.stdout() + replay.stderr()).to.include('workflows replay');
      expect((await s.db.query(`SELECT count(*)::int AS n FROM ${s.name}_dl.failed`)).rows[0].n).to.equal(2);
      expect(s.sink.accepted, 'replay sent nothing').to.have.length(4);
    } finally {
      await s.cleanup();
    }
  });

  it('Redis away: the change is not acknowledged and nothing is lost; pointed back at Redis, the run happens once', async () => {
    const s = await setup();
    try {
      // A loopback port nobody listens on: every input fails, retriably.
      const closed = await freePort();
      const away = await s.start({ redisUrl: `redis://127.0.0.1:${closed}` });
      await s.db.query("INSERT INTO payments VALUES (11, 7, 'captured', 100)");
      await s.db.query("INSERT INTO shipments VALUES (21, 7, 'packed')");
      const written = await currentLsn(s.db);
      // The input's delivery fails and is retried (the log says so), and the slot stays behind it.
      await away.cli.waitForLine(/"destination":"workflow:order-fulfilment".*retrying|retrying.*"destination":"workflow:order-fulfilment"/, 20_000);
      await waitFor(async () => `${away.cli.stdout()}\n${away.cli.stderr()}`.split('\n').filter((l) => l.includes('workflow:order-fulfilment') && l.includes('retrying')).length >= 3, {
        timeoutMs: 20_000, intervalMs: 100, what: 'three failed attempts at the input',
      });
      expect(await acknowledged(s.db, s.name, written), 'the slot passed an input Redis never stored').to.equal(false);
      expect(s.sink.accepted).to.deep.equal([]);
      await away.stop();

      const back = await s.start();
      await acknowledgedEverything(s.db, s.name);
      await s.sink.waitFor((events) => ofType(events, 'com.example.order.ready').length >= 1);
      const view = (await settled(s.store, ['7'])).get('7')!;
      expect(statuses(view)).to.include({ 't_ship#0': 'finished', 't_label#0': 'finished', 't_notify#0': 'finished' });
      const ready = ofType(s.sink.accepted, 'com.example.order.ready');
      expect(ready.map((e) => e.subject)).to.deep.equal([`${WORKFLOW}/7/t_ship#0`]);
      expect((ready[0].data as { paid: unknown }).paid).to.deep.include({ id: 11, order_id: 7 });
      await back.stop();
    } finally {
      await s.cleanup();
    }
  });

  it('kill -9 while a run is being delivered: after a restart the run happens once, under the same id', async () => {
    const s = await setup();
    let down = true;
    s.sink.respondWith((req) => (down && req.headers['ce-type'] === 'com.example.order.ready' ? { status: 503 } : undefined));
    try {
      const first = await s.start();
      await s.db.query("INSERT INTO payments VALUES (11, 9, 'captured', 100)");
      await s.db.query("INSERT INTO shipments VALUES (21, 9, 'packed')");
      // The inputs are applied and t_ship is running: its sends are refused, and retried.
      await s.sink.waitFor((events) => ofType(events, 'com.example.order.ready').length >= 2);
      first.cli.kill('SIGKILL');
      await first.cli.exit();
      const refused = ofType(s.sink.events, 'com.example.order.ready');
      expect(s.sink.accepted.filter((e) => e.type === 'com.example.order.ready')).to.deep.equal([]);
      expect((await showSession(s.store, '9'))?.instances.find((i) => i.name === 't_ship#0')?.status).to.equal('running');

      down = false;
      const second = await s.start();
      // Another runner takes the run over once it has been idle past reclaimAfter (PT1S).
      await s.sink.waitFor(() => s.sink.accepted.some((e) => e.type === 'com.example.order.ready'));
      await acknowledgedEverything(s.db, s.name);
      const view = (await settled(s.store, ['9'])).get('9')!;
      const ship = view.instances.find((i) => i.name === 't_ship#0')!;
      expect(ship.status).to.equal('finished');
      expect(ship.attempts, 'taken over: a second attempt of the same instance').to.equal(2);
      expect(view.instances.filter((i) => i.task === 't_ship'), 'one instance: the redelivered inputs made none').to.have.length(1);
      expect(await s.redis.xlen(s.store.queue.key), 'no work left').to.equal(0);
      const accepted = ofType(s.sink.accepted, 'com.example.order.ready');
      expect(accepted.map((e) => e.subject)).to.deep.equal([`${WORKFLOW}/9/t_ship#0`]);
      expect(accepted[0].id, 'the same id as the attempts before the kill').to.equal(refused[0].id);
      await second.stop();
    } finally {
      await s.cleanup();
    }
  });
});
