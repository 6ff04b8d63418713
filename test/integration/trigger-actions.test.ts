import { expect } from 'chai';
import { HTTP, type CloudEvent } from 'cloudevents';
import Redis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { acknowledged, acknowledgedEverything, createTestDatabase, currentLsn, type TestDatabase, waitFor } from './harness/postgres';
import { spawnCli, type CliProcess } from './harness/process';
import { startReceiver } from './harness/receiver';
import { startWebhookReceiver, type WebhookReceiver } from './harness/webhook-receiver';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

/** Unique per run (helper tag ha): several worktrees share the servers. */
const unique = () => `pgce_hha_${randomBytes(4).toString('hex')}`;

const SALES_TABLE = 'CREATE TABLE sales (id int PRIMARY KEY, qty int NOT NULL, price numeric(10,2), note text, paid bool)';
const PAYLOAD = '{ id: "{{ id }}", quantity: "{{ qty }}", price: "{{ price }}", note: "{{ note }}", paid: "{{ paid }}" }';
/** What PAYLOAD renders for INSERT_ROW: every JSON type kept. */
const RENDERED = { id: 1, quantity: 12, price: '19.90', note: null, paid: true };
const INSERT_ROW = 'INSERT INTO sales VALUES (1, 12, 19.90, null, true)';

