/**
 * One interface over the counting receiver, wherever it runs: in the bench process itself
 * ('inproc') or in a forked process ('child', the default: the sink gets a core's worth of
 * scheduling of its own, as a real sink on another host would).
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { startCountingReceiver, type ReceiverStats } from './receiver';

export type ReceiverPlacement = 'child' | 'inproc';

export interface ReceiverHandle {
  url: string;
  placement: ReceiverPlacement;
  /** pid of the process serving it. */
  pid: number;
  stats(): Promise<ReceiverStats>;
  reset(): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(placement: ReceiverPlacement): Promise<ReceiverHandle> {
  if (placement === 'inproc') {
    const r = await startCountingReceiver();
    return { url: r.url, placement, pid: process.pid, stats: async () => r.stats(), reset: async () => r.reset(), close: r.close };
  }
  const child: ChildProcess = fork(path.join(__dirname, 'receiver-process.js'), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // The receiver is not the product: no heap cap, no inherited profiling flags.
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  process.on('exit', () => child.kill('SIGKILL'));
  const pending = new Map<number, (result: unknown) => void>();
  let nextId = 1;
  const url = await new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`receiver process exited (${code}) before it was ready`)));
    child.on('message', (msg: { ready?: string; id?: number; result?: unknown }) => {
      if (msg.ready) resolve(msg.ready);
      else if (msg.id !== undefined) {
        pending.get(msg.id)?.(msg.result);
        pending.delete(msg.id);
      }
    });
  });
  const call = <T>(cmd: string): Promise<T> =>
    new Promise<T>((resolve) => {
      const id = nextId++;
      pending.set(id, resolve as (r: unknown) => void);
      child.send({ id, cmd });
    });
  let closed: Promise<void> | undefined;
  return {
    url,
    placement,
    pid: child.pid!,
    stats: () => call<ReceiverStats>('stats'),
    reset: () => call<void>('reset'),
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        void call('close').catch(() => undefined);
      });
      return closed;
    },
  };
}
