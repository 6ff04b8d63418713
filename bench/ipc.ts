/**
 * A counting end (HTTP receiver, broker consumer) in a process of its own, so its CPU is not
 * shared with the bench's bookkeeping and load generator. A tiny IPC protocol:
 * parent → { id, cmd: 'counts' | 'stats' | 'reset' | 'close' }, child → { id, result }.
 * First message to the parent: { ready: <description, e.g. the receiver's URL> }.
 */
import { fork } from 'node:child_process';
import type { Counts, ReceiverStats } from './tally';

export type ReceiverPlacement = 'child' | 'inproc';

/** The shape every counting end has, wherever it runs. */
export interface CounterHandle {
  placement: ReceiverPlacement;
  /** pid of the process counting. */
  pid: number;
  /** Polled while waiting: the counts without the latency summary. */
  counts(): Promise<Counts>;
  stats(): Promise<ReceiverStats>;
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** What the child serves. */
export interface Countable {
  counts(): Counts;
  stats(): ReceiverStats;
  reset(): void;
  close(): Promise<void>;
}

interface Request {
  id: number;
  cmd: 'counts' | 'stats' | 'reset' | 'close';
}

/** Parent side: forks `script` and resolves once it reported ready, with what it reported. */
export async function forkCounter(script: string, args: string[] = []): Promise<{ ready: string; handle: CounterHandle }> {
  const child = fork(script, args, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // The counter is not the product: no heap cap, no inherited profiling flags.
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  const killer = () => child.kill('SIGKILL');
  process.on('exit', killer);
  const pending = new Map<number, { resolve: (result: unknown) => void; reject: (err: Error) => void }>();
  let nextId = 1;
  let gone: Error | undefined;
  // A child that dies must fail the bench's calls, not leave them waiting for ever.
  child.once('exit', (code, signal) => {
    process.off('exit', killer);
    gone = new Error(`counting process ${script} exited (${signal ?? code})`);
    for (const p of pending.values()) p.reject(gone);
    pending.clear();
  });
  const ready = await new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => reject(new Error(`counting process ${script} exited (${signal ?? code}) before it was ready`)));
    child.on('message', (msg: { ready?: string; id?: number; result?: unknown }) => {
      if (msg.ready !== undefined) resolve(msg.ready);
      else if (msg.id !== undefined) {
        pending.get(msg.id)?.resolve(msg.result);
        pending.delete(msg.id);
      }
    });
  });
  const call = <T>(cmd: Request['cmd']): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (gone) return reject(gone);
      const id = nextId++;
      pending.set(id, { resolve: resolve as (r: unknown) => void, reject });
      child.send({ id, cmd });
    });
  let closed: Promise<void> | undefined;
  const handle: CounterHandle = {
    placement: 'child',
    pid: child.pid!,
    counts: () => call<Counts>('counts'),
    stats: () => call<ReceiverStats>('stats'),
    reset: () => call<void>('reset'),
    close: () => {
      closed ??= gone
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          void call('close').catch(() => undefined);
        });
      return closed;
    },
  };
  return { ready, handle };
}

/** Child side: answers the parent's calls on `counter`, then reports `ready`. */
export function serveCounter(counter: Countable, ready: string): void {
  process.on('message', (msg: Request) => {
    switch (msg.cmd) {
      case 'counts':
        process.send!({ id: msg.id, result: counter.counts() });
        break;
      case 'stats':
        process.send!({ id: msg.id, result: counter.stats() });
        break;
      case 'reset':
        counter.reset();
        process.send!({ id: msg.id, result: null });
        break;
      case 'close':
        void counter.close().then(() => {
          process.send!({ id: msg.id, result: null }, () => process.exit(0));
        });
        break;
    }
  });
  // The bench died: do not linger.
  process.on('disconnect', () => process.exit(0));
  process.send!({ ready });
}

/** The same shape over a counter in the bench process itself. */
export function inprocHandle(counter: Countable): CounterHandle {
  return { placement: 'inproc', pid: process.pid, counts: async () => counter.counts(), stats: async () => counter.stats(), reset: async () => counter.reset(), close: () => counter.close() };
}
