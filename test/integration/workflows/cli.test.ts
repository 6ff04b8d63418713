/**
 * `pg-cloudevents workflows list|show|replay|skip` as a child process against a real Redis,
 * with no database configured: the state is brought about through the core's store and a
 * runner with stock tasks in the test process, which also runs what the commands scheduled.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import { stringifyJson } from '../../../src/events/json-text';
import { spawnCli } from '../harness/process';
import { writeTempFile } from '../support';
import { startRecovery, WORKFLOW, type Recovery } from './recovery-support';

const EXACT = '12345678901234567890';

describe('workflows commands: list, show, replay, skip (real Redis, no database)', function () {
  this.timeout(60_000);
  let r: Recovery;

  async function cli(args: string[], env: Record<string, string> = {}) {
    const p = spawnCli(['workflows', ...args], { PG_CLOUDEVENTS_CONFIG: r.configPath, LOG_LEVEL: 'warn', ...env });
    const { code } = await p.exit();
    return { code, stdout: p.stdout(), stderr: p.stderr() };
  }

  before(async () => {
    r = await startRecovery();
    await r.seed(['done'], 'passThru');
    await r.seed(['broken', 'replay-me', 'params', 'skip-me', 'cascade-me'], 'failing');
  });
  after(async () => r?.close());

  it('list: every session with its instances by status and unresolved tasks; --unresolved keeps those with one; --json', async () => {
    const all = await cli(['list']);
    expect(all.code, all.stderr).to.equal(0);
    expect(all.stdout).to.include(`${WORKFLOW}: 6 sessions`);
    expect(all.stdout).to.match(/^ {2}"done" {2}finished 2 {2}resolved {2}updated \S+Z$/m);
    expect(all.stdout).to.match(/^ {2}"broken" {2}failed 1 {2}unresolved: t_alpha, t_beta {2}updated /m);

    const unresolved = await cli(['list', '--unresolved', '--json']);
    expect(unresolved.code, unresolved.stderr).to.equal(0);
    const { workflows } = JSON.parse(unresolved.stdout) as { workflows: { workflow: string; sessions: { session: string; statuses: object; unresolvedTasks: string[] }[] }[] };
    expect(workflows.map((w) => w.workflow)).to.deep.equal([WORKFLOW]);
    expect(workflows[0].sessions.map((s) => s.session)).to.deep.equal(['broken', 'cascade-me', 'params', 'replay-me', 'skip-me']);
    expect(workflows[0].sessions[0]).to.deep.include({ statuses: { failed: 1 }, unresolvedTasks: ['t_alpha', 't_beta'] });
  });

  it('show: each instance with status, inputs, result, error and timestamps; --json keeps exact numbers', async () => {
    const done = await cli(['show', 'done']);
    expect(done.code, done.stderr).to.equal(0);
    expect(done.stdout).to.include('unresolved tasks: none');
    expect(done.stdout).to.match(/^t_alpha#0 {2}finished\n {4}inputs: \{"paid":\{"order_id":"done","amount":12345678901234567890\}\}\n {4}result: \{"kwargs":/m);
    expect(done.stdout).to.match(/^t_beta#0 {2}finished$/m);

    const broken = await cli(['show', 'broken', '--json', '--workflow', WORKFLOW]);
    expect(broken.code, broken.stderr).to.equal(0);
    expect(broken.stdout, 'the exact number, as stored').to.include(`"amount":${EXACT}`);
    const view = JSON.parse(broken.stdout) as { unresolvedTasks: string[]; instances: Record<string, unknown>[] };
    expect(view.unresolvedTasks).to.deep.equal(['t_alpha', 't_beta']);
    expect(view.instances).to.have.length(1);
    expect(view.instances[0]).to.deep.include({ name: 't_alpha#0', status: 'failed', depth: 0, error: { type: 'Error', message: 't_alpha#0 fails on purpose' } });
    expect(view.instances[0].timestamps).to.include.keys('created', 'scheduled', 'running', 'failed');

    const missing = await cli(['show', 'nope']);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.include(`workflow ${WORKFLOW} has no session "nope"`);
  });

  it('replay of a failed instance: replayed, the clone #1 scheduled with the same inputs, and a runner runs it', async () => {
    const res = await cli(['replay', 't_alpha#0', '--session', 'replay-me']);
    expect(res.code, res.stderr).to.equal(0);
    expect(res.stdout).to.equal(`${WORKFLOW}/replay-me/t_alpha#0 replayed: t_alpha#1 is scheduled\n`);
    const meta = await r.store.meta('replay-me');
    expect(meta!.inst['t_alpha#0'].status).to.equal('replayed');
    expect(meta!.inst['t_alpha#1']).to.deep.include({ status: 'scheduled', depth: 1, parent: 't_alpha#0' });
    expect(meta!.inst['t_alpha#1'].inputs).to.deep.equal(meta!.inst['t_alpha#0'].inputs);
    // The pointer was written: a runner picks the clone up, and its result cascades to t_beta.
    const runs = await r.drain();
    expect(runs.map((x) => `${x.session}/${x.instance}`)).to.deep.equal(['replay-me/t_alpha#1', 'replay-me/t_beta#0']);
    expect(stringifyJson(runs[0].payload)).to.equal('{"paid":{"order_id":"replay-me","amount":12345678901234567890}}');
  });

  it('replay --params replaces the clone\'s inputs entirely (the subject as the address)', async () => {
    const res = await cli(['replay', `${WORKFLOW}/params/t_alpha#0`, '--params', `{"paid": {"amount": 1.50, "big": ${EXACT}}}`, '--json']);
    expect(res.code, res.stderr).to.equal(0);
    expect(JSON.parse(res.stdout)).to.deep.equal({ workflow: WORKFLOW, session: 'params', instance: 't_alpha#0', status: 'replayed', scheduled: ['t_alpha#1'] });
    const runs = await r.drain();
    expect(runs[0].instance).to.equal('t_alpha#1');
    // No order_id left: replaced, not merged; exact numbers as given.
    expect(stringifyJson(runs[0].payload)).to.equal(`{"paid":{"amount":1.50,"big":${EXACT}}}`);
  });

  it('replay of a finished instance is refused with the state machine\'s message (exit 1); a missing instance is named', async () => {
    const res = await cli(['replay', `${WORKFLOW}/done/t_alpha#0`]);
    expect(res.code).to.equal(1);
    expect(res.stderr).to.equal(`pg-cloudevents workflows replay: instance t_alpha#0 (finished) cannot be replayed: only a failed instance can [PGCE_ERR_WORKFLOW_STATE]\n`);
    expect((await r.store.meta('done'))!.inst['t_alpha#0'].status).to.equal('finished');

    const missing = await cli(['skip', `${WORKFLOW}/broken/t_alpha#7`]);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.include('session "broken" of workflow wfops has no instance t_alpha#7 (instances: t_alpha#0)');
    const workflow = await cli(['replay', 'nope/broken/t_alpha#0']);
    expect(workflow.code).to.equal(1);
    expect(workflow.stderr).to.include('no workflow "nope" is configured (workflows: wfops)');
  });

  it('skip without --cascade: skipped, and the dependant never gets an instance and stays unresolved', async () => {
    const res = await cli(['skip', `${WORKFLOW}/skip-me/t_alpha#0`]);
    expect(res.code, res.stderr).to.equal(0);
    expect(res.stdout).to.equal(`${WORKFLOW}/skip-me/t_alpha#0 skipped: its dependants will not run\n`);
    expect(await r.drain()).to.deep.equal([]);
    const meta = await r.store.meta('skip-me');
    expect(Object.keys(meta!.inst)).to.deep.equal(['t_alpha#0']);
    expect(meta!.inst['t_alpha#0'].status).to.equal('skipped');
    const list = await cli(['list', '--unresolved', '--json']);
    const sessions = (JSON.parse(list.stdout) as { workflows: { sessions: { session: string; unresolvedTasks: string[] }[] }[] }).workflows[0].sessions;
    expect(sessions.find((s) => s.session === 'skip-me')?.unresolvedTasks).to.deep.equal(['t_beta']);
  });

  it('skip --cascade --result: the dependant runs with { t_alpha: <result> }', async () => {
    const res = await cli(['skip', 't_alpha#0', '--session', 'cascade-me', '--cascade', '--result', '{"carrier": "dhl"}']);
    expect(res.code, res.stderr).to.equal(0);
    expect(res.stdout).to.equal(`${WORKFLOW}/cascade-me/t_alpha#0 skipped, its result cascaded: t_beta#0 scheduled\n`);
    const runs = await r.drain();
    expect(runs.map((x) => x.instance)).to.deep.equal(['t_beta#0']);
    expect(runs[0].payload).to.deep.equal({ t_alpha: { carrier: 'dhl' } });
    const after = await cli(['show', 'cascade-me', '--json']);
    const view = JSON.parse(after.stdout) as { unresolvedTasks: string[]; instances: { name: string; status: string; result?: unknown }[] };
    expect(view.instances.map((i) => [i.name, i.status])).to.deep.equal([['t_alpha#0', 'skipped'], ['t_beta#0', 'finished']]);
    expect(view.instances[0].result).to.deep.equal({ carrier: 'dhl' });
    expect(view.unresolvedTasks).to.deep.equal([]);
  });

  it('requeue: a scheduled instance whose pointer was never written is pointed at again, and runs', async () => {
    // The script alone: the instance is scheduled, the pointer missing (a crash in between).
    expect(await r.store.applyInput('lost', { input: 'paid', eventId: 'lost-paid', data: { order_id: 'lost' } })).to.deep.equal({ applied: true, scheduled: ['t_alpha#0'] });
    expect(await r.drain(), 'no pointer, no run').to.deep.equal([]);
    const res = await cli(['requeue', 'lost']);
    expect(res.code, res.stderr).to.equal(0);
    expect(res.stdout).to.equal(`${WORKFLOW}/lost: pointed the runners at t_alpha#0\n`);
    expect((await r.drain()).map((x) => x.instance)).to.deep.equal(['t_alpha#0', 't_beta#0']);
    const idle = await cli(['requeue', 'lost']);
    expect(idle.stdout).to.equal(`${WORKFLOW}/lost: no instance is scheduled; nothing to do\n`);
  });

  it('bad usage exits 2 naming the problem, before anything changes', async () => {
    const cases: [string[], string][] = [
      [['replay', 't_alpha#0'], 'INSTANCE t_alpha#0 needs --session <session> (or give <workflow>/<session>/t_alpha#0)'],
      [['replay', 't_alpha', '--session', 'broken'], 'INSTANCE: "t_alpha" is not an instance name: <task>#<n>'],
      [['replay', `${WORKFLOW}/broken/t_alpha#0`, '--session', 'broken'], 'names its workflow and session already: leave out --workflow and --session'],
      [['replay', `${WORKFLOW}//t_alpha#0`], 'names no session'],
      [['replay', `${WORKFLOW}/broken/t_alpha#0`, '--params', '[1]'], "option '--params <json>' argument '[1]' is invalid. must be a JSON object"],
      [['skip', `${WORKFLOW}/broken/t_alpha#0`, '--result', '{}'], '--result goes with --cascade'],
      [['skip', `${WORKFLOW}/broken/t_alpha#0`, '--cascade', '--result', '{"a":'], "option '--result <json>' argument '{\"a\":' is invalid. must be a JSON object"],
    ];
    for (const [args, message] of cases) {
      const res = await cli(args);
      expect(res.code, `${args.join(' ')}: ${res.stderr}`).to.equal(2);
      expect(res.stderr, args.join(' ')).to.include(message);
      expect(res.stderr).to.include(`see: pg-cloudevents workflows ${args[0]} --help`);
    }
    expect((await r.store.meta('broken'))!.inst['t_alpha#0'].status, 'nothing changed').to.equal('failed');
  });

  it('no workflows configured, no Redis URL, or Redis unreachable: a message naming what to set', async () => {
    const none = await cli(['list'], { PG_CLOUDEVENTS_CONFIG: writeTempFile('none.yaml', 'log: { level: warn }\n') });
    expect(none.code).to.equal(2);
    expect(none.stderr).to.include('workflows: no workflows are configured (add workflows: to the configuration file)');

    const withoutRedis = writeTempFile('noredis.yaml', fs.readFileSync(r.configPath, 'utf8').replace(/^redis:.*\n/m, ''));
    const noUrl = await cli(['list'], { PG_CLOUDEVENTS_CONFIG: withoutRedis });
    expect(noUrl.code).to.equal(2);
    expect(noUrl.stderr).to.include('redis.url: required when workflows are configured (or set REDIS_URL)');

    const down = await cli(['list'], { PG_CLOUDEVENTS_CONFIG: withoutRedis, REDIS_URL: 'redis://user:s3cret@127.0.0.1:1' });
    expect(down.code).to.equal(1);
    expect(down.stderr).to.equal('pg-cloudevents workflows list: Redis at redis://127.0.0.1:1 (redis.url or REDIS_URL) cannot be reached: connect ECONNREFUSED 127.0.0.1:1\n');
    expect(down.stderr).to.not.include('s3cret');
  });
});
