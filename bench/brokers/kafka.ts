/**
 * Counting at Kafka: librdkafka's mock cluster (test/integration/harness/kafka-mock.ts; built by
 * `make services`), one per run, started by `prepare` with the run's topic (the mock has no
 * CreateTopics). The sink's default binary mode puts the attributes in `ce_` headers
 * (src/sinks/kafka/encode.ts), so id and time come from `ce_id` / `ce_time`. The consumer is
 * kafkajs (the product's own client) in a group of its own, from the beginning, batch by batch,
 * committing nothing (it never restarts).
 *
 * The mock is not a broker, and four of its shortcuts shape the consumer (librdkafka
 * src/rdkafka_mock_handlers.c, rd_kafka_mock_handle_Fetch; src/rdkafka_mock.c):
 * - a Fetch returns at most one record batch per partition ("FIXME: Multiple messageSets?"), and
 *   the sink at the default `batchSize` 1 produces one batch per event, so a Fetch carries at
 *   most one event per partition: the consumer's rate is about partitions × Fetch round trips.
 *   Measured here (a throwaway probe reading back 20–30k single-record batches): 3 partitions
 *   ~3,000 events/s, 12 ~12,000, 32 ~10,500 (64: ~11,300; there the mock and the consumer share
 *   the two cores). So 32: several times what the product delivers to Kafka one event per batch,
 *   at 6–8 CPU s per 100k events for the consumer.
 * - a partition keeps the last 5 MB (or 100,000 batches) only, dropping older batches even
 *   unread: 32 partitions hold 160 MB, about twice a 100,000-event run, so a consumer that
 *   falls behind still finds every event.
 * - a Fetch that found nothing is answered only when `maxWaitTimeInMs` has passed, even if
 *   records arrived meanwhile (a real broker answers once `minBytes` are there). Measured with
 *   one record every 20 ms, receive − produce p50: maxWait 500 → 357 ms, 100 → 72 ms, 10 → 8 ms.
 *   So the consumer polls every 10 ms, which costs ~19% of a core while idle (32 partitions) and
 *   adds up to 10 ms of the mock's making to Kafka latencies.
 * - a Fetch finds its offset by walking the partition's batches from the oldest ("FIXME: Maintain
 *   an index"), so each Fetch costs in proportion to what the topic holds. After a 100,000-event
 *   drain (one batch per event) the mock takes ~45% of a core while the consumer polls (5% on an
 *   empty topic), and it grows through the drain: on two cores that competes with the product,
 *   so kafka-mock's throughput and its latency measured after the drain are pessimistic. Fewer
 *   partitions (less retained) are worse: with 4, a Fetch carries at most 4 events and the
 *   consumer fell behind at 1,000 events/s (p99 456 ms against 137 ms with 32).
 */
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { startKafkaMock } from '../../test/integration/harness/kafka-mock';
import type { Tally } from '../tally';
import type { BrokerBench, ConsumerSpec, RunningConsumer } from './types';

/** The sink spreads keys (one per row) over the partitions; 32 for the mock's sake (above). */
const PARTITIONS = 32;
const JOIN_TIMEOUT_MS = 20_000;
const FETCH_WAIT_MS = 10;

export const kafkaBench: BrokerBench = {
  kind: 'kafka',
  async prepare(run) {
    const topic = run;
    const mock = await startKafkaMock([{ name: topic, partitions: PARTITIONS }]);
    return {
      spec: { kind: 'kafka', servers: mock.brokers, destination: topic },
      // A YAML flow sequence: ["127.0.0.1:port"].
      vars: { brokers: JSON.stringify(mock.brokers), topic },
      cleanup: () => mock.stop(),
    };
  },
  async consume(spec: ConsumerSpec, tally: Tally): Promise<RunningConsumer> {
    const kafka = new Kafka({ clientId: 'pgce-bench-counter', brokers: spec.servers, logLevel: logLevel.NOTHING });
    const consumer: Consumer = kafka.consumer({ groupId: `${spec.destination}_counter`, sessionTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: FETCH_WAIT_MS });
    await consumer.connect();
    await consumer.subscribe({ topic: spec.destination, fromBeginning: true });
    // Counting starts once the group gave this member its partitions (then it fetches from offset 0).
    const joined = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`kafka counter: no group join within ${JOIN_TIMEOUT_MS} ms`)), JOIN_TIMEOUT_MS);
      consumer.on(consumer.events.GROUP_JOIN, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const now = Date.now();
        for (const m of batch.messages) {
          tally.message();
          tally.record(m.headers?.ce_id?.toString(), m.headers?.ce_time?.toString(), now);
        }
      },
    });
    try {
      await joined;
    } catch (err) {
      await consumer.disconnect();
      throw err;
    }
    return { close: () => consumer.disconnect() };
  },
};
