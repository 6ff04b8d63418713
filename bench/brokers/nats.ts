/**
 * Counting at NATS JetStream. `prepare` creates the run's stream (file storage, the server's
 * default and what the sink's own `params.stream` would create) before the product starts, so the
 * consumer can be positioned first; the product only publishes to its subject. The sink's default
 * structured mode puts the JSON event in the payload (src/sinks/nats/encode.ts; no `ce-` headers),
 * so id and time are read off the payload bytes, as the HTTP receiver reads structured bodies.
 * An ordered consumer (ephemeral, no acks, flow-controlled pulls) reads from the stream's start.
 */
import { connect, type ConsumerMessages, type JsMsg } from 'nats';
import { firstStringMember, type Tally } from '../tally';
import type { BrokerBench, ConsumerSpec, RunningConsumer } from './types';

export const NATS_URL = 'nats://127.0.0.1:4222';
/** Messages per pull: a drain is a few dozen pulls, refilled at 75% as nats.js does. */
const MAX_MESSAGES = 5_000;

export const natsBench: BrokerBench = {
  kind: 'nats',
  async prepare(run) {
    const stream = run;
    const subject = `${run}.events`;
    const nc = await connect({ servers: NATS_URL });
    try {
      await (await nc.jetstreamManager()).streams.add({ name: stream, subjects: [subject] });
    } finally {
      await nc.close();
    }
    let cleaned: Promise<void> | undefined;
    return {
      spec: { kind: 'nats', servers: [NATS_URL], destination: stream },
      vars: { url: NATS_URL, subject },
      cleanup: () =>
        (cleaned ??= (async () => {
          const admin = await connect({ servers: NATS_URL });
          try {
            await (await admin.jetstreamManager()).streams.delete(stream);
          } finally {
            await admin.close();
          }
        })()),
    };
  },
  async consume(spec: ConsumerSpec, tally: Tally): Promise<RunningConsumer> {
    const nc = await connect({ servers: spec.servers });
    const consumer = await nc.jetstream().consumers.get(spec.destination);
    const onMessage = (m: JsMsg): void => {
      const now = Date.now();
      const body = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
      tally.message();
      tally.record(firstStringMember(body, 'id'), firstStringMember(body, 'time'), now);
    };
    const messages: ConsumerMessages = await consumer.consume({ max_messages: MAX_MESSAGES, callback: onMessage });
    return {
      close: async () => {
        await messages.close();
        await nc.close();
      },
    };
  },
};
