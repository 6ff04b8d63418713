/**
 * The brokers the bench counts at, and one counting consumer per run, in a process of its own
 * or in the bench's (the same placement as the HTTP receiver, `--receiver child|inproc`).
 *
 * A process of its own by default, as for the HTTP receiver. Measured on 2 cores, 100,000-event
 * drains, child vs inproc: Redis 13,396 vs 11,803 events/s (p99 at 1,000/s: 4 vs 8 ms), NATS
 * 9,386 vs 5,522 (7 vs 14 ms), Kafka mock 2,274 vs 1,875 (137 vs 99 ms; the mock dominates, see
 * kafka.ts). The consumers are cheap either way (Redis and NATS ~1.6 CPU s per 100k events, the
 * Kafka one ~10; read back from a prefilled destination they take 190,000 and 107,000 events/s,
 * the mock ~10,500), but inproc the load generator of the latency phases shares their event loop
 * and its pauses land in the measured commit → receipt times.
 */
import * as path from 'node:path';
import { forkCounter, inprocHandle, type Countable, type CounterHandle, type ReceiverPlacement } from '../ipc';
import { Tally } from '../tally';
import { kafkaBench } from './kafka';
import { natsBench } from './nats';
import { redisBench } from './redis';
import type { BrokerBench, BrokerKind, ConsumerSpec, RunningConsumer } from './types';

export const BROKERS: Record<BrokerKind, BrokerBench> = { redis: redisBench, nats: natsBench, kafka: kafkaBench };

/** A running consumer and its tally, as the bench reads them. */
export function countable(tally: Tally, consumer: RunningConsumer): Countable {
  return { counts: () => tally.counts(), stats: () => tally.stats(), reset: () => tally.reset(), close: () => consumer.close() };
}

/** Starts counting at `spec`'s destination; resolves once the consumer is positioned at its start. */
export async function startBrokerCounter(spec: ConsumerSpec, placement: ReceiverPlacement): Promise<CounterHandle> {
  if (placement === 'child') {
    const { handle } = await forkCounter(path.join(__dirname, 'process.js'), [JSON.stringify(spec)]);
    return handle;
  }
  const tally = new Tally();
  const consumer = await BROKERS[spec.kind].consume(spec, tally);
  return inprocHandle(countable(tally, consumer));
}

export type { BrokerKind, ConsumerSpec, PreparedDestination } from './types';
