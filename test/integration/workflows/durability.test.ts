/**
 * Exactly one run per instance under concurrency, redelivery and crashes (docs/workflows.md,
 * "Durability" and "Concurrency"): two processes firing one session at once, a redelivered
 * input, a runner killed with SIGKILL mid-run, and a crash between a script and its work pointer.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { expect } from 'chai';
import Redis from 'ioredis';
import { showSession } from '../../../src/workflows/inspect';
import { WorkflowRunner, type RunRequest } from '../../../src/workflows/runner';
import { Scripts } from '../../../src/workflows/scripts';
import { WorkflowStore, type InputEvent } from '../../../src/workflows/store';
import { until } from '../sinks/support';
import type { ChildArgs } from './child';
import { deleteKeys, REDIS_URL, stockExecutor, uniquePrefix, workflow, type TaskSpec } from './support';

const CHILD = path.join(__dirname, 'child.js');

const TASKS: Record<string, TaskSpec> = {
  t_ship: { after: ['paid', 'packed'] },
  t_every: { after: [], andEvery: 'paid' },
  t_notify: { after: ['t_ship'] },
};

describe('workflows: one run per instance under concurrency and crashes (real Redis, child processes)', function () {
  this.timeout(60_000);
  const prefix = uniquePrefix();
  let redis: Redis;
  const children: ChildProcess[] = [];
  let cases = 0;

  before(() => {
    redis = new Redis(REDIS_URL);
  });
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  after(async () => {
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  /** Each test its own workflow name, so streams and sessions never meet. */
  function fresh(): { name: string; store: WorkflowStore } {
    const name = `dur${++cases}`;
    return { name, store: new WorkflowStore(redis, workflow(name, TASKS), { prefix }) };
  }

  function start(args: ChildArgs): { child: ChildProcess; exited: Promise<{ code: number | null; signal: string | null; stderr: string }> } {
    const child = spawn(process.execPath, [CHILD, JSON.stringify(args)], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr })));
    return { child, exited };
  }

  it('20 inputs of one session fired at once from 2 processes, each event twice: t_ship runs once, t_every once per paid event', async () => {
    const { name, store } = fresh();
    const events: InputEvent[] = Array.from({ length: 20 }, (_, i) => ({ input: i % 2 ? 'packed' : 'paid', eventId: `e${i}`, data: { n: i } }));
    const common = { mode: 'fire' as const, prefix, name, tasks: TASKS, session: 'order-1' };
    const a = start({ ...common, events, consumer: 'a' });
    const b = start({ ...common, events: [...events].reverse(), consumer: 'b' });
    await redis.rpush(`${prefix}go`, '1', '1');
    for (const { exited } of [a, b]) {
      const status = await exited;
      expect(status.code, status.stderr).to.equal(0);
    }
    // Whatever a child scheduled after the other had drained is still in the stream: run it here.
    const runs: RunRequest[] = [];
    await new WorkflowRunner(store, stockExecutor({}, runs)).drain();
    const all = [...(await redis.lrange(`${prefix}runs`, 0, -1)), ...runs.map((r) => r.instance)].sort();
    expect(all).to.deep.equal(['t_every#0', 't_every#1', 't_every#2', 't_every#3', 't_every#4', 't_every#5', 't_every#6', 't_every#7', 't_every#8', 't_every#9', 't_notify#0', 't_ship#0']);
    const view = await showSession(store, 'order-1');
    expect(view?.instances.map((i) => `${i.name}:${i.status}`)).to.have.members([...all.map((n) => `${n}:finished`)]);
  });

  it('an input redelivered with the same event id is applied once', async () => {
    const { store } = fresh();
    const runs: RunRequest[] = [];
    const runner = new WorkflowRunner(store, stockExecutor({}, runs));
    const paid = { input: 'paid', eventId: 'pay-1', data: { amount: 10 } };
    expect(await store.fire('o', paid)).to.deep.equal({ applied: true, scheduled: ['t_every#0'] });
    await runner.drain();
    expect(await store.fire('o', { ...paid, data: { amount: 99 } })).to.deep.equal({ applied: false, scheduled: [] });
    await store.fire('o', { input: 'packed', eventId: 'pack-1', data: {} });
    await runner.drain();
    expect(runs.map((r) => r.instance).sort()).to.deep.equal(['t_every#0', 't_notify#0', 't_ship#0']);
    const view = await showSession(store, 'o');
    expect(view?.instances.find((i) => i.name === 't_ship#0')?.inputs).to.deep.equal({ paid: { amount: 10 }, packed: {} });
  });

  it('a runner killed with SIGKILL mid-run: its entry is reclaimed after the idle time and the instance finishes once, with the same event id', async () => {
    const { name, store } = fresh();
    await store.fire('o', { input: 'paid', eventId: 'p', data: {} });
    await store.fire('o', { input: 'packed', eventId: 'k', data: {} });
    // t_every#0 and t_ship#0 are scheduled; the child takes both and hangs in each.
    const { child, exited } = start({ mode: 'hang', prefix, name, tasks: TASKS, session: 'o', consumer: 'doomed' });
    const started: string[] = [];
    while (started.length < 2) {
      const got = await redis.blpop(`${prefix}started`, 20);
      expect(got, 'the child started its runs').to.not.equal(null);
      started.push((got as [string, string])[1]);
    }
    child.kill('SIGKILL');
    expect((await exited).signal).to.equal('SIGKILL');
    expect((await showSession(store, 'o'))?.instances.filter((i) => i.status === 'running').map((i) => i.name).sort()).to.deep.equal(['t_every#0', 't_ship#0']);

    // Not idle long enough: a runner with a long reclaim time leaves the runs alone.
    const patient: RunRequest[] = [];
    expect(await new WorkflowRunner(store, stockExecutor({}, patient), { reclaimAfterMs: 60_000 }).runOnce()).to.equal(0);

    const runs: RunRequest[] = [];
    const rescuer = new WorkflowRunner(store, stockExecutor({}, runs), { reclaimAfterMs: 300, consumer: 'rescuer' });
    const deadline = Date.now() + 20_000;
    for (;;) {
      await rescuer.drain();
      const view = await showSession(store, 'o');
      if (view?.instances.every((i) => i.status === 'finished') && view.instances.length === 3) break;
      expect(Date.now(), 'the dead runner\'s runs were taken over').to.be.below(deadline);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(patient).to.have.length(0);
    expect(runs.map((r) => `${r.instance}@${r.attempt}`).sort()).to.deep.equal(['t_every#0@2', 't_notify#0@1', 't_ship#0@2']);
    const first = started.map((s) => JSON.parse(s) as { instance: string; attempt: number; id: string }).sort((x, y) => (x.instance < y.instance ? -1 : 1));
    expect(first.map((f) => `${f.instance}@${f.attempt}`)).to.deep.equal(['t_every#0@1', 't_ship#0@1']);
    const ship = runs.find((r) => r.instance === 't_ship#0') as RunRequest;
    expect(ship.id).to.match(/^workflow:dur\d+\/o\/t_ship#0@\d+$/);
    expect(ship.id, 'the same event id on the second attempt').to.equal(first[1].id);
    expect(ship.subject).to.equal(`${name}/o/t_ship#0`);
    const view = await showSession(store, 'o');
    expect(view?.instances.map((i) => [i.name, i.status, i.attempts])).to.deep.equal([
      ['t_every#0', 'finished', 2],
      ['t_notify#0', 'finished', 1],
      ['t_ship#0', 'finished', 2],
    ]);
    expect(await store.queue.pendingCount()).to.equal(0);
  });

  it('a crash between the script and the work pointer: redelivering the input writes the pointer again; the run happens once', async () => {
    const { store } = fresh();
    const runs: RunRequest[] = [];
    const runner = new WorkflowRunner(store, stockExecutor({}, runs));
    await store.fire('o', { input: 'packed', eventId: 'k', data: {} });
    // The script committed, then the process died before XADD: no pointer.
    expect(await store.applyInput('o', { input: 'paid', eventId: 'p', data: {} })).to.deep.equal({ applied: true, scheduled: ['t_ship#0', 't_every#0'] });
    expect(await runner.drain()).to.equal(0);
    expect(runs).to.have.length(0);
    // The change was not acknowledged, so it comes again: same event id.
    expect(await store.fire('o', { input: 'paid', eventId: 'p', data: {} })).to.deep.equal({ applied: false, scheduled: ['t_ship#0', 't_every#0'] });
    await runner.drain();
    expect(runs.map((r) => r.instance).sort()).to.deep.equal(['t_every#0', 't_notify#0', 't_ship#0']);
    // A third delivery finds nothing left to point at.
    expect(await store.fire('o', { input: 'paid', eventId: 'p', data: {} })).to.deep.equal({ applied: false, scheduled: [] });
    expect(await runner.drain()).to.equal(0);
  });

  it('a crash between finish_run and its cascade pointer: the unacknowledged entry is reclaimed and points at the cascade again', async () => {
    const { store } = fresh();
    await store.fire('o', { input: 'packed', eventId: 'k', data: {} });
    await store.fire('o', { input: 'paid', eventId: 'p', data: {} });
    await store.queue.ensureGroup();
    const entries = await store.queue.read('crashing', 10);
    const ship = entries.find((e) => e.instance === 't_ship#0');
    expect(ship).to.not.equal(undefined);
    const claim = { session: 'o', instance: 't_ship#0', entry: ship?.id as string, consumer: 'crashing' };
    expect((await store.startRun(claim)).kind).to.equal('run');
    // finish_run.lua ran (t_notify#0 scheduled by the cascade), then the runner died: no pointer, no XACK.
    const reply = await new Scripts(redis).run('finish_run', store.keys.session('o'), [store.graph, 't_ship#0', claim.entry, 'crashing', '{}', store.ttlMs]);
    expect(reply).to.deep.equal(['ok', ['t_notify#0']]);

    const runs: RunRequest[] = [];
    const rescuer = new WorkflowRunner(store, stockExecutor({}, runs), { reclaimAfterMs: 200, consumer: 'rescuer' });
    const deadline = Date.now() + 20_000;
    while (!runs.some((r) => r.instance === 't_notify#0')) {
      await rescuer.drain();
      expect(Date.now(), 't_notify#0 ran').to.be.below(deadline);
      await new Promise((r) => setTimeout(r, 100));
    }
    // t_every#0's entry was pending on the crashed consumer too, never started: reclaimed and run once.
    expect(runs.map((r) => `${r.instance}@${r.attempt}`).sort()).to.deep.equal(['t_every#0@1', 't_notify#0@1']);
    const view = await showSession(store, 'o');
    expect(view?.instances.map((i) => `${i.name}:${i.status}`)).to.deep.equal(['t_every#0:finished', 't_notify#0:finished', 't_ship#0:finished']);
    expect(await store.queue.pendingCount()).to.equal(0);
  });

  it('a duplicate pointer (requeue) is harmless: the second start is refused', async () => {
    const { store } = fresh();
    await store.applyInput('o', { input: 'paid', eventId: 'p', data: {} });
    expect(await store.requeue('o')).to.deep.equal(['t_every#0']);
    expect(await store.requeue('o')).to.deep.equal(['t_every#0']);
    const runs: RunRequest[] = [];
    expect(await new WorkflowRunner(store, stockExecutor({}, runs)).drain()).to.equal(2);
    expect(runs.map((r) => r.instance)).to.deep.equal(['t_every#0']);
  });

  it('a started runner waits on the stream (its own connection), runs work as it arrives, and stops', async () => {
    const { store } = fresh();
    const runs: RunRequest[] = [];
    const runner = new WorkflowRunner(store, stockExecutor({}, runs), { blockMs: 200 });
    runner.start();
    try {
      await store.fire('o', { input: 'paid', eventId: 'p', data: {} });
      await store.fire('o', { input: 'packed', eventId: 'k', data: {} });
      await until('the three runs', 10_000, () => (runs.length === 3 ? true : undefined));
      // the shared connection stayed usable while the runner blocked on its own
      expect(await redis.ping()).to.equal('PONG');
    } finally {
      await runner.stop();
    }
    expect(runs.map((r) => r.instance).sort()).to.deep.equal(['t_every#0', 't_notify#0', 't_ship#0']);
    expect(await store.queue.pendingCount()).to.equal(0);
  });
});