/** The process's JSON log lines (pino) that parse. */
function logLines(cli: CliProcess): Record<string, unknown>[] {
  return `${cli.stdout()}\n${cli.stderr()}`.split('\n').flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

interface Run {
  name: string;
  db: TestDatabase;
  cli: CliProcess;
  configPath: string;
  stop(): Promise<void>;
}

/** A database with `sales`, and `run` on `yaml` (prefixed with fast retries, its slot and dead-letter table). */
async function startRun(yaml: (name: string) => string, env: Record<string, string> = {}): Promise<Run> {
  const name = unique();
  const db = await createTestDatabase(name);
  await db.query(SALES_TABLE);
  const configPath = writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: ${name}, publication: ${name}, statusInterval: PT0.2S }
deadLetters: { schema: ${name}_dl, table: failed }
tables: [ sales ]
${yaml(name)}`);
  const cli = spawnCli(['run'], { DATABASE_URL: db.url, PG_CLOUDEVENTS_CONFIG: configPath, PORT: String(await freePort()), ...env });
  try {
    await cli.waitForLine(/capturing/, 30_000);
  } catch (err) {
    cli.kill('SIGKILL');
    await db.drop();
    throw new Error(`${(err as Error).message}\n${cli.stdout().slice(-3000)}\n${cli.stderr().slice(-3000)}`);
  }
  return {
    name, db, cli, configPath,
    async stop() {
      cli.kill('SIGTERM');
      const { code } = await cli.exit();
      await db.drop();
      expect(code, cli.stderr()).to.equal(0);
    },
  };
}

/** `allow.webhookUrls` naming the receiver's host literally (loopback is refused otherwise once a list is set). */
const allowReceiver = (hooks: WebhookReceiver, extra = '') =>
  `allow:\n  webhookUrls: ['http://127\\.0\\.0\\.1:${hooks.port}/.*']\n${extra}`;

describe('trigger actions: webhook and broker end to end (real PostgreSQL, HTTP receivers, Redis)', function () {
  this.timeout(120_000);

  it('webhook: method, headers with an env dynamic value, JSON with types kept, text, GET without body, format cloudevent', async () => {
    const hooks = await startWebhookReceiver();
    const run = await startRun(() => `${allowReceiver(hooks, '  dynamicValues: [env.PGCE_HA_TOKEN]\n')}
handler: console
events: { enabled: false }
triggers:
  - name: hooks
    tables: [sales]
    on: [insert]
    payload: ${PAYLOAD}
    actions:
      - webhook: { url: "${hooks.url}/json", headers: { Authorization: "Bearer {{ env.PGCE_HA_TOKEN }}", X-Source: pg } }
      - webhook: { url: "${hooks.url}/text", method: PUT }
        payload: "sale {{ id }} of {{ qty }}"
      - webhook: { url: "${hooks.url}/ce" }
        format: cloudevent
        type: com.example.sale.created
      - webhook: { url: "${hooks.url}/ping?from=pg", method: GET }
`, { PGCE_HA_TOKEN: 'tok-ha-1' });
    try {
      await run.db.query(INSERT_ROW);
      await acknowledgedEverything(run.db, run.name);
      expect(hooks.requests.map((r) => `${r.method} ${r.path}`)).to.have.members(['POST /json', 'PUT /text', 'POST /ce', 'GET /ping?from=pg']);

      const [json] = hooks.to('/json');
      expect(json.headers).to.include({ authorization: 'Bearer tok-ha-1', 'x-source': 'pg', 'content-type': 'application/json' });
      expect(JSON.parse(json.body)).to.deep.equal(RENDERED);
      const changeId = json.headers['idempotency-key'].replace(/\/trigger\/hooks\/0$/, '');
      expect(changeId, 'Idempotency-Key is the action event id').to.not.equal(json.headers['idempotency-key']);

      const [text] = hooks.to('/text');
      expect(text.headers).to.include({ 'content-type': 'text/plain; charset=utf-8', 'idempotency-key': `${changeId}/trigger/hooks/1` });
      expect(text.body).to.equal('sale 1 of 12');

      const [ce] = hooks.to('/ce');
      const event = HTTP.toEvent({ headers: ce.headers, body: ce.body }) as CloudEvent<unknown>;
      event.validate();
      expect(event).to.include({ id: `${changeId}/trigger/hooks/2`, type: 'com.example.sale.created', trigger: 'hooks', datacontenttype: 'application/json' });
      expect(event.data).to.deep.equal(RENDERED);
      expect(event.subject).to.be.a('string');

      const [ping] = hooks.to('/ping?from=pg');
      expect(ping.body).to.equal('');
      expect(ping.headers['content-type']).to.equal(undefined);
      expect(ping.headers['idempotency-key']).to.equal(`${changeId}/trigger/hooks/3`);
      expect(run.cli.stdout() + run.cli.stderr(), 'the token is never logged').to.not.include('tok-ha-1');
    } finally {
      await run.stop();
      await hooks.close();
    }
  });

  it('webhook failures: 503 then 200 once, 429 waits its Retry-After, a hang times out, 400 is dead-lettered and replayed', async () => {
    const hooks = await startWebhookReceiver();
    let refusing = true;
    hooks.respondWith((req, n) => {
      if (req.path === '/flaky') return n === 1 ? { status: 503, body: 'warming up' } : { status: 200 };
      if (req.path === '/busy') return n === 1 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 };
      if (req.path === '/slow') return n === 1 ? 'hang' : { status: 204 };
      if (req.path === '/refused') return refusing ? { status: 400, body: 'no such customer' } : { status: 201 };
      return undefined;
    });
    const hook = (rule: string, extra = '') => `  - name: ${rule}
    tables: [sales]
    on: [insert]
    payload: { id: "{{ id }}" }
    actions:
      - webhook: { url: "${hooks.url}/${rule}" }
${extra}`;
    const run = await startRun(() => `${allowReceiver(hooks)}
limits: { maxActionTimeout: PT0.5S }
handler: console
events: { enabled: false }
triggers:
${hook('flaky')}${hook('busy')}${hook('slow', '        timeout: PT5S\n')}${hook('refused')}`);
    try {
      await run.db.query(INSERT_ROW);
      await acknowledgedEverything(run.db, run.name);

      const flaky = hooks.to('/flaky');
      expect(flaky.map((r) => r.status), '503, then delivered once').to.deep.equal([503, 200]);
      expect(flaky[1].headers['idempotency-key']).to.equal(flaky[0].headers['idempotency-key']);

      const busy = hooks.to('/busy');
      expect(busy.map((r) => r.status)).to.deep.equal([429, 200]);
      const waited = logLines(run.cli).find((l) => l.destination === 'trigger:busy/0' && l.status === 429);
      expect(waited, 'the 429 attempt is logged').to.not.equal(undefined);
      expect(waited!.retryInMs as number, 'the retry waits at least Retry-After').to.be.at.least(1000);
      expect(busy[1].at - busy[0].at, 'by the receiver\'s own clock too').to.be.at.least(1000);

      const slow = hooks.to('/slow');
      expect(slow.map((r) => r.status)).to.deep.equal([0, 204]);
      const timedOut = logLines(run.cli).find((l) => l.destination === 'trigger:slow/0' && typeof l.err === 'string');
      expect(timedOut?.err, 'the action timeout, capped by limits.maxActionTimeout').to.match(/did not answer within 500 ms$/);

      const { rows } = await run.db.query(`SELECT event_id, destination, status, error FROM ${run.name}_dl.failed`);
      expect(rows).to.have.length(1);
      expect(rows[0]).to.include({ destination: 'trigger:refused/0', status: 400 });
      expect(rows[0].event_id).to.match(/\/trigger\/refused\/0$/);
      expect(rows[0].error).to.include('answered 400 Bad Request: no such customer');
      expect(hooks.to('/refused').map((r) => r.status)).to.deep.equal([400]);

      // The receiver accepts now: replay sends the row through its rule again, to the webhook.
      refusing = false;
      const replay = spawnCli(['dead-letters', 'replay', '--all'], { DATABASE_URL: run.db.url, PG_CLOUDEVENTS_CONFIG: run.configPath, LOG_LEVEL: 'warn' });
      expect((await replay.exit()).code, replay.stderr() + replay.stdout()).to.equal(0);
      const refused = hooks.to('/refused');
      expect(refused.map((r) => r.status)).to.deep.equal([400, 201]);
      expect(JSON.parse(refused[1].body)).to.deep.equal({ id: 1 });
      expect(refused[1].headers['idempotency-key']).to.equal(rows[0].event_id);
      expect((await run.db.query(`SELECT 1 FROM ${run.name}_dl.failed`)).rowCount, 'replayed rows are removed').to.equal(0);
    } finally {
      await run.stop();
      await hooks.close();
    }
  });

  it('broker: to Redis with params merged over the broker\'s, the bare payload and format cloudevent', async () => {
    const redis = new Redis('redis://127.0.0.1:6379');
    const base = unique();
    const [brokerStream, bareStream, ceStream] = [`${base}_default`, `${base}_bare`, `${base}_ce`];
    const run = await startRun(() => `handler: console
events: { enabled: false }
brokers:
  queue: { type: redis, conn: { url: "redis://127.0.0.1:6379" }, params: { stream: "${brokerStream}", maxlen: 1000 } }
triggers:
  - name: queued
    tables: [sales]
    on: [insert]
    payload: ${PAYLOAD}
    actions:
      - broker: queue
        params: { stream: "${bareStream}" }
      - broker: queue
        params: { stream: "${ceStream}" }
        format: cloudevent
`);
    try {
      await run.db.query(INSERT_ROW);
      await acknowledgedEverything(run.db, run.name);
      expect(await redis.xlen(brokerStream), 'the override wins over the broker\'s stream').to.equal(0);

      const [[, bareFields]] = await redis.xrange(bareStream, '-', '+');
      // The bare payload: its body and content type, no envelope (docs/sinks.md, "Bare messages").
      expect(bareFields.filter((_, i) => i % 2 === 0)).to.deep.equal(['id', 'content-type', 'data']);
      const bare = fieldsOf(bareFields);
      expect(bare.id).to.match(/\/trigger\/queued\/0$/);
      expect(bare['content-type']).to.equal('application/json');
      expect(JSON.parse(bare.data)).to.deep.equal(RENDERED);

      const [[, ceFields]] = await redis.xrange(ceStream, '-', '+');
      const ce = fieldsOf(ceFields);
      expect(ce.id).to.match(/\/trigger\/queued\/1$/);
      const event = JSON.parse(ce.event);
      expect(event).to.include({ id: ce.id, type: 'orm.trigger.queued', trigger: 'queued', specversion: '1.0' });
      expect(event.data).to.deep.equal(RENDERED);
    } finally {
      await run.stop();
      await redis.del(brokerStream, bareStream, ceStream);
      redis.disconnect();
    }
  });

  it('fan-out end to end: each change goes to the default sink, a webhook and Redis; the webhook is down for a while; everything arrives once, in per-row order for each destination, and the slot never passes an undelivered action', async () => {
    const hooks = await startWebhookReceiver();
    const sink = await startReceiver();
    const redis = new Redis('redis://127.0.0.1:6379');
    const stream = `${unique()}_mixed`;
    let failing = true;
    hooks.respondWith(() => (failing ? { status: 503 } : { status: 200 }));
    const run = await startRun(() => `${allowReceiver(hooks)}
brokers:
  queue: { type: redis, conn: { url: "redis://127.0.0.1:6379" }, params: { stream: "${stream}" } }
triggers:
  - name: mixed
    tables: [sales]
    on: [post_save]
    payload: { id: "{{ id }}", qty: "{{ qty }}" }
    actions:
      - webhook: { url: "${hooks.url}/mixed" }
      - cloudevent: { type: com.example.mixed }
      - broker: queue
`, { K_SINK: sink.url });
    try {
      // Two rows, each changed three times, in separate transactions.
      await run.db.query(INSERT_ROW);
      const firstCommit = await currentLsn(run.db);
      await run.db.query('INSERT INTO sales VALUES (2, 1, 1.00, null, false)');
      for (const qty of [13, 14]) {
        await run.db.query('UPDATE sales SET qty = $1 WHERE id = 1', [qty]);
        await run.db.query('UPDATE sales SET qty = qty + 1 WHERE id = 2');
      }
      const written = await currentLsn(run.db);
      const expected = { 1: [12, 13, 14], 2: [1, 2, 3] } as Record<number, number[]>;
      const byRow = (items: { id: number; qty: number }[]) => ({
        1: items.filter((i) => i.id === 1).map((i) => i.qty), 2: items.filter((i) => i.id === 2).map((i) => i.qty),
      });

      // The other two destinations get every change while the webhook refuses them all.
      await sink.waitFor((events) => events.filter((e) => e.type === 'com.example.mixed').length === 6);
      await waitFor(async () => (await redis.xlen(stream)) === 6, { timeoutMs: 20_000, intervalMs: 50, what: 'the Redis action of every change' });
      await hooks.waitFor(() => hooks.to('/mixed').length >= 4, 'the webhook to fail a few times');
      // The slot never passes the first change while its webhook delivery is outstanding: sampled while failing.
      for (let i = 0; i < 5; i++) {
        expect(await acknowledged(run.db, run.name, firstCommit), 'acknowledged past an undelivered action').to.equal(false);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(hooks.to('/mixed').every((r) => r.status === 503), 'still failing').to.equal(true);

      failing = false;
      await waitFor(() => acknowledged(run.db, run.name, written), { timeoutMs: 30_000, intervalMs: 100, what: 'everything acknowledged once the webhook answers' });

      const webhookBodies = hooks.to('/mixed').filter((r) => r.status === 200).map((r) => JSON.parse(r.body) as { id: number; qty: number });
      expect(byRow(webhookBodies), 'the webhook: each change once, in row order').to.deep.equal(expected);
      const entries = await redis.xrange(stream, '-', '+');
      const redisBodies = entries.map(([, flat]) => JSON.parse(fieldsOf(flat).data) as { id: number; qty: number });
      expect(byRow(redisBodies), 'Redis: each change once, in row order').to.deep.equal(expected);
      const derived = sink.accepted.filter((e) => e.type === 'com.example.mixed').map((e) => e.data as { id: number; qty: number });
      expect(byRow(derived), 'the derived CloudEvents: each once, in row order').to.deep.equal(expected);
      const defaults = sink.accepted.filter((e) => e.type === 'orm.post_save').map((e) => (e.data as { data: { id: number; qty: number } }).data);
      expect(byRow(defaults), 'the default events: each once, in row order').to.deep.equal(expected);
      expect((await run.db.query(`SELECT 1 FROM ${run.name}_dl.failed`).catch(() => ({ rowCount: 0 }))).rowCount, 'nothing dead-lettered').to.equal(0);
    } finally {
      await run.stop();
      await hooks.close();
      await sink.close();
      await redis.del(stream);
      redis.disconnect();
    }
  });
});

/** A stream entry's [field, value, …] as an object. */
function fieldsOf(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]] = flat[i + 1];
  return out;
}
