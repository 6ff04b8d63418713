/**
 * The workflow state machine's semantics (docs/workflows.md, "Firing rules"), case by case against
 * a real Redis: each case is a workflow, a sequence of inputs and operator actions (the runner
 * drains the work stream after each), and the instances expected, with statuses, inputs,
 * results and errors. The cases are those of the Triggers framework the model comes from.
 */
import { expect } from 'chai';
import Redis from 'ioredis';
import { WorkflowStateError } from '../../../src/workflows/errors';
import { showSession } from '../../../src/workflows/inspect';
import type { InstanceStatus, InstanceView } from '../../../src/workflows/model';
import { WorkflowRunner } from '../../../src/workflows/runner';
import { WorkflowStore } from '../../../src/workflows/store';
import { deleteKeys, REDIS_URL, stockExecutor, uniquePrefix, workflow, type StockTask, type TaskSpec } from './support';

interface Expected {
  status: InstanceStatus;
  inputs?: Record<string, unknown>;
  result?: unknown;
  abandonState?: string[];
  errorType?: string;
  errorMessage?: RegExp;
  depth?: number;
  parent?: string;
}

type Step =
  | { fire: string; data?: Record<string, unknown> }
  | { replay: string; params?: Record<string, unknown> }
  | { skip: string; cascade?: boolean; result?: Record<string, unknown> }
  | { refuse: { replay: string } | { skip: string }; message: string }
  /** Every instance of the session, exactly (names not listed must not exist). */
  | { expect: Record<string, InstanceStatus | Expected>; unresolvedTasks?: string[] };

interface Case {
  title: string;
  tasks: Record<string, TaskSpec>;
  /** Which stock task each task runs (default passThru). */
  run?: Record<string, StockTask>;
  steps: Step[];
}

