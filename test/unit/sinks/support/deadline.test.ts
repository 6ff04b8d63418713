import { expect } from 'chai';
import { Budget, DeadlineExceeded, withDeadline, type Timers } from '../../../../src/sinks/support/deadline';

/** A clock the test moves by hand: timers fire only in advance(). */
export class FakeTimers implements Timers {
  private at = 0;
  private seq = 0;
  private readonly pending = new Map<number, { due: number; fn: () => void }>();

  set(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { due: this.at + ms, fn });
    return id;
  }

  clear(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  now(): number {
    return this.at;
  }

  get armed(): number {
    return this.pending.size;
  }

  advance(ms: number): void {
    this.at += ms;
    for (const [id, t] of [...this.pending].sort((a, b) => a[1].due - b[1].due)) {
      if (t.due > this.at) continue;
      this.pending.delete(id);
      t.fn();
    }
  }
}

/** A promise the test settles by hand. */
function deferred<T>(): { promise: Promise<T>; resolve(v: T): void; reject(e: unknown): void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const settled = <T>(p: Promise<T>) => p.then((value) => ({ value }), (error: unknown) => ({ error }));
const tick = () => new Promise((r) => setImmediate(r));

describe('sinks/support/deadline', () => {
  it('resolves with the work when it settles in time, and disarms its timer', async () => {
    const timers = new FakeTimers();
    const work = deferred<string>();
    const p = withDeadline(1000, () => work.promise, { timers });
    timers.advance(999);
    work.resolve('ok');
    expect(await p).to.equal('ok');
    expect(timers.armed).to.equal(0);
  });

  it('passes the work\'s own failure through', async () => {
    const timers = new FakeTimers();
    const p = withDeadline(1000, () => Promise.reject(new Error('refused')), { timers });
    const got = await settled(p);
    expect((got as { error: Error }).error.message).to.equal('refused');
    expect(timers.armed).to.equal(0);
  });

  it('a synchronous throw of the work is a rejection', async () => {
    const got = await settled(withDeadline(1000, () => { throw new Error('sync'); }, { timers: new FakeTimers() }));
    expect((got as { error: Error }).error.message).to.equal('sync');
  });

  it('rejects with DeadlineExceeded at the deadline, runs onLate once, and drops the late outcome', async () => {
    const timers = new FakeTimers();
    const work = deferred<string>();
    let late = 0;
    const p = settled(withDeadline(500, () => work.promise, { timers, onLate: () => late++ }));
    timers.advance(500);
    const got = (await p) as { error: unknown };
    expect(got.error).to.be.instanceOf(DeadlineExceeded);
    expect((got.error as DeadlineExceeded).ms).to.equal(500);
    expect(late).to.equal(1);
    // The work fails later: no unhandled rejection, nothing changes.
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      work.reject(new Error('too late'));
      await tick();
      await tick();
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).to.deep.equal([]);
    expect(late).to.equal(1);
  });

  it('rejects with the caller\'s own error at the deadline when it names one', async () => {
    const timers = new FakeTimers();
    const p = settled(withDeadline(250, () => new Promise<never>(() => undefined), { timers, error: (ms) => new RangeError(`late by ${ms}`) }));
    timers.advance(250);
    const got = (await p) as { error: Error };
    expect(got.error).to.be.instanceOf(RangeError);
    expect(got.error.message).to.equal('late by 250');
  });

  it('Budget: each step gets what is left, at least 1 ms', async () => {
    const timers = new FakeTimers();
    const budget = new Budget(1000, timers);
    timers.advance(300);
    expect(budget.left()).to.equal(700);
    const work = deferred<void>();
    const p = settled(budget.run(() => work.promise));
    timers.advance(699);
    expect(timers.armed).to.equal(1);
    timers.advance(1);
    expect((await p as { error: unknown }).error).to.be.instanceOf(DeadlineExceeded);
    timers.advance(5000);
    expect(budget.left()).to.equal(1);
  });
});
