/**
 * `/api/workflows` of the admin API against a real Redis: the server as `run` starts it (the
 * same bearer check, error handler and body limit as /api/triggers), the state brought about and
 * the scheduled work run through the core's store and a runner with stock tasks.
 */
import { expect } from 'chai';
import { loadConfig } from '../../../src/config/load';
import { stringifyJson } from '../../../src/events/json-text';
import { Lifecycle } from '../../../src/lifecycle';
import { startServer, type RunningServer } from '../../../src/server';
import { createMetrics, type PipelineMetrics } from '../../../src/server/metrics';
import { StatusTracker } from '../../../src/server/status';
import { connectOperations, WorkflowOperations } from '../../../src/workflows/operations';
import { createTestDatabase } from '../harness/postgres';
import { spawnCli } from '../harness/process';
import { freePort, writeTempFile } from '../support';
import { recoveryYaml, startRecovery, WORKFLOW, type Recovery } from './recovery-support';

const TOKEN = 'test-admin-token-hy-0123456789abcdef';
const EXACT = '12345678901234567890';

describe('admin API /api/workflows (real Redis)', function () {
  this.timeout(30_000);
  let r: Recovery;
  let lifecycle: Lifecycle;
  let metrics: PipelineMetrics;
  let status: StatusTracker;
  const servers: RunningServer[] = [];
  let base: string;

  async function serve(admin?: Parameters<typeof startServer>[0]['admin']): Promise<string> {
    const server = await startServer({ port: 0, host: '127.0.0.1', metrics, status, admin });
    servers.push(server);
    return `http://127.0.0.1:${server.port}`;
  }

  const api = (path: string, init: RequestInit = {}, token: string | null = TOKEN) => fetch(`${base}/api${path}`, {
    ...init,
    headers: { 'content-type': 'application/json', ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
  });
  const post = (path: string, body: string) => api(path, { method: 'POST', body });
  const instance = (session: string, name: string, action: string) => `/workflows/${WORKFLOW}/sessions/${encodeURIComponent(session)}/instances/${encodeURIComponent(name)}/${action}`;

  before(async () => {
    r = await startRecovery();
    await r.seed(['done'], 'passThru');
    await r.seed(['broken', 'a/b', 'skip-me', 'cascade-me'], 'failing');
    lifecycle = new Lifecycle();
    metrics = createMetrics(lifecycle);
    status = new StatusTracker(lifecycle);
    const config = loadConfig({ env: {}, configPath: r.configPath, requires: { tables: false, database: false } });
    base = await serve({ token: TOKEN, config, workflows: new WorkflowOperations(r.redis, config.workflows!, { prefix: r.prefix }) });
  });
  after(async () => {
    for (const s of servers) await s.close();
    metrics?.dispose();
    status?.dispose();
    await r?.close();
  });

  it('without ADMIN_TOKEN there is no admin API (404); without the token, or with another, 401', async () => {
    const off = await serve(undefined);
    expect((await fetch(`${off}/api/workflows`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).to.equal(404);
    const anonymous = await api('/workflows', {}, null);
    expect(anonymous.status).to.equal(401);
    expect(anonymous.headers.get('www-authenticate')).to.match(/^Bearer /);
    const noToken = await api(instance('broken', 't_alpha#0', 'replay'), { method: 'POST', body: '{}' }, null);
    expect(noToken.status).to.equal(401);
    const wrongToken = await api(instance('broken', 't_alpha#0', 'replay'), { method: 'POST', body: '{}' }, `${TOKEN}x`);
    expect(wrongToken.status).to.equal(401);
    expect(wrongToken.headers.get('www-authenticate')).to.include('invalid_token');
    expect((await r.store.meta('broken'))!.inst['t_alpha#0'].status, 'nothing changed').to.equal('failed');
    // This server has no trigger rules table: its paths say so.
    const triggers = await api('/triggers');
    expect(triggers.status).to.equal(404);
    expect(await triggers.json()).to.deep.equal({ error: 'the trigger rules table is off (triggersTable.enabled: false)' });
  });

  it('GET lists sessions (?unresolved=true only those with an unresolved task), one workflow\'s, and shows one session with exact numbers', async () => {
    const all = await api('/workflows');
    expect(all.status).to.equal(200);
    const listed = (await all.json()) as { workflows: { workflow: string; sessions: { session: string }[] }[] };
    expect(listed.workflows.map((w) => [w.workflow, w.sessions.map((s) => s.session)])).to.deep.equal([[WORKFLOW, ['a/b', 'broken', 'cascade-me', 'done', 'skip-me']]]);
    const unresolved = (await (await api(`/workflows/${WORKFLOW}/sessions?unresolved=true`)).json()) as { sessions: { session: string; unresolvedTasks: string[] }[] };
    expect(unresolved.sessions.map((s) => s.session)).to.not.include('done');
    expect(unresolved.sessions.find((s) => s.session === 'broken')?.unresolvedTasks).to.deep.equal(['t_alpha', 't_beta']);
    const bad = await api('/workflows?unresolved=maybe');
    expect(bad.status).to.equal(400);
    expect(await bad.json()).to.deep.equal({ errors: ['unresolved: must be true or false'] });

    const shown = await api(`/workflows/${WORKFLOW}/sessions/${encodeURIComponent('a/b')}`);
    expect(shown.status).to.equal(200);
    const text = await shown.text();
    expect(text, 'exact as stored').to.include(`"amount":${EXACT}`);
    const view = JSON.parse(text) as { session: string; instances: { name: string; status: string; error: unknown }[] };
    expect(view.session).to.equal('a/b');
    expect(view.instances).to.have.length(1);
    expect(view.instances[0]).to.deep.include({ name: 't_alpha#0', status: 'failed', error: { type: 'Error', message: 't_alpha#0 fails on purpose' } });

    const noSession = await api(`/workflows/${WORKFLOW}/sessions/nope`);
    expect(noSession.status).to.equal(404);
    expect(((await noSession.json()) as { error: string }).error).to.include('has no session "nope"');
    const noWorkflow = await api('/workflows/nope/sessions/broken');
    expect(noWorkflow.status).to.equal(404);
    expect(await noWorkflow.json()).to.deep.equal({ error: 'no workflow "nope" is configured (workflows: wfops)' });
  });

  it('POST replay: 409 for a finished instance with the state machine\'s message, 404 for a missing one, 200 for a failed one with params replacing the inputs', async () => {
    const refused = await post(instance('done', 't_alpha#0', 'replay'), '');
    expect(refused.status).to.equal(409);
    expect(await refused.json()).to.deep.equal({ error: 'instance t_alpha#0 (finished) cannot be replayed: only a failed instance can' });
    const missing = await post(instance('broken', 't_alpha#3', 'replay'), '{}');
    expect(missing.status).to.equal(404);

    const ok = await post(instance('a/b', 't_alpha#0', 'replay'), `{"params": {"paid": {"amount": 1.50, "big": ${EXACT}}}}`);
    expect(ok.status).to.equal(200);
    expect(await ok.json()).to.deep.equal({ workflow: WORKFLOW, session: 'a/b', instance: 't_alpha#0', status: 'replayed', scheduled: ['t_alpha#1'] });
    const meta = await r.store.meta('a/b');
    expect(meta!.inst['t_alpha#1']).to.deep.include({ status: 'scheduled', depth: 1, parent: 't_alpha#0' });
    const runs = await r.drain();
    expect(runs.map((x) => x.instance)).to.deep.equal(['t_alpha#1', 't_beta#0']);
    expect(stringifyJson(runs[0].payload), 'replaced, exact').to.equal(`{"paid":{"amount":1.50,"big":${EXACT}}}`);
    const again = await post(instance('a/b', 't_alpha#0', 'replay'), '{}');
    expect(again.status, 'replayed already').to.equal(409);
    expect(((await again.json()) as { error: string }).error).to.equal('instance t_alpha#0 (replayed) cannot be replayed: only a failed instance can');
  });

  it('POST skip: 400 for a bad body; without cascade the dependant stays unresolved; with cascade it runs with { t_alpha: result }', async () => {
    const cases: [string, string][] = [
      ['{"result": {"a": 1}}', '(body).result: goes with "cascade": true (without it nothing is fired)'],
      ['{"cascade": "yes"}', '(body).cascade: must be true or false'],
      ['{"cascade": true, "result": [1]}', '(body).result: must be a JSON object, the result to cascade'],
      ['{"cascade": true, "params": {}}', '(body).params: unknown; skip takes cascade, result'],
      ['[]', '(body): must be a JSON object (cascade, result), or empty'],
    ];
    for (const [body, error] of cases) {
      const res = await post(instance('skip-me', 't_alpha#0', 'skip'), body);
      expect(res.status, body).to.equal(400);
      expect(((await res.json()) as { errors: string[] }).errors, body).to.include(error);
    }
    const notJson = await post(instance('skip-me', 't_alpha#0', 'skip'), '{"cascade": ');
    expect(notJson.status).to.equal(400);
    expect(((await notJson.json()) as { errors: string[] }).errors[0]).to.match(/^\(body\): not valid JSON/);
    expect((await post(instance('skip-me', 't_alpha#0', 'replay'), '{"params": 3}')).status).to.equal(400);
    expect((await r.store.meta('skip-me'))!.inst['t_alpha#0'].status, 'nothing changed').to.equal('failed');

    const skipped = await post(instance('skip-me', 't_alpha#0', 'skip'), '{}');
    expect(skipped.status).to.equal(200);
    expect(await skipped.json()).to.deep.include({ status: 'skipped', scheduled: [] });
    expect(await r.drain()).to.deep.equal([]);
    const show = (await (await api(`/workflows/${WORKFLOW}/sessions/skip-me`)).json()) as { unresolvedTasks: string[]; instances: unknown[] };
    expect(show.unresolvedTasks).to.deep.equal(['t_beta']);
    expect(show.instances).to.have.length(1);

    const cascaded = await post(instance('cascade-me', 't_alpha#0', 'skip'), '{"cascade": true, "result": {"carrier": "dhl"}}');
    expect(cascaded.status).to.equal(200);
    expect(await cascaded.json()).to.deep.include({ status: 'skipped', scheduled: ['t_beta#0'] });
    const runs = await r.drain();
    expect(runs.map((x) => `${x.session}/${x.instance}`)).to.deep.equal(['cascade-me/t_beta#0']);
    expect(runs[0].payload).to.deep.equal({ t_alpha: { carrier: 'dhl' } });
    expect((await post(instance('cascade-me', 't_alpha#0', 'skip'), '{}')).status, 'skipped already').to.equal(409);
  });

  it('Redis away: 503, saying so', async () => {
    const config = loadConfig({ env: {}, configPath: r.configPath, requires: { tables: false, database: false } });
    const ops = connectOperations({ url: 'redis://127.0.0.1:1', prefix: r.prefix }, config.workflows!, { maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: () => null });
    ops.redis.on('error', () => undefined);
    const down = await serve({ token: TOKEN, config, workflows: ops });
    try {
      const res = await fetch(`${down}/api/workflows/${WORKFLOW}/sessions/broken`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(res.status).to.equal(503);
      expect(await res.json()).to.deep.equal({ error: 'the workflows\' Redis (redis.url or REDIS_URL) is not reachable; try again' });
    } finally {
      ops.redis.disconnect();
    }
  });

  it('run serves /api/workflows with ADMIN_TOKEN, also with the trigger rules table off', async function () {
    this.timeout(60_000);
    const name = `pgce_hy_${r.prefix.slice(8, 14)}`;
    const db = await createTestDatabase(name);
    const port = await freePort();
    try {
      await db.query('CREATE TABLE orders (id int PRIMARY KEY)');
      const config = writeTempFile('run.yaml', `${recoveryYaml(r.prefix)}tables: [public.orders]
capture: { slot: ${name}, publication: ${name} }
deadLetters: { schema: ${name}_s }
triggersTable: { enabled: false }
`);
      const cli = spawnCli(['run'], { DATABASE_URL: db.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(port), CLOUDEVENTS_HANDLER: 'console', ADMIN_TOKEN: TOKEN });
      try {
        await cli.waitForLine(/capturing/, 30_000);
        const at = (path: string) => fetch(`http://127.0.0.1:${port}/api${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
        const shown = await at(`/workflows/${WORKFLOW}/sessions/done`);
        expect(shown.status, cli.stderr().slice(-2000)).to.equal(200);
        expect(((await shown.json()) as { instances: { status: string }[] }).instances.map((i) => i.status)).to.deep.equal(['finished', 'finished']);
        const triggers = await at('/triggers');
        expect(triggers.status).to.equal(404);
        expect(((await triggers.json()) as { error: string }).error).to.include('triggersTable.enabled: false');
        expect((await fetch(`http://127.0.0.1:${port}/api/workflows`)).status).to.equal(401);
      } finally {
        cli.kill('SIGTERM');
        expect((await cli.exit()).code, cli.stderr().slice(-2000)).to.equal(0);
      }
    } finally {
      await db.drop();
    }
  });
});
