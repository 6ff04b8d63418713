/**
 * The counting receiver in a process of its own (forked by bench/receiver-handle.ts), so the
 * sink's CPU is not shared with the bench's own bookkeeping. Speaks a tiny IPC protocol:
 * parent → { id, cmd: 'stats' | 'reset' | 'close' }, child → { id, result }.
 * First message to the parent: { ready: url }.
 */
import { startCountingReceiver } from './receiver';

interface Request {
  id: number;
  cmd: 'stats' | 'reset' | 'close';
}

async function main(): Promise<void> {
  const receiver = await startCountingReceiver(Number(process.env.PGCE_BENCH_RECEIVER_PORT ?? 0));
  process.on('message', (msg: Request) => {
    switch (msg.cmd) {
      case 'stats':
        process.send!({ id: msg.id, result: receiver.stats() });
        break;
      case 'reset':
        receiver.reset();
        process.send!({ id: msg.id, result: null });
        break;
      case 'close':
        void receiver.close().then(() => {
          process.send!({ id: msg.id, result: null }, () => process.exit(0));
        });
        break;
    }
  });
  // The bench died: do not linger.
  process.on('disconnect', () => process.exit(0));
  process.send!({ ready: receiver.url });
}

void main();
