import { expect } from 'chai';
import { change, harness, lastAck, MemorySink, settle, unavailable, until } from './engine-harness';

/** The shutdown half of the engine: what `stop(graceMs)` finishes, acknowledges and abandons. */
describe('DeliveryEngine (in-memory sink): stop with a grace period', () => {
  it('lets the sends in flight finish within the grace period and acknowledges what they delivered', async () => {
    const sink = new MemorySink();
    const h = harness(sink, { policy: { maxInFlight: 8 } });
    for (let i = 0; i < 3; i++) h.engine.change(change(`k${i}`, 1, 100n, i));
    h.engine.commit(100n);
    await until('three sends in flight', () => sink.waiting.length === 3);
    let stopped = false;
    const stopping = h.engine.stop(60_000).then(() => (stopped = true));
    await settle();
    expect(stopped, 'stop waits for the sends in flight').to.equal(false);
    while (sink.waiting.length) sink.answerNext({ ok: true });
    await stopping;
    expect(lastAck(h), 'delivered during the grace period: acknowledged').to.equal(100n);
    expect(h.events['delivery:delivered']).to.have.length(3);
  });

  it('abandons what is still in flight when the grace period is over, without waiting for it, unacknowledged', async () => {
    const sink = new MemorySink();
    const h = harness(sink, { policy: { maxInFlight: 8 } });
    h.engine.change(change('answered', 1, 100n, 0));
    h.engine.change(change('hung', 1, 100n, 1));
    h.engine.commit(100n);
    await until('two sends in flight', () => sink.waiting.length === 2);
    sink.answerNext({ ok: true });
    // The hung send never gets an answer: stop must still return once the grace period is over.
    await h.engine.stop(20);
    await settle();
    expect(h.acks, 'the commit is not done: nothing acknowledged').to.deep.equal([]);
    expect(h.engine.stats().buffered).to.equal(0);
    sink.waiting[0].answer({ ok: true });
    await settle();
    expect(h.acks, 'a send that settles after the grace period acknowledges nothing').to.deep.equal([]);
  });

  it('starts no new attempt while stopping: queued events stay unsent and a retry wait ends at once', async () => {
    const sink = new MemorySink();
    sink.respond = (call) =>
      call.events[0].partitionkey === 'retrying' ? { ok: false, error: unavailable() } : new Promise(() => undefined);
    const h = harness(sink, { policy: { maxInFlight: 2, backoffDelayMs: 60_000, backoffMaxMs: 60_000 } });
    h.engine.change(change('retrying', 1, 100n, 0));
    h.engine.change(change('held', 1, 100n, 1));
    h.engine.change(change('queued', 1, 100n, 2));
    h.engine.commit(100n);
    await until('both sends made', () => sink.calls.length === 2);
    const stopping = h.engine.stop(60_000);
    const held = sink.calls.find((c) => c.events[0].partitionkey === 'held')!;
    held.answer({ ok: true });
    // Resolves although the retry's 60 s backoff and the 60 s grace period are far from over.
    await stopping;
    expect(sink.calls.map((c) => c.events[0].partitionkey), 'no retry, and the queued event never sent').to.deep.equal(['retrying', 'held']);
    expect(h.acks, 'the commit has an undelivered event').to.deep.equal([]);
  });

  it('sends retrying together do not trip MaxListenersExceededWarning (one listener per send, bounded by maxInFlight)', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const sink = new MemorySink();
      const failedOnce = new Set<string>();
      // Every event fails its first attempt: up to maxInFlight sends wait out a backoff at once.
      sink.respond = (call) => {
        const id = call.events[0].id;
        if (failedOnce.has(id)) return { ok: true };
        failedOnce.add(id);
        return { ok: false, error: unavailable() };
      };
      const h = harness(sink, { policy: { maxInFlight: 64, backoffDelayMs: 5, backoffMaxMs: 5 } });
      const EVENTS = 2000;
      for (let i = 0; i < EVENTS; i++) h.engine.change(change(`k${i}`, 1, 100n, i));
      h.engine.commit(100n);
      await until('every event delivered', () => lastAck(h) === 100n, 30_000);
      expect(sink.accepted).to.have.length(EVENTS);
      await settle(); // warnings are emitted on a later tick
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message)).to.deep.equal([]);
      await h.engine.stop();
    } finally {
      process.off('warning', onWarning);
    }
  });
});