const CASES: Case[] = [
  // --- fire ------------------------------------------------------------------------------------
  {
    title: 'fire: a task runs with its input; a task waiting for another input has no instance and stays unresolved',
    tasks: { t_alpha: { after: ['_finishStep'] }, t_charlie: { after: ['somethingElse'] } },
    steps: [
      { fire: '_finishStep' },
      { expect: { 't_alpha#0': { status: 'finished', result: { kwargs: { _finishStep: {} } } } }, unresolvedTasks: ['t_charlie'] },
    ],
  },
  {
    title: 'fire: withParams pass through to the payload next to the inputs',
    tasks: { t_alpha: { after: ['_finishStep'], withParams: { _finishStep: { name: 'observations' }, extra: { stuff: 'arbitrary' } } } },
    steps: [
      { fire: '_finishStep' },
      { expect: { 't_alpha#0': { status: 'finished', result: { kwargs: { _finishStep: { name: 'observations' }, extra: { stuff: 'arbitrary' } } } } } },
    ],
  },
  {
    title: 'kwargs merge: the input is merged over withParams, the input wins',
    tasks: { t_alpha: { after: ['dataReceived'], withParams: { dataReceived: { name: 'observations', status: 'clone' } } } },
    steps: [
      { fire: 'dataReceived', data: { name: 'Dolly', greeting: 'Hello' } },
      { expect: { 't_alpha#0': { status: 'finished', result: { kwargs: { dataReceived: { greeting: 'Hello', name: 'Dolly', status: 'clone' } } } } } },
    ],
  },
  {
    title: 'complex trigger: nothing runs until all of after happened; a third, unmet input keeps waiting',
    tasks: {
      t_alpha: { after: ['dataReceived', 'creditsDepleted'] },
      t_bravo: { after: ['creditsDepleted', 'dataReceived'] },
      t_charlie: { after: ['dataReceived', 'creditsDepleted', 'neverFired'] },
    },
    steps: [
      { fire: 'dataReceived', data: { a: 1 } },
      { expect: { 't_alpha#0': 'unstarted', 't_bravo#0': 'unstarted', 't_charlie#0': 'unstarted' } },
      { fire: 'creditsDepleted', data: { b: 2 } },
      {
        expect: {
          't_alpha#0': { status: 'finished', result: { kwargs: { dataReceived: { a: 1 }, creditsDepleted: { b: 2 } } } },
          't_bravo#0': { status: 'finished', result: { kwargs: { dataReceived: { a: 1 }, creditsDepleted: { b: 2 } } } },
          't_charlie#0': { status: 'unstarted', inputs: { dataReceived: { a: 1 }, creditsDepleted: { b: 2 } } },
        },
      },
    ],
  },
  // --- cascade ---------------------------------------------------------------------------------
  {
    title: 'cascade: a finished task fires its name with its result; withParams can add to the result but not replace it',
    tasks: {
      t_alpha: { after: ['dataReceived'] },
      t_bravo: { after: ['t_alpha'], withParams: { t_alpha: { kwargs: { hacked: true, dataReceived: 'replaced' } } } },
    },
    steps: [
      { fire: 'dataReceived' },
      {
        expect: {
          't_alpha#0': { status: 'finished', result: { kwargs: { dataReceived: {} } } },
          't_bravo#0': { status: 'finished', inputs: { t_alpha: { kwargs: { dataReceived: {} } } }, result: { kwargs: { t_alpha: { kwargs: { dataReceived: {}, hacked: true } } } } },
        },
      },
    ],
  },
  {
    title: 'complex cascade, the other input first: the waiting instance runs after the cascade',
    tasks: { t_alpha: { after: ['dataReceived'] }, t_bravo: { after: ['t_alpha', 'registerComplete'] } },
    run: { t_alpha: 'devNull' },
    steps: [
      { fire: 'registerComplete', data: { done: true } },
      { expect: { 't_bravo#0': { status: 'unstarted', inputs: { registerComplete: { done: true } } } } },
      { fire: 'dataReceived' },
      { expect: { 't_alpha#0': 'finished', 't_bravo#0': { status: 'finished', result: { kwargs: { t_alpha: {}, registerComplete: { done: true } } } } } },
    ],
  },
  {
    title: 'complex cascade, the cascade first: the instance waits for the other input',
    tasks: { t_alpha: { after: ['dataReceived'] }, t_bravo: { after: ['t_alpha', 'registerComplete'] } },
    run: { t_alpha: 'devNull' },
    steps: [
      { fire: 'dataReceived' },
      { expect: { 't_alpha#0': 'finished', 't_bravo#0': { status: 'unstarted', inputs: { t_alpha: {} } } } },
      { fire: 'registerComplete', data: { done: true } },
      { expect: { 't_alpha#0': 'finished', 't_bravo#0': { status: 'finished', result: { kwargs: { t_alpha: {}, registerComplete: { done: true } } } } } },
    ],
  },
  {
    title: 'redundant trigger: a task after a task and that task\'s own input gets both',
    tasks: { t_alpha: { after: ['dataReceived'] }, t_bravo: { after: ['t_alpha', 'dataReceived'] } },
    run: { t_alpha: 'devNull' },
    steps: [
      { fire: 'dataReceived', data: { section_timer: '42', test_admin: 'bob' } },
      {
        expect: {
          't_alpha#0': 'finished',
          't_bravo#0': { status: 'finished', result: { kwargs: { t_alpha: {}, dataReceived: { section_timer: '42', test_admin: 'bob' } } } },
        },
      },
    ],
  },
  // --- andEvery --------------------------------------------------------------------------------
  {
    title: 'one-shot by default: a second firing makes no new instance, and the first value wins',
    tasks: { t_alpha: { after: ['dataReceived'] } },
    steps: [
      { fire: 'dataReceived', data: { counter: 1 } },
      { fire: 'dataReceived', data: { counter: 2 } },
      { expect: { 't_alpha#0': { status: 'finished', result: { kwargs: { dataReceived: { counter: 1 } } } } } },
    ],
  },
  {
    title: 'andEvery with after: []: every firing makes a new instance that runs',
    tasks: { t_alpha: { after: [], andEvery: 'dataReceived' } },
    run: { t_alpha: 'devNull' },
    steps: [{ fire: 'dataReceived' }, { fire: 'dataReceived' }, { fire: 'dataReceived' }, { expect: { 't_alpha#0': 'finished', 't_alpha#1': 'finished', 't_alpha#2': 'finished' } }],
  },
  {
    title: 'andEvery: re-firing the other input makes nothing; each every-input makes or runs an instance',
    tasks: { t_alpha: { after: ['dataReceived'], andEvery: 'creditsDepleted' } },
    steps: [
      { fire: 'dataReceived', data: { d: 1 } },
      { fire: 'dataReceived', data: { d: 2 } },
      { expect: { 't_alpha#0': { status: 'unstarted', inputs: { dataReceived: { d: 1 } } } } },
      { fire: 'creditsDepleted', data: { counter: 1 } },
      { fire: 'creditsDepleted', data: { counter: 2 } },
      {
        expect: {
          't_alpha#0': { status: 'finished', result: { kwargs: { dataReceived: { d: 1 }, creditsDepleted: { counter: 1 } } } },
          't_alpha#1': { status: 'finished', result: { kwargs: { dataReceived: { d: 2 }, creditsDepleted: { counter: 2 } } } },
        },
      },
    ],
  },
  {
    title: 'andEvery with an unmet input: the instances wait',
    tasks: { t_alpha: { after: ['dataReceived', 'neverFired'], andEvery: 'creditsDepleted' } },
    steps: [
      { fire: 'dataReceived' },
      { fire: 'creditsDepleted', data: { counter: 1 } },
      { fire: 'creditsDepleted', data: { counter: 2 } },
      {
        expect: {
          't_alpha#0': { status: 'unstarted', inputs: { dataReceived: {}, creditsDepleted: { counter: 1 } } },
          't_alpha#1': { status: 'unstarted', inputs: { dataReceived: {}, creditsDepleted: { counter: 2 } } },
        },
      },
    ],
  },
  {
    title: 'cascade from an andEvery task: a one-shot dependant runs once only',
    tasks: { t_alpha: { after: [], andEvery: 'dataReceived' }, t_bravo: { after: ['t_alpha'] } },
    run: { t_alpha: 'devNull', t_bravo: 'devNull' },
    steps: [{ fire: 'dataReceived' }, { fire: 'dataReceived' }, { expect: { 't_alpha#0': 'finished', 't_alpha#1': 'finished', 't_bravo#0': 'finished' } }],
  },
  {
    title: 'an andEvery dependant of a one-shot task runs once: the one-shot cascades once',
    tasks: { t_alpha: { after: ['dataReceived'] }, t_bravo: { after: [], andEvery: 't_alpha' } },
    run: { t_alpha: 'devNull', t_bravo: 'devNull' },
    steps: [{ fire: 'dataReceived' }, { fire: 'dataReceived' }, { expect: { 't_alpha#0': 'finished', 't_bravo#0': 'finished' } }],
  },
  {
    title: 'deferred inputs: a new instance takes the latest values of the other inputs at its creation',
    tasks: { t_alpha: { after: ['creditsDepleted'], andEvery: 'dataReceived' }, t_charlie: { after: [], andEvery: 'creditsDepleted' } },
    steps: [
      { fire: 'creditsDepleted', data: { counter: 1 } },
      { fire: 'dataReceived', data: { n: 1 } },
      { fire: 'creditsDepleted', data: { counter: 2 } },
      { fire: 'dataReceived', data: { n: 2 } },
      {
        expect: {
          't_alpha#0': { status: 'finished', result: { kwargs: { creditsDepleted: { counter: 1 }, dataReceived: { n: 1 } } } },
          't_alpha#1': { status: 'finished', result: { kwargs: { creditsDepleted: { counter: 2 }, dataReceived: { n: 2 } } } },
          't_charlie#0': { status: 'finished', result: { kwargs: { creditsDepleted: { counter: 1 } } } },
          't_charlie#1': { status: 'finished', result: { kwargs: { creditsDepleted: { counter: 2 } } } },
        },
      },
    ],
  },
  // --- unless ----------------------------------------------------------------------------------
  {
    title: 'unless first: the instance is abandoned at once and stays so; abandoned is resolved',
    tasks: { t_alpha: { after: ['dataReceived'], unless: ['isAbandoned'] } },
    steps: [
      { fire: 'isAbandoned' },
      { expect: { 't_alpha#0': { status: 'abandoned', abandonState: ['isAbandoned'] } }, unresolvedTasks: [] },
      { fire: 'dataReceived' },
      { expect: { 't_alpha#0': 'abandoned' }, unresolvedTasks: [] },
    ],
  },
  {
    title: 'unless with two inputs: abandoned only when both happened',
    tasks: { t_alpha: { after: ['dataReceived', 'creditsDepleted'], unless: ['isAbandoned', 'isCancelled'] } },
    steps: [
      { fire: 'dataReceived' },
      { fire: 'isAbandoned' },
      { expect: { 't_alpha#0': { status: 'unstarted', abandonState: ['isAbandoned'] } }, unresolvedTasks: ['t_alpha'] },
      { fire: 'isCancelled' },
      { expect: { 't_alpha#0': { status: 'abandoned', abandonState: ['isAbandoned', 'isCancelled'] } } },
    ],
  },
  {
    title: 'unless with andEvery: every waiting instance is abandoned',
    tasks: { t_alpha: { after: ['creditsDepleted'], andEvery: 'dataReceived', unless: ['isAbandoned'] } },
    steps: [
      { fire: 'dataReceived' },
      { fire: 'dataReceived' },
      { fire: 'dataReceived' },
      { expect: { 't_alpha#0': 'unstarted', 't_alpha#1': 'unstarted', 't_alpha#2': 'unstarted' } },
      { fire: 'isAbandoned' },
      { expect: { 't_alpha#0': 'abandoned', 't_alpha#1': 'abandoned', 't_alpha#2': 'abandoned' } },
    ],
  },
  {
    title: 'unless after a run: the finished instance stays finished; an instance made afterwards is abandoned at birth',
    tasks: { t_alpha: { after: [], andEvery: 'dataReceived', unless: ['isAbandoned'] } },
    run: { t_alpha: 'devNull' },
    steps: [
      { fire: 'dataReceived' },
      { fire: 'isAbandoned' },
      { expect: { 't_alpha#0': 'finished' } },
      { fire: 'dataReceived' },
      { expect: { 't_alpha#0': 'finished', 't_alpha#1': { status: 'abandoned', abandonState: ['isAbandoned'] } } },
    ],
  },
  {
    title: 'a clone inherits the abandon state',
    tasks: { t_alpha: { after: ['dataReceived'], unless: ['isAbandoned', 'isCancelled'] } },
    run: { t_alpha: 'failing' },
    steps: [
      { fire: 'isAbandoned' },
      { fire: 'dataReceived' },
      { expect: { 't_alpha#0': { status: 'failed', abandonState: ['isAbandoned'] } } },
      { replay: 't_alpha#0' },
      { expect: { 't_alpha#0': 'replayed', 't_alpha#1': { status: 'failed', abandonState: ['isAbandoned'], depth: 1, parent: 't_alpha#0' } } },
    ],
  },
  // --- replay ----------------------------------------------------------------------------------
  {
    title: 'replay: the failed instance is replayed, the clone runs, the dependant runs as usual',
    tasks: { t_alpha: { after: ['dataReceived'] }, t_bravo: { after: ['t_alpha'] } },
    run: { t_alpha: { failUntilDepth: 1 }, t_bravo: 'passThru' },
    steps: [
      { fire: 'dataReceived' },
      { expect: { 't_alpha#0': { status: 'failed', errorType: 'NotYet', errorMessage: /t_alpha#0: not yet/ } }, unresolvedTasks: ['t_alpha', 't_bravo'] },
      { replay: 't_alpha#0' },
      { expect: { 't_alpha#0': 'replayed', 't_alpha#1': { status: 'finished', result: { count: 1 } }, 't_bravo#0': { status: 'finished', result: { kwargs: { t_alpha: { count: 1 } } } } }, unresolvedTasks: [] },
    ],
  },
  {
    title: 'replay with replacement inputs: they replace the inputs entirely',
    tasks: { t_alpha: { after: ['dataReceived'] } },
    run: { t_alpha: 'failing' },
    steps: [
      { fire: 'dataReceived', data: { name: 'Dolly', random: 'filbert' } },
      { expect: { 't_alpha#0': 'failed' } },
      { replay: 't_alpha#0', params: { dataReceived: { name: 'Polly' } } },
      { expect: { 't_alpha#0': { status: 'replayed', inputs: { dataReceived: { name: 'Dolly', random: 'filbert' } } }, 't_alpha#1': { status: 'failed', inputs: { dataReceived: { name: 'Polly' } } } } },
    ],
  },
  {
    title: 'replay of an instance that did not fail is refused, naming it and its status',
    tasks: { t_alpha: { after: ['dataReceived'] } },
    run: { t_alpha: 'devNull' },
    steps: [
      { fire: 'dataReceived' },
      { refuse: { replay: 't_alpha#0' }, message: 'instance t_alpha#0 (finished) cannot be replayed: only a failed instance can' },
      { expect: { 't_alpha#0': 'finished' } },
    ],
  },
  // --- skip ------------------------------------------------------------------------------------
  {
    title: 'skip without cascade: the dependant never gets an instance and stays unresolved',
    tasks: { t_alpha: { after: ['dataReceived'] }, t_bravo: { after: ['t_alpha'] } },
    run: { t_alpha: 'failing' },
    steps: [{ fire: 'dataReceived' }, { skip: 't_alpha#0' }, { expect: { 't_alpha#0': 'skipped' }, unresolvedTasks: ['t_bravo'] }],
  },
  {
    title: 'skip with cascade: the dependant runs with the given result',
    tasks: { t_alpha: { after: ['dataReceived'] }, t_bravo: { after: ['t_alpha'] } },
    run: { t_alpha: 'failing' },
    steps: [
      { fire: 'dataReceived' },
      { skip: 't_alpha#0', cascade: true, result: { rating: '4.5', popularity: '0.7' } },
      { expect: { 't_alpha#0': 'skipped', 't_bravo#0': { status: 'finished', result: { kwargs: { t_alpha: { rating: '4.5', popularity: '0.7' } } } } }, unresolvedTasks: [] },
    ],
  },
  {
    title: 'skip of an instance that did not fail is refused',
    tasks: { t_alpha: { after: ['dataReceived'] } },
    run: { t_alpha: 'devNull' },
    steps: [{ fire: 'dataReceived' }, { refuse: { skip: 't_alpha#0' }, message: 'instance t_alpha#0 (finished) cannot be skipped: only a failed instance can' }],
  },
  // --- retries ---------------------------------------------------------------------------------
  {
    title: 'retry.max 2, a task that succeeds on its third run: #0 and #1 replayed, #2 finished',
    tasks: { t_alpha: { after: ['dataReceived'], retry: { max: 2 } } },
    run: { t_alpha: { failUntilDepth: 2 } },
    steps: [
      { fire: 'dataReceived' },
      { expect: { 't_alpha#0': { status: 'replayed', depth: 0 }, 't_alpha#1': { status: 'replayed', depth: 1, parent: 't_alpha#0' }, 't_alpha#2': { status: 'finished', depth: 2, result: { count: 2 } } } },
    ],
  },
  {
    title: 'retry.max 2, a task that would need a third retry: #2 ends failed with MaxRetriesExceeded',
    tasks: { t_alpha: { after: ['dataReceived'], retry: { max: 2 } } },
    run: { t_alpha: { failUntilDepth: 3 } },
    steps: [
      { fire: 'dataReceived' },
      {
        expect: {
          't_alpha#0': 'replayed',
          't_alpha#1': 'replayed',
          't_alpha#2': { status: 'failed', errorType: 'MaxRetriesExceeded', errorMessage: /^attempting retry #3, but retry.max = 2 \(last error: NotYet: t_alpha#2: not yet\)$/ },
        },
        unresolvedTasks: ['t_alpha'],
      },
    ],
  },
];

describe('workflows: the state machine against a real Redis (table-driven)', function () {
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

  CASES.forEach((c, index) => {
    it(c.title, async () => {
      const store = new WorkflowStore(redis, workflow(`case${index}`, c.tasks), { prefix });
      const runner = new WorkflowRunner(store, stockExecutor(c.run ?? {}), { reclaimAfterMs: 60_000 });
      const session = `s${index}`;
      let events = 0;
      for (const [s, step] of c.steps.entries()) {
        const where = `step ${s + 1} of "${c.title}"`;
        if ('fire' in step) {
          await store.fire(session, { input: step.fire, eventId: `ev${++events}`, data: step.data ?? {} });
        } else if ('replay' in step) {
          await store.replay(session, step.replay, step.params);
        } else if ('skip' in step) {
          await store.skip(session, step.skip, { cascade: step.cascade, result: step.result });
        } else if ('refuse' in step) {
          const attempt = 'replay' in step.refuse ? store.replay(session, step.refuse.replay) : store.skip(session, step.refuse.skip);
          const err = await attempt.then(
            () => expect.fail(`${where}: expected a refusal`),
            (e: unknown) => e,
          );
          expect(err, where).to.be.instanceOf(WorkflowStateError);
          expect((err as Error).message, where).to.equal(step.message);
          continue;
        } else {
          const view = await showSession(store, session);
          expect(view, where).to.not.equal(undefined);
          const byName = new Map((view?.instances ?? []).map((i) => [i.name, i]));
          expect([...byName.keys()].sort(), `${where}: instances`).to.deep.equal(Object.keys(step.expect).sort());
          for (const [name, want] of Object.entries(step.expect)) checkInstance(byName.get(name) as InstanceView, typeof want === 'string' ? { status: want } : want, `${where}, ${name}`);
          if (step.unresolvedTasks) expect(view?.unresolvedTasks, `${where}: unresolved tasks`).to.deep.equal(step.unresolvedTasks);
          continue;
        }
        await runner.drain();
      }
      expect(await store.queue.pendingCount(), 'nothing left pending').to.equal(0);
    });
  });
});

function checkInstance(got: InstanceView, want: Expected, where: string): void {
  expect(got.status, `${where}: status`).to.equal(want.status);
  if (want.inputs !== undefined) expect(got.inputs, `${where}: inputs`).to.deep.equal(want.inputs);
  if (want.result !== undefined) expect(got.result, `${where}: result`).to.deep.equal(want.result);
  if (want.abandonState !== undefined) expect(got.abandonState, `${where}: abandon state`).to.deep.equal(want.abandonState);
  if (want.errorType !== undefined) expect(got.error?.type, `${where}: error type`).to.equal(want.errorType);
  if (want.errorMessage !== undefined) expect(got.error?.message, `${where}: error message`).to.match(want.errorMessage);
  if (want.depth !== undefined) expect(got.depth, `${where}: depth`).to.equal(want.depth);
  if (want.parent !== undefined) expect(got.parent, `${where}: parent`).to.equal(want.parent);
}
