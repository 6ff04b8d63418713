import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import type { DeliveryConfig } from '../../../src/config/types';
import { deliverWithRetry } from '../../../src/delivery/deliver';
import type { Sink } from '../../../src/sinks/types';
import { DeliveryError } from '../../../src/errors';
import type { Faults } from '../harness/net';

/**
 * One suite every broker sink passes against its real server (bullmq's adapter-conformance
 * habit): what is published can be read back by a consumer and rebuilt into an equal, valid
 * CloudEvent; one partition key keeps its order; a broker that is down is a retriable failure;
 * a server that hangs or goes away and comes back, and a close during a send, leave the sink
 * usable and nothing unhandled. A new sink is one folder in src/sinks/ and passes this suite.
 */
export interface ConformanceTarget {
  /** A sink publishing to a fresh destination of this test's own. */
  sink(): Promise<Sink>;
  /** The consumer side: resolves with the events read back (rebuilt and validated), in order. */
  readBack(count: number, timeoutMs: number): Promise<CloudEvent<unknown>[]>;
  /** A sink configured against a broker address where nothing listens. */
  unreachableSink(): Promise<Sink>;
  /**
   * A sink (per-send timeout `timeoutMs`) whose way to the server the test can break: a TcpProxy
   * between it and a shared server (never stopped itself), or the stand-in's own fault controls.
   */
  faultySink(timeoutMs: number): Promise<{ sink: Sink; faults: Faults }>;
  cleanup(): Promise<void>;
}

export function sampleEvent(n: number, over: Record<string, unknown> = {}): CloudEvent<unknown> {
  return new CloudEvent<unknown>({
    specversion: '1.0',
    id: `000000000183A2F8-${String(n).padStart(8, '0')}`,
    source: '/pg-cloudevents/conformance',
    type: 'orm.post_save',
    subject: `DCE:polls.question/${n}`,
    time: '2024-02-29T11:14:15.500Z',
    datacontenttype: 'application/json',
    app: 'polls',
    model: 'question',
    sequence: `000000000183A2F8-${String(n).padStart(8, '0')}`,
    partitionkey: 'polls.question/1',
    data: { data: { id: n, question_text: 'Größe? "quoted" ✓', n: 1.5, ok: true, nothing: null }, signal_kwargs: { created: true }, db_table: 'polls_question' },
    ...over,
  });
}

export interface ConformanceOptions {
  /** The sink sends batches (`brokers.<name>.batchSize`): run the sendBatch cases too. */
  sendBatch?: boolean;
}

/** Per-send timeout of the resilience cases. */
const TIMEOUT_MS = 1000;
/** Past this a send or a close has hung: far above TIMEOUT_MS, so not a speed assertion. */
const HUNG_MS = 15_000;
/** Fast retries with a bound, so a sink that never recovers fails the test instead of hanging it. */
const RETRY: DeliveryConfig = {
  backoffPolicy: 'exponential', backoffDelayMs: 50, backoffMaxMs: 300, timeoutMs: TIMEOUT_MS, maxInFlight: 1, maxBufferBytes: 1 << 26, retry: 40,
};

function settleWithin<T>(p: Promise<T>, what: string, ms = HUNG_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([p, hung]).finally(() => clearTimeout(timer));
}

async function retriableFailure(p: Promise<unknown>, what: string): Promise<DeliveryError> {
  const error = await settleWithin(p.then(() => undefined, (e: unknown) => e), what);
  expect(error, `${what} must fail`).to.be.instanceOf(DeliveryError);
  expect((error as DeliveryError).retriable, (error as Error).message).to.equal(true);
  return error as DeliveryError;
}

/** Delivers `event` with fast retries, every failure retriable; `onFailure` sees each failure's number. */
function deliver(sink: Sink, event: CloudEvent<unknown>, onFailure: (n: number) => void = () => undefined): Promise<{ attempts: number }> {
  let failures = 0;
  return settleWithin(deliverWithRetry(sink, event, RETRY, {
    onAttemptFailed: ({ error }) => {
      expect(error.retriable, error.message).to.equal(true);
      onFailure(++failures);
    },
  }), 'delivery after the server came back', HUNG_MS * 2);
}

