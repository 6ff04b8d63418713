/**
 * A broker's counting consumer in a process of its own (forked by bench/brokers/index.ts):
 *
 *   node dist/bench/brokers/process.js '<ConsumerSpec as JSON>'
 *
 * Speaks bench/ipc.ts's protocol; reports ready once the consumer is positioned.
 */
import { serveCounter } from '../ipc';
import { Tally } from '../tally';
import { BROKERS, countable } from './index';
import type { ConsumerSpec } from './types';

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2]) as ConsumerSpec;
  const tally = new Tally();
  const consumer = await BROKERS[spec.kind].consume(spec, tally);
  serveCounter(countable(tally, consumer), `${spec.kind} ${spec.destination}`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
