import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import type { Change } from '../../../src/capture/change';
import type { DeliveryConfig } from '../../../src/config/types';
import { SequentialConsumer } from '../../../src/delivery/sequential';
import { DeliveryError } from '../../../src/errors';
import { Lifecycle } from '../../../src/lifecycle';
import type { Sink } from '../../../src/sinks/types';
import { insertOf, questionRow, questions } from '../events/fixtures';

const POLICY: DeliveryConfig = {
  backoffPolicy: 'exponential', backoffDelayMs: 5, backoffMaxMs: 20, timeoutMs: 1000, maxInFlight: 1, maxBufferBytes: 1 << 26,
};

/** An in-memory sink (mocked: these tests are about the consumer's queue, not about HTTP). */
class ScriptedSink implements Sink {
  readonly name = 'scripted';
  readonly received: string[] = [];
  /** Answers per call: 'ok', 'retriable', 'final', or a promise to wait for first. */
  script: (n: number) => 'ok' | 'retriable' | 'final' | Promise<void> = () => 'ok';
  private calls = 0;
  async send(event: CloudEvent<unknown>): Promise<void> {
    const answer = this.script(this.calls++);
    if (answer instanceof Promise) await answer;
    else if (answer !== 'ok') throw new DeliveryError(`scripted ${answer}`, { retriable: answer === 'retriable', status: answer === 'final' ? 400 : 503 });
    this.received.push(event.subject as string);
  }
  async close(): Promise<void> {}
  describe(): string {
    return 'scripted';
  }
}

function change(id: number, ordinal = 0): Change {
  return { ...insertOf(questions, { ...questionRow, id }), commitLsn: BigInt(1000 + id), ordinal };
}

function setup(sink: ScriptedSink, highWaterMark?: number) {
  const acks: bigint[] = [];
  const pressure: boolean[] = [];
  const consumer = new SequentialConsumer({
    sink,
    policy: POLICY,
    lifecycle: new Lifecycle(),
    highWaterMark,
    buildEvent: (c) => new CloudEvent({ source: '/t', type: 't', subject: String((c as unknown as { new: { id: number } }).new.id) }),
    hooks: { acknowledge: (lsn) => acks.push(lsn), onPressure: (full) => pressure.push(full) },
  });
  return { consumer, acks, pressure };
}

async function until(what: string, fn: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe('SequentialConsumer (in-memory sink: the queue, ordering and acknowledgement)', () => {
  it('delivers a change queued in the same tick as a commit the worker finished synchronously', async () => {
    const sink = new ScriptedSink();
    const { consumer, acks } = setup(sink);
    // A socket read can carry the end of one transaction and the whole next one.
    consumer.commit(10n);
    consumer.change(change(1));
    consumer.commit(11n);
    await until('the second transaction', () => acks.includes(11n), 1000);
    expect(sink.received).to.deep.equal(['1']);
    expect(acks).to.deep.equal([10n, 11n]);
  });

  it('acknowledges a transaction only after every one of its events was accepted', async () => {
    const sink = new ScriptedSink();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    sink.script = (n) => (n === 1 ? gate : 'ok');
    const { consumer, acks } = setup(sink);
    consumer.change(change(1, 0));
    consumer.change(change(2, 1));
    consumer.commit(20n);
    await until('the first delivery', () => sink.received.length === 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(acks, 'nothing acknowledged while an event of the transaction is in flight').to.deep.equal([]);
    release();
    await until('the acknowledgement', () => acks.length === 1);
    expect(acks).to.deep.equal([20n]);
    expect(sink.received).to.deep.equal(['1', '2']);
  });

  it('keeps commit order across retriable failures', async () => {
    const sink = new ScriptedSink();
    sink.script = (n) => (n === 0 || n === 1 ? 'retriable' : 'ok');
    const { consumer, acks } = setup(sink);
    for (let id = 1; id <= 5; id++) {
      consumer.change(change(id));
      consumer.commit(BigInt(id * 10));
    }
    await until('all five', () => acks.length === 5);
    expect(sink.received).to.deep.equal(['1', '2', '3', '4', '5']);
    expect(acks).to.deep.equal([10n, 20n, 30n, 40n, 50n]);
  });

  it('holds an event the sink refuses for good instead of acknowledging past it', async () => {
    const sink = new ScriptedSink();
    sink.script = (n) => (n < 3 ? 'final' : 'ok');
    const { consumer, acks } = setup(sink);
    consumer.change(change(1));
    consumer.commit(10n);
    await until('the held event to go through once the sink accepts it', () => acks.length === 1);
    expect(sink.received).to.deep.equal(['1']);
  });

  it('asks for backpressure at the high-water mark and releases it below half', async () => {
    const sink = new ScriptedSink();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    sink.script = (n) => (n === 0 ? gate : 'ok');
    const { consumer, pressure, acks } = setup(sink, 4);
    for (let id = 1; id <= 3; id++) consumer.change(change(id));
    expect(pressure).to.deep.equal([]);
    consumer.commit(30n);
    expect(pressure).to.deep.equal([true]);
    release();
    await until('the queue to drain', () => acks.length === 1);
    expect(pressure).to.deep.equal([true, false]);
  });

  it('stop() abandons a retry wait and acknowledges nothing past the undelivered event', async () => {
    const sink = new ScriptedSink();
    sink.script = () => 'retriable';
    const { consumer, acks } = setup(sink);
    consumer.change(change(1));
    consumer.commit(10n);
    await new Promise((r) => setTimeout(r, 30));
    const started = Date.now();
    await consumer.stop();
    expect(Date.now() - started).to.be.lessThan(500);
    expect(acks).to.deep.equal([]);
    consumer.change(change(2));
    expect(consumer.pending, 'a stopped consumer takes no more work').to.equal(0);
  });
});
