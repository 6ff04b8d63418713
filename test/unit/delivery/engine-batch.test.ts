import { expect } from 'chai';
import {
  badRequest, change, harness, keyOf, lastAck, MemorySink, seeded, seqOf, settle, unavailable, until,
} from './engine-harness';

describe('DeliveryEngine batching (in-memory sink with sendBatch)', () => {
  it('sends batches of at most batchSize through sendBatch, several keys per batch', async () => {
    const sink = new MemorySink(true);
    sink.respond = () => ({ ok: true });
    const singles: unknown[] = [];
    sink.send = async (e) => {
      singles.push(e);
    };
    const h = harness(sink, { batchSize: 10, policy: { maxInFlight: 2 } });
    for (let i = 0; i < 95; i++) h.engine.change(change(`k${i}`, 1, 100n, i));
    h.engine.commit(100n);
    await until('all accepted', () => sink.accepted.length === 95);
    await until('acknowledged', () => lastAck(h) === 100n);
    expect(singles, 'batch mode never sends one by one').to.deep.equal([]);
    const sizes = sink.calls.map((c) => c.events.length);
    expect(Math.max(...sizes)).to.equal(10);
    expect(sizes.reduce((a, b) => a + b, 0)).to.equal(95);
    expect(new Set(sink.calls[0].events.map(keyOf)).size, 'one batch spans keys').to.equal(10);
    expect(sink.maxOpen, 'in-flight batches count against maxInFlight').to.be.at.most(2);
    expect(h.events['delivery:delivered']!.length, 'one delivered event per event, not per batch').to.equal(95);
  });

  it('sends what is ready without waiting for a full batch', async () => {
    const sink = new MemorySink(true);
    const h = harness(sink, { batchSize: 50 });
    h.engine.change(change('A', 1, 100n));
    h.engine.commit(100n);
    await until('a batch of one sent', () => sink.waiting.length === 1);
    expect(sink.waiting[0].events.map(keyOf)).to.deep.equal(['A']);
    sink.answerNext();
    await until('acknowledged', () => lastAck(h) === 100n);
  });

  it('takes consecutive events of one key into a batch in order, and keeps the key busy across batches', async () => {
    const sink = new MemorySink(true);
    const h = harness(sink, { batchSize: 3, policy: { maxInFlight: 4 } });
    for (let seq = 1; seq <= 7; seq++) h.engine.change(change('same', seq, 100n, seq));
    h.engine.commit(100n);
    await until('the first batch', () => sink.waiting.length === 1);
    await settle();
    expect(sink.calls.length, 'the key is busy: no second batch of it in parallel').to.equal(1);
    expect(sink.waiting[0].events.map(seqOf)).to.deep.equal([1, 2, 3]);
    sink.answerNext();
    await until('the second batch', () => sink.waiting.length === 1);
    expect(sink.waiting[0].events.map(seqOf)).to.deep.equal([4, 5, 6]);
    sink.answerNext();
    await until('the third batch', () => sink.waiting.length === 1);
    expect(sink.waiting[0].events.map(seqOf)).to.deep.equal([7]);
    sink.answerNext();
    await until('acknowledged', () => lastAck(h) === 100n);
  });

  it('keeps per-key order across batches under random delays and retriable failures (property)', async () => {
    const random = seeded(42);
    const sink = new MemorySink(true);
    sink.respond = async () => {
      if (random() < 0.5) await new Promise((r) => setTimeout(r, Math.floor(random() * 3)));
      return random() < 0.2 ? { ok: false, error: unavailable() } : { ok: true };
    };
    const h = harness(sink, { batchSize: 8, policy: { maxInFlight: 4 } });
    const KEYS = 15;
    const PER_KEY = 40;
    const next = new Array<number>(KEYS).fill(0);
    let lsn = 1000n;
    let total = 0;
    while (total < KEYS * PER_KEY) {
      const k = Math.floor(random() * KEYS);
      if (next[k] >= PER_KEY) continue;
      h.engine.change(change(`k${k}`, ++next[k], lsn, total++));
      if (random() < 0.1) {
        h.engine.commit(lsn);
        lsn += 10n;
      }
      if (random() < 0.05) await new Promise((r) => setImmediate(r));
    }
    h.engine.commit(lsn);
    await until('every event accepted', () => sink.accepted.length === KEYS * PER_KEY, 10_000);
    await until('the last commit acknowledged', () => lastAck(h) === lsn);
    for (let k = 0; k < KEYS; k++) {
      const seqs = sink.accepted.filter((e) => keyOf(e) === `k${k}`).map(seqOf);
      expect(seqs, `order of k${k}`).to.deep.equal(Array.from({ length: PER_KEY }, (_, i) => i + 1));
    }
    expect(sink.overlapPerKey, 'two batches holding one key at once').to.equal(0);
    expect(Math.max(...sink.calls.map((c) => c.events.length))).to.be.at.most(8);
    expect(h.events['delivery:attemptFailed']!.length).to.be.greaterThan(0);
  });

  it('resends the same batch after a retriable failure', async () => {
    const sink = new MemorySink(true);
    let n = 0;
    sink.respond = () => (n++ === 0 ? { ok: false, error: unavailable() } : { ok: true });
    const h = harness(sink, { batchSize: 4 });
    for (let i = 0; i < 4; i++) h.engine.change(change(`k${i}`, 1, 100n, i));
    h.engine.commit(100n);
    await until('acknowledged', () => lastAck(h) === 100n);
    expect(sink.calls.length).to.equal(2);
    const ids = sink.calls.map((c) => c.events.map((e) => e.id));
    expect(ids[1]).to.deep.equal(ids[0]);
    expect(ids[0].length).to.equal(4);
    expect(h.events['delivery:delivered']!.map((d) => d.attempts)).to.deep.equal([2, 2, 2, 2]);
  });

  it('dead-letters every event of a batch that failed for good, in order, then the keys move on', async () => {
    const sink = new MemorySink(true);
    let n = 0;
    sink.respond = () => (n++ === 0 ? { ok: false, error: badRequest() } : { ok: true });
    const h = harness(sink, { batchSize: 3 });
    for (let i = 0; i < 3; i++) h.engine.change(change(`k${i}`, 1, 100n, i));
    h.engine.commit(100n);
    await until('the first batch answered', () => n === 1);
    for (let i = 0; i < 3; i++) h.engine.change(change(`k${i}`, 2, 200n, i));
    h.engine.commit(200n);
    await until('everything acknowledged', () => lastAck(h) === 200n);
    expect(h.deadLettered.map((f) => [f.event.subject, f.status, f.attempts])).to.deep.equal([
      ['k0#1', 400, 1], ['k1#1', 400, 1], ['k2#1', 400, 1],
    ]);
    expect(h.deadLettered.map((f) => f.change!.ordinal)).to.deep.equal([0, 1, 2]);
    expect(sink.accepted.map((e) => e.subject).sort()).to.deep.equal(['k0#2', 'k1#2', 'k2#2']);
  });

  it('sends one by one when the sink has no sendBatch, whatever batchSize', async () => {
    const sink = new MemorySink(false);
    sink.respond = () => ({ ok: true });
    const h = harness(sink, { batchSize: 10 });
    for (let i = 0; i < 5; i++) h.engine.change(change(`k${i}`, 1, 100n, i));
    h.engine.commit(100n);
    await until('acknowledged', () => lastAck(h) === 100n);
    expect(sink.calls.map((c) => c.events.length)).to.deep.equal([1, 1, 1, 1, 1]);
  });
});
