/**
 * The counting receiver in a process of its own (forked by bench/receiver-handle.ts), so the
 * sink's CPU is not shared with the bench's own bookkeeping; bench/ipc.ts has the protocol.
 * It reports its URL as ready.
 */
import { serveCounter } from './ipc';
import { startCountingReceiver } from './receiver';

async function main(): Promise<void> {
  const receiver = await startCountingReceiver(Number(process.env.PGCE_BENCH_RECEIVER_PORT ?? 0));
  serveCounter(receiver, receiver.url);
}

void main();
