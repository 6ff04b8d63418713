/**
 * Reading workflow state (list, show, stats), the hooks metrics are built on, and the session's
 * expiry (docs/workflows.md, "Keys and memory"), against a real Redis.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import { RawJson } from '../../../src/events/json-text';
import type { InputAppliedEvent, RunEndedEvent, RunStartedEvent } from '../../../src/workflows/hooks';
import { listSessions, showSession, workflowStats } from '../../../src/workflows/inspect';
import { WorkflowRunner, type RunRequest } from '../../../src/workflows/runner';
import { WorkflowStore } from '../../../src/workflows/store';
import { until } from '../sinks/support';
import { deleteKeys, REDIS_URL, stockExecutor, uniquePrefix, workflow } from './support';

describe('workflows: inspection, hooks and expiry (real Redis)', function () {
  this.timeout(30_000);
  const prefix = uniquePrefix();
  let redis: Redis;

  before(() => {
    redis = new Redis(REDIS_URL);
  });
  after(async () => {
    await deleteKeys(redis, prefix);
    await redis.quit();
  });

  it('lists sessions (all, or unresolved only), shows one with parsed values, counts instances by status, and reports through hooks', async () => {
    const applied: InputAppliedEvent[] = [];
    const started: RunStartedEvent[] = [];
    const ended: RunEndedEvent[] = [];
    const hooks = {
      inputApplied: (e: InputAppliedEvent) => applied.push(e),
      runStarted: (e: RunStartedEvent) => started.push(e),
      runEnded: (e: RunEndedEvent) => ended.push(e),
    };
    const config = workflow('inspect', { t_ship: { after: ['paid', 'packed'] }, t_notify: { after: ['t_ship'] } });
    const store = new WorkflowStore(redis, config, { prefix, hooks });
    const fails = new Set(['broken']);
    const runner = new WorkflowRunner(
      store,
      async (run) => {
        if (fails.has(run.session)) throw new Error('carrier down');
        return { carrier: 'dhl', exact: run.payload.paid };
      },
      { hooks },
    );
    const odd = 'a{b}%c'; // braces would move the hash tag: escaped in the key, intact everywhere else
    for (const [session, inputs] of [['done', ['paid', 'packed']], ['waiting', ['paid']], ['broken', ['paid', 'packed']], [odd, ['packed']]] as const) {
      for (const input of inputs) await store.fire(session, { input, eventId: `${session}-${input}`, data: input === 'paid' ? { amount: new RawJson('12345678901234567890') } : { box: 1 } });
    }
    await runner.drain();

    expect((await listSessions(store)).map((s) => s.session)).to.deep.equal(['a{b}%c', 'broken', 'done', 'waiting']);
    expect((await listSessions(store, { unresolvedOnly: true })).map((s) => [s.session, s.unresolved])).to.deep.equal([
      ['a{b}%c', 1],
      ['broken', 1],
      ['waiting', 1],
    ]);
    expect(store.keys.session(odd)).to.equal(`${prefix}{wf:inspect:a%7Bb%7D%25c}`);

    const done = await showSession(store, 'done');
    expect(done?.instances.map((i) => [i.name, i.status])).to.deep.equal([
      ['t_notify#0', 'finished'],
      ['t_ship#0', 'finished'],
    ]);
    // Lua never decodes data (its cjson keeps 14 digits): the exact number survives input, payload and result.
    expect(String((done?.instances[1].result as { exact: { amount: RawJson } }).exact.amount)).to.equal('12345678901234567890');
    expect(await redis.hget(store.keys.session('done'), 'v:r:t_ship#0')).to.equal('{"carrier":"dhl","exact":{"amount":12345678901234567890}}');
    expect(done?.instances[0].inputs.t_ship).to.have.keys('carrier', 'exact');
    expect(done?.latest).to.have.keys('paid', 'packed', 't_ship', 't_notify');
    expect(done?.unresolvedTasks).to.deep.equal([]);
    const broken = await showSession(store, 'broken');
    expect(broken?.instances).to.have.length(1);
    expect(broken?.instances[0]).to.deep.include({ name: 't_ship#0', status: 'failed', error: { type: 'Error', message: 'carrier down' } });
    expect(broken?.unresolvedTasks).to.deep.equal(['t_ship', 't_notify']);
    expect(await showSession(store, 'never')).to.equal(undefined);

    expect(await workflowStats(store)).to.deep.equal({
      sessions: 4,
      sessionsOpen: 3,
      instances: { unstarted: 2, scheduled: 0, running: 0, finished: 2, failed: 1, replayed: 0, skipped: 0, abandoned: 0 },
    });

    expect(applied.map((e) => `${e.session}/${e.input}:${e.scheduled.join(',')}`)).to.deep.equal([
      'done/paid:',
      'done/packed:t_ship#0',
      'waiting/paid:',
      'broken/paid:',
      'broken/packed:t_ship#0',
      'a{b}%c/packed:',
    ]);
    expect(started.map((e) => `${e.session}/${e.instance}@${e.attempt}`).sort()).to.deep.equal(['broken/t_ship#0@1', 'done/t_notify#0@1', 'done/t_ship#0@1']);
    for (const e of started) expect(e.sinceFirstInputMs).to.be.at.least(0);
    expect(ended.map((e) => `${e.session}/${e.instance}:${e.outcome}`).sort()).to.deep.equal(['broken/t_ship#0:failed', 'done/t_notify#0:finished', 'done/t_ship#0:finished']);
  });

  it('a session with a run scheduled never expires; once none is, it expires ttl after its last change, and a new incarnation gets new event ids', async () => {
    const config = { ...workflow('expiry', { t_ship: { after: ['paid'] } }), ttl: 'PT1S', ttlMs: 1000 };
    const store = new WorkflowStore(redis, config, { prefix });
    const key = store.keys.session('o');
    await store.fire('o', { input: 'paid', eventId: 'p1', data: {} });
    expect(await redis.pttl(key), 'scheduled: no expiry').to.equal(-1);
    const runs: RunRequest[] = [];
    const runner = new WorkflowRunner(store, stockExecutor({}, runs));
    await runner.drain();
    const ttl = await redis.pttl(key);
    expect(ttl).to.be.above(0).and.at.most(1000);
    await until('the session to expire', 10_000, async () => ((await redis.exists(key)) === 0 ? true : undefined));
    // The event id was forgotten with the session: the same id is a new input now.
    expect(await store.fire('o', { input: 'paid', eventId: 'p1', data: {} })).to.deep.equal({ applied: true, scheduled: ['t_ship#0'] });
    await runner.drain();
    expect(runs.map((r) => r.instance)).to.deep.equal(['t_ship#0', 't_ship#0']);
    expect(runs[0].subject).to.equal(runs[1].subject);
    expect(runs[0].id).to.not.equal(runs[1].id);
  });
});
