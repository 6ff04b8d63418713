/**
 * One interface over the counting receiver, wherever it runs: in the bench process itself
 * ('inproc') or in a forked process ('child', the default: the sink gets a core's worth of
 * scheduling of its own, as a real sink on another host would).
 */
import * as path from 'node:path';
import { forkCounter, inprocHandle, type CounterHandle } from './ipc';
import { startCountingReceiver } from './receiver';

export type { ReceiverPlacement } from './ipc';

export interface ReceiverHandle extends CounterHandle {
  url: string;
}

export async function startReceiver(placement: CounterHandle['placement']): Promise<ReceiverHandle> {
  if (placement === 'inproc') {
    const r = await startCountingReceiver();
    return { url: r.url, ...inprocHandle(r) };
  }
  const { ready, handle } = await forkCounter(path.join(__dirname, 'receiver-process.js'));
  return { url: ready, ...handle };
}
