import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import type { Sink } from '../../../src/sinks/types';
import { DeliveryError } from '../../../src/errors';

/**
 * One suite every broker sink passes against its real server (bullmq's adapter-conformance
 * habit): what is published can be read back by a consumer and rebuilt into an equal, valid
 * CloudEvent; one partition key keeps its order; a broker that is down is a retriable failure.
 */
export interface ConformanceTarget {
  /** A sink publishing to a fresh destination of this test's own. */
  sink(): Promise<Sink>;
  /** The consumer side: resolves with the events read back (rebuilt and validated), in order. */
  readBack(count: number, timeoutMs: number): Promise<CloudEvent<unknown>[]>;
  /** A sink configured against a broker address where nothing listens. */
  unreachableSink(): Promise<Sink>;
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

    it('close() can be called twice', async () => {
      sink = await target.sink();
      await sink.send(sampleEvent(1));
      await sink.close();
      await sink.close();
      sink = undefined;
    });
  });
}
