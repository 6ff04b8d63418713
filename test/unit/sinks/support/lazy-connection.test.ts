import { expect } from 'chai';
import { LazyConnection } from '../../../../src/sinks/support/lazy-connection';
import { FakeTimers } from './deadline.test';

interface Conn {
  id: number;
  disposed: boolean;
}

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

/** A connection factory whose attempts the test settles by hand (no server). */
function harness() {
  const attempts: { resolve(): Conn; reject(err: Error): void }[] = [];
  let seq = 0;
  const disposed: number[] = [];
  const lazy = new LazyConnection<Conn>({
    open: () => {
      const d = deferred<Conn>();
      attempts.push({
        resolve: () => {
          const conn = { id: ++seq, disposed: false };
          d.resolve(conn);
          return conn;
        },
        reject: (err) => d.reject(err),
      });
      return d.promise;
    },
    dispose: (conn) => {
      conn.disposed = true;
      disposed.push(conn.id);
    },
    closedError: () => new Error('closed'),
  });
  return { lazy, attempts, disposed };
}

describe('sinks/support/lazy-connection', () => {
  it('opens nothing until the first use', () => {
    const { lazy, attempts } = harness();
    expect(attempts).to.have.length(0);
    expect(lazy.peek()).to.equal(undefined);
  });

  it('concurrent uses share one attempt in flight, and later uses the open connection', async () => {
    const { lazy, attempts } = harness();
    const a = lazy.get();
    const b = lazy.get();
    expect(attempts).to.have.length(1);
    const conn = attempts[0].resolve();
    expect(await a).to.equal(conn);
    expect(await b).to.equal(conn);
    expect(await lazy.get()).to.equal(conn);
    expect(attempts).to.have.length(1);
  });

  it('a failed attempt fails every waiter, and the next use makes a new attempt', async () => {
    const { lazy, attempts } = harness();
    const a = settled(lazy.get());
    const b = settled(lazy.get());
    attempts[0].reject(new Error('refused'));
    expect(((await a) as { error: Error }).error.message).to.equal('refused');
    expect(((await b) as { error: Error }).error.message).to.equal('refused');
    const c = lazy.get();
    expect(attempts).to.have.length(2);
    const conn = attempts[1].resolve();
    expect(await c).to.equal(conn);
  });

  it('a synchronous throw of open() is a failed attempt', async () => {
    let calls = 0;
    const lazy = new LazyConnection<number>({
      open: () => {
        if (++calls === 1) throw new Error('bad url');
        return Promise.resolve(7);
      },
      dispose: () => undefined,
      closedError: () => new Error('closed'),
    });
    expect(((await settled(lazy.get())) as { error: Error }).error.message).to.equal('bad url');
    expect(await lazy.get()).to.equal(7);
  });

  it('drop(): the next use reconnects; dropping a connection that is no longer current changes nothing', async () => {
    const { lazy, attempts } = harness();
    const first = lazy.get();
    const one = attempts[0].resolve();
    await first;
    lazy.drop(one);
    const second = lazy.get();
    expect(attempts).to.have.length(2);
    const two = attempts[1].resolve();
    expect(await second).to.equal(two);
    lazy.drop(one);
    expect(lazy.peek()).to.equal(two);
  });

  it('close() releases the open connection once, however often it is called; later uses fail', async () => {
    const { lazy, attempts, disposed } = harness();
    const p = lazy.get();
    attempts[0].resolve();
    await p;
    await Promise.all([lazy.close(), lazy.close()]);
    await lazy.close();
    expect(disposed).to.deep.equal([1]);
    expect(lazy.closed).to.equal(true);
    expect(((await settled(lazy.get())) as { error: Error }).error.message).to.equal('closed');
    expect(attempts).to.have.length(1);
  });

  it('close() during an attempt: the waiter fails, the late connection is released, close resolves after it', async () => {
    const { lazy, attempts, disposed } = harness();
    const waiter = settled(lazy.get());
    let closedYet = false;
    const closing = lazy.close().then(() => {
      closedYet = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(closedYet, 'close waits for the attempt in flight').to.equal(false);
    const late = attempts[0].resolve();
    await closing;
    expect(late.disposed).to.equal(true);
    expect(disposed).to.deep.equal([1]);
    expect(((await waiter) as { error: Error }).error.message).to.equal('closed');
    expect(lazy.peek()).to.equal(undefined);
  });

  it('close() during an attempt that fails resolves all the same', async () => {
    const { lazy, attempts, disposed } = harness();
    const waiter = settled(lazy.get());
    const closing = lazy.close();
    attempts[0].reject(new Error('refused'));
    await closing;
    expect(disposed).to.deep.equal([]);
    expect(((await waiter) as { error: Error }).error.message).to.equal('refused');
  });

  it('a dispose that throws does not fail close()', async () => {
    const lazy = new LazyConnection<number>({
      open: () => Promise.resolve(1),
      dispose: () => Promise.reject(new Error('already gone')),
      closedError: () => new Error('closed'),
    });
    await lazy.get();
    await lazy.close();
  });

  it('a polite dispose that gets no answer is forced after closeTimeoutMs; close() resolves', async () => {
    const timers = new FakeTimers();
    const forced: number[] = [];
    const lazy = new LazyConnection<number>({
      open: () => Promise.resolve(5),
      dispose: () => new Promise<void>(() => undefined), // the server never answers the goodbye
      forceDispose: (conn) => forced.push(conn),
      closeTimeoutMs: 1000,
      closedError: () => new Error('closed'),
      timers,
    });
    await lazy.get();
    let closed = false;
    const closing = lazy.close().then(() => {
      closed = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(closed).to.equal(false);
    expect(forced).to.deep.equal([]);
    timers.advance(1000);
    await closing;
    expect(forced).to.deep.equal([5]);
  });

  it('a dispose that fails is forced too; one that succeeds is not', async () => {
    const forced: string[] = [];
    const make = (dispose: () => Promise<void>) => new LazyConnection<string>({
      open: () => Promise.resolve('c'),
      dispose,
      forceDispose: (conn) => forced.push(conn),
      closeTimeoutMs: 1000,
      closedError: () => new Error('closed'),
      timers: new FakeTimers(),
    });
    const ok = make(() => Promise.resolve());
    await ok.get();
    await ok.close();
    expect(forced).to.deep.equal([]);
    const failing = make(() => Promise.reject(new Error('socket gone')));
    await failing.get();
    await failing.close();
    expect(forced).to.deep.equal(['c']);
  });
});