export function describeSinkConformance(name: string, makeTarget: () => Promise<ConformanceTarget>, options: ConformanceOptions = {}): void {
  describe(`${name}: sink conformance (real server)`, function () {
    this.timeout(60_000);
    let target: ConformanceTarget;
    let sink: Sink | undefined;

    beforeEach(async () => {
      target = await makeTarget();
    });
    afterEach(async () => {
      await sink?.close();
      sink = undefined;
      await target.cleanup();
    });

    it('publishes an event the consumer rebuilds into an equal, valid CloudEvent', async () => {
      sink = await target.sink();
      const sent = sampleEvent(1);
      await sink.send(sent);
      const [got] = await target.readBack(1, 15_000);
      expect(got.validate()).to.equal(true);
      for (const attr of ['id', 'source', 'type', 'subject', 'datacontenttype', 'app', 'model', 'sequence', 'partitionkey']) {
        expect((got as unknown as Record<string, unknown>)[attr], attr).to.equal((sent as unknown as Record<string, unknown>)[attr]);
      }
      expect(new Date(String(got.time)).toISOString()).to.equal(sent.time);
      expect(got.data).to.deep.equal(sent.data);
    });

    it('keeps the order of one partition key', async () => {
      sink = await target.sink();
      for (let n = 1; n <= 20; n++) await sink.send(sampleEvent(n));
      const got = await target.readBack(20, 15_000);
      expect(got.map((e) => (e.data as { data: { id: number } }).data.id)).to.deep.equal(Array.from({ length: 20 }, (_, i) => i + 1));
    });

    if (options.sendBatch) {
      it('sendBatch publishes a batch in order, and the next batch after it', async () => {
        sink = await target.sink();
        expect(sink.sendBatch, 'the sink has sendBatch').to.be.a('function');
        await sink.sendBatch!(Array.from({ length: 50 }, (_, i) => sampleEvent(i + 1)));
        await sink.sendBatch!(Array.from({ length: 50 }, (_, i) => sampleEvent(i + 51)));
        const got = await target.readBack(100, 15_000);
        expect(got.map((e) => (e.data as { data: { id: number } }).data.id)).to.deep.equal(Array.from({ length: 100 }, (_, i) => i + 1));
        for (const e of got) expect(e.validate()).to.equal(true);
      });

      it('sendBatch to a broker that is down is a retriable failure', async () => {
        sink = await target.unreachableSink();
        expect(sink.sendBatch, 'the sink has sendBatch').to.be.a('function');
        let error: unknown;
        try {
          await sink.sendBatch!([sampleEvent(1), sampleEvent(2)]);
        } catch (err) {
          error = err;
        }
        expect(error).to.be.instanceOf(DeliveryError);
        expect((error as DeliveryError).retriable).to.equal(true);
      });
    }

    it('a broker that is down is a retriable failure, not a delivery', async () => {
      sink = await target.unreachableSink();
      let error: unknown;
      try {
        await sink.send(sampleEvent(1));
      } catch (err) {
        error = err;
      }
      expect(error, 'send must fail').to.be.instanceOf(DeliveryError);
      expect((error as DeliveryError).retriable).to.equal(true);
    });

    describe('faults between the sink and its server', () => {
      let faults: Faults | undefined;
      afterEach(async () => {
        await faults?.close();
        faults = undefined;
      });

      it('a server that accepts the connection and never answers: the send fails retriably within the timeout; afterwards the sink delivers', async () => {
        ({ sink, faults } = await target.faultySink(TIMEOUT_MS));
        await sink.send(sampleEvent(1));
        await faults.hang();
        await retriableFailure(sink.send(sampleEvent(2)), 'a send to a server that never answers');
        await faults.up();
        await deliver(sink, sampleEvent(3));
      });

      it('the first connection meets a server that never answers: a retriable failure within the timeout; afterwards the sink delivers', async () => {
        ({ sink, faults } = await target.faultySink(TIMEOUT_MS));
        await faults.hang();
        await retriableFailure(sink.send(sampleEvent(1)), 'a first send to a server that never answers');
        await faults.up();
        await deliver(sink, sampleEvent(2));
      });

      it('an outage and recovery: retriable failures while the server is away, delivered once it is back', async () => {
        ({ sink, faults } = await target.faultySink(TIMEOUT_MS));
        await sink.send(sampleEvent(1));
        await faults.down();
        const f = faults;
        const { attempts } = await deliver(sink, sampleEvent(2), (n) => {
          if (n === 2) void f.up();
        });
        expect(attempts).to.be.at.least(3);
      });

      it('close() during an in-flight send resolves, the send settles, nothing is left unhandled', async () => {
        ({ sink, faults } = await target.faultySink(TIMEOUT_MS));
        await sink.send(sampleEvent(1));
        const unhandled: unknown[] = [];
        const onUnhandled = (reason: unknown) => unhandled.push(reason);
        process.on('unhandledRejection', onUnhandled);
        try {
          await faults.hang();
          const inFlight = sink.send(sampleEvent(2)).then(() => undefined, (e: unknown) => e);
          await faults.requestHeld?.();
          const s = sink;
          sink = undefined;
          await settleWithin(s.close(), 'close() during an in-flight send');
          const outcome = await settleWithin(inFlight, 'the in-flight send after close()');
          if (outcome !== undefined) expect(outcome, String(outcome)).to.be.instanceOf(DeliveryError);
          await faults.up();
          // An absence cannot be polled for: give late answers to the closed sink a moment to arrive.
          await new Promise((r) => setTimeout(r, 300));
        } finally {
          process.off('unhandledRejection', onUnhandled);
        }
        expect(unhandled.map(String)).to.deep.equal([]);
      });
    });

    it('close() can be called twice', async () => {
      sink = await target.sink();
      await sink.send(sampleEvent(1));
      await sink.close();
      await sink.close();
      sink = undefined;
    });
  });
}
