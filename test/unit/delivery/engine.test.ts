import { expect } from 'chai';
import { eventCountLimit } from '../../../src/delivery/budget';
import type { FailedDelivery } from '../../../src/delivery/dead-letter';
import { changeSequence, type Change } from '../../../src/sources/change';
import {
  badRequest, change, harness, keyOf, lastAck, MemorySink, seeded, seqOf, settle, unavailable, until,
} from './engine-harness';

describe('DeliveryEngine (in-memory sink): concurrency, order, acknowledgement', () => {
  it('delivers different keys concurrently up to maxInFlight and never more', async () => {
    const sink = new MemorySink();
    const h = harness(sink, { policy: { maxInFlight: 4 } });
    for (let i = 0; i < 20; i++) {
      h.engine.change(change(`k${i}`, 1, 100n, i));
    }
    h.engine.commit(100n);
    await until('four sends in flight', () => sink.open === 4);
    await settle();
    expect(sink.open, 'no fifth send while four are in flight').to.equal(4);
    expect(h.engine.stats().inFlight).to.equal(4);
    sink.answerNext();
    await until('a fifth send to replace the finished one', () => sink.calls.length === 5);
    while (sink.accepted.length < 20) {
      if (sink.waiting.length) sink.answerNext();
      await new Promise((r) => setImmediate(r));
    }
    expect(sink.maxOpen).to.equal(4);
    await until('the commit acknowledged', () => lastAck(h) === 100n);
    expect(h.acks).to.deep.equal([{ lsn: 100n, idle: true }]);
  });

  it('delivers a change that arrives in the same tick as a commit the engine has just finished', async () => {
    // A socket read can carry the end of one transaction and the whole next one; the sequential
    // consumer this engine replaced once lost its wake-up in exactly this interleaving.
    const sink = new MemorySink();
    sink.respond = () => ({ ok: true });
    const h = harness(sink, { policy: { maxInFlight: 4 } });
    h.engine.commit(10n);
    h.engine.change(change('k', 1, 11n));
    h.engine.commit(11n);
    await until('the second transaction', () => lastAck(h) === 11n, 1000);
    expect(sink.accepted.map(seqOf)).to.deep.equal([1]);
  });

  it('a send the sink skipped on purpose (a trigger whose when is false) is done and acknowledged, but reported as skipped, not delivered', async () => {
    const sink = new MemorySink();
    sink.respond = (call) => ({ ok: true, skipped: seqOf(call.events[0]) % 2 === 0 });
    const h = harness(sink);
    for (let seq = 1; seq <= 4; seq++) h.engine.change(change('k', seq, 100n, seq));
    h.engine.commit(100n);
    await until('the commit acknowledged', () => lastAck(h) === 100n);
    const ids = (name: 'delivery:delivered' | 'delivery:skipped') => (h.events[name] as unknown as { event: { data: { id: number } } }[]).map((p) => p.event.data.id);
    expect(ids('delivery:delivered')).to.deep.equal([1, 3]);
    expect(ids('delivery:skipped')).to.deep.equal([2, 4]);
  });

  it('sends the events of one key one after another, whatever maxInFlight', async () => {
    const sink = new MemorySink();
    const h = harness(sink, { policy: { maxInFlight: 8 } });
    for (let seq = 1; seq <= 5; seq++) h.engine.change(change('same', seq, 100n, seq));
    await until('the first send', () => sink.open === 1);
    await settle();
    expect(sink.calls.length, 'the second event waits for the first').to.equal(1);
    while (sink.accepted.length < 5) {
      if (sink.waiting.length) sink.answerNext();
      await new Promise((r) => setImmediate(r));
    }
    expect(sink.accepted.map(seqOf)).to.deep.equal([1, 2, 3, 4, 5]);
    expect(sink.maxOpen).to.equal(1);
  });

  it('keeps per-key order and delivers everything under random delays and retriable failures (property)', async () => {
    for (const seed of [1, 2, 3]) {
      const random = seeded(seed);
      const sink = new MemorySink();
      sink.respond = async () => {
        const r = random();
        if (r < 0.3) await new Promise((res) => setTimeout(res, Math.floor(random() * 3)));
        else if (r < 0.6) await new Promise((res) => setImmediate(res));
        return random() < 0.2 ? { ok: false, error: unavailable() } : { ok: true };
      };
      const KEYS = 25;
      const PER_KEY = 40;
      const committed: { lsn: bigint; changes: Change[] }[] = [];
      const deliveredIds = new Set<string>();
      const violations: string[] = [];
      const h = harness(sink, {
        policy: { maxInFlight: 8 },
        // Checked at the moment of every acknowledgement: every change before it was accepted.
        onAcknowledge: (lsn) => {
          for (const txn of committed) {
            if (txn.lsn > lsn) break;
            for (const c of txn.changes) {
              const id = changeSequence(c);
              if (!deliveredIds.has(id)) violations.push(`ack ${lsn} before ${id}`);
            }
          }
        },
      });
      h.lifecycle.on('delivery:delivered', ({ event }) => deliveredIds.add(event.id));
      const next = new Array<number>(KEYS).fill(0);
      let lsn = 1000n;
      let txn: Change[] = [];
      let total = 0;
      while (total < KEYS * PER_KEY) {
        const k = Math.floor(random() * KEYS);
        if (next[k] >= PER_KEY) continue;
        const ordinal = txn.length;
        const c = change(`k${k}`, ++next[k], lsn, ordinal);
        txn.push(c);
        total++;
        h.engine.change(c);
        if (random() < 0.3 || total === KEYS * PER_KEY) {
          committed.push({ lsn, changes: txn });
          h.engine.commit(lsn);
          lsn += 10n;
          txn = [];
        }
        if (random() < 0.05) await new Promise((r) => setImmediate(r));
      }
      await until('every event accepted', () => sink.accepted.length === KEYS * PER_KEY, 10_000);
      await until('the last commit acknowledged', () => lastAck(h) === lsn - 10n);
      const perKey = new Map<string, number[]>();
      for (const e of sink.accepted) perKey.set(keyOf(e), [...(perKey.get(keyOf(e)) ?? []), seqOf(e)]);
      for (const [key, seqs] of perKey) {
        expect(seqs, `order of ${key} (seed ${seed})`).to.deep.equal(Array.from({ length: PER_KEY }, (_, i) => i + 1));
      }
      expect(perKey.size).to.equal(KEYS);
      expect(sink.overlapPerKey, 'two sends of one key at once').to.equal(0);
      expect(sink.maxOpen).to.be.at.most(8);
      expect(h.events['delivery:attemptFailed']!.length, 'the failures really happened').to.be.greaterThan(0);
      const acked = h.acks.map((a) => a.lsn);
      expect(acked, 'acknowledgements only move forward').to.deep.equal([...acked].sort((a, b) => (a < b ? -1 : 1)));
      expect(violations).to.deep.equal([]);
      expect(h.engine.stats()).to.deep.include({ inFlight: 0, buffered: 0, bufferedBytes: 0 });
    }
  });

  it('holds the acknowledgement below a stuck key while later keys finish, then jumps', async () => {
    const sink = new MemorySink();
    let releaseA!: () => void;
    const aGate = new Promise<void>((r) => (releaseA = r));
    sink.respond = async (call) => {
      if (keyOf(call.events[0]) === 'A') await aGate;
      return { ok: true };
    };
    const h = harness(sink);
    h.engine.change(change('B', 1, 100n));
    h.engine.commit(100n);
    h.engine.change(change('A', 1, 200n));
    h.engine.commit(200n);
    for (let i = 0; i < 5; i++) {
      h.engine.change(change(`C${i}`, 1, BigInt(300 + i * 100)));
      h.engine.commit(BigInt(300 + i * 100));
    }
    await until('the later keys delivered', () => sink.accepted.length === 6);
    await settle();
    expect(h.acks.map((a) => a.lsn), 'nothing at or past the stuck change').to.deep.equal([100n]);
    expect(h.engine.stats().oldestUndeliveredCommitTime).to.be.instanceOf(Date);
    expect(h.engine.stats().buffered).to.equal(1);
    releaseA();
    await until('the jump', () => lastAck(h) === 700n);
    expect(h.acks).to.deep.equal([{ lsn: 100n, idle: false }, { lsn: 700n, idle: true }]);
    expect(h.engine.stats().oldestUndeliveredCommitTime).to.equal(undefined);
  });

  it('acknowledges a keepalive position only after everything queued before it', async () => {
    const sink = new MemorySink();
    const h = harness(sink);
    h.engine.position(50n);
    expect(h.acks, 'idle pipeline: at once').to.deep.equal([{ lsn: 50n, idle: true }]);
    h.engine.change(change('X', 1, 100n));
    h.engine.commit(100n);
    h.engine.position(150n);
    await until('the send', () => sink.waiting.length === 1);
    await settle();
    expect(h.acks.map((a) => a.lsn)).to.deep.equal([50n]);
    sink.answerNext();
    await until('the position acknowledged', () => lastAck(h) === 150n);
    expect(h.acks.map((a) => a.lsn), 'straight to the position, which is past the commit').to.deep.equal([50n, 150n]);
  });

  it('reports the delivered event with attempts, latency and the sink status', async () => {
    const sink = new MemorySink();
    let n = 0;
    sink.respond = () => (n++ === 0 ? { ok: false, error: unavailable() } : { ok: true, status: 202 });
    const h = harness(sink);
    const c = change('A', 1, 100n);
    h.engine.change(c);
    h.engine.commit(100n);
    await until('delivered', () => h.events['delivery:delivered']!.length === 1);
    const d = h.events['delivery:delivered']![0];
    expect(d).to.include({ attempts: 2, status: 202, commitTime: c.commitTime });
    expect(d.latencyMs).to.be.closeTo(Date.now() - c.commitTime.getTime(), 1000);
    expect(h.events['delivery:attemptFailed']!.map((f) => [f.attempt, f.willRetry, f.status])).to.deep.equal([[1, true, 503]]);
  });
});

describe('DeliveryEngine (in-memory sink): dead letters', () => {
  it('dead-letters a final failure with its data, blocks only its key until stored, then moves on', async () => {
    const sink = new MemorySink();
    sink.respond = (call) => (keyOf(call.events[0]) === 'A' && seqOf(call.events[0]) === 1 ? { ok: false, error: badRequest() } : { ok: true });
    const stored: FailedDelivery[] = [];
    let storeIt!: () => void;
    const gate = new Promise<void>((r) => (storeIt = r));
    const h = harness(sink, {
      deadLetter: async (failed) => {
        stored.push(failed);
        await gate;
      },
    });
    const a1 = change('A', 1, 100n, 0);
    h.engine.change(a1);
    h.engine.change(change('A', 2, 100n, 1));
    h.engine.change(change('B', 1, 100n, 2));
    h.engine.commit(100n);
    h.engine.change(change('B', 2, 200n, 0));
    h.engine.commit(200n);
    await until('the dead-letter handler called', () => stored.length === 1);
    await until('key B delivered meanwhile', () => sink.accepted.length === 2);
    await settle();
    const failed = stored[0];
    expect(failed.change).to.equal(a1);
    expect(failed.event.subject).to.equal('A#1');
    expect(failed.status).to.equal(400);
    expect(failed.attempts).to.equal(1);
    expect(failed.error.message).to.match(/400/);
    expect(failed.firstAttemptAt.getTime()).to.be.at.most(failed.lastAttemptAt.getTime());
    expect(sink.calls.filter((c) => keyOf(c.events[0]) === 'A').length, 'A#2 waits for A#1 to be stored').to.equal(1);
    expect(h.acks, 'nothing acknowledged before the dead letter is stored').to.deep.equal([]);
    expect(h.events['delivery:deadLettered']).to.deep.equal([]);
    storeIt();
    await until('everything acknowledged', () => lastAck(h) === 200n);
    expect(sink.accepted.filter((e) => keyOf(e) === 'A').map(seqOf)).to.deep.equal([2]);
    expect(h.events['delivery:deadLettered']!.map((d) => [d.event.subject, d.status, d.attempts])).to.deep.equal([['A#1', 400, 1]]);
  });

  it('dead-letters after the retries are exhausted, with the attempt count', async () => {
    const sink = new MemorySink();
    sink.respond = () => ({ ok: false, error: unavailable() });
    const h = harness(sink, { policy: { retry: 2 } });
    h.engine.change(change('A', 1, 100n));
    h.engine.commit(100n);
    await until('acknowledged after the dead letter', () => lastAck(h) === 100n);
    expect(sink.calls.length).to.equal(3);
    expect(h.deadLettered.map((f) => [f.attempts, f.status])).to.deep.equal([[3, 503]]);
  });

  it('does not acknowledge an event whose dead letter was abandoned on shutdown', async () => {
    const sink = new MemorySink();
    sink.respond = () => ({ ok: false, error: badRequest() });
    let called = false;
    const h = harness(sink, {
      deadLetter: (_failed, signal) =>
        new Promise((_resolve, reject) => {
          called = true;
          signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
        }),
    });
    h.engine.change(change('A', 1, 100n));
    h.engine.commit(100n);
    await until('the dead-letter handler called', () => called);
    const started = Date.now();
    await h.engine.stop();
    expect(Date.now() - started).to.be.lessThan(500);
    await settle();
    expect(h.acks).to.deep.equal([]);
    expect(h.events['delivery:deadLettered']).to.deep.equal([]);
  });

  it('offers a dead letter again when storing it fails without a shutdown, never dropping it', async () => {
    const sink = new MemorySink();
    sink.respond = () => ({ ok: false, error: badRequest() });
    let calls = 0;
    const h = harness(sink, {
      deadLetter: async () => {
        if (++calls < 3) throw new Error('dead-letter table unavailable');
      },
    });
    h.engine.change(change('A', 1, 100n));
    h.engine.commit(100n);
    await until('stored on the third try', () => lastAck(h) === 100n);
    expect(calls).to.equal(3);
  });
});

describe('DeliveryEngine (in-memory sink): backpressure, reset and stop', () => {
  it('asks for backpressure at the event-count limit and releases it below half', async () => {
    const sink = new MemorySink();
    let buffered = -1;
    const h = harness(sink, {
      policy: { maxInFlight: 1 },
      onPressure: (full) => {
        if (!full) buffered = h.engine.stats().buffered;
      },
    });
    const limit = eventCountLimit(1, 1);
    for (let i = 0; i < limit - 1; i++) h.engine.change(change(`k${i}`, 1, 100n, i));
    expect(h.pressure).to.deep.equal([]);
    h.engine.change(change('last', 1, 100n, limit));
    expect(h.pressure).to.deep.equal([true]);
    expect(h.engine.stats().buffered).to.equal(limit);
    h.engine.commit(100n);
    await until('the first send', () => sink.waiting.length === 1);
    sink.respond = () => ({ ok: true });
    sink.answerNext();
    await until('the buffer drained', () => lastAck(h) === 100n, 10_000);
    expect(h.pressure).to.deep.equal([true, false]);
    expect(buffered, 'released just below half').to.equal(Math.ceil(limit / 2) - 1);
  });

  it('asks for backpressure at the byte budget and releases it below half', async () => {
    const sink = new MemorySink();
    const big = 'x'.repeat(10_000);
    let bytesAtRelease = -1;
    const h = harness(sink, {
      policy: { maxInFlight: 2, maxBufferBytes: 50_000 },
      onPressure: (full) => {
        if (!full) bytesAtRelease = h.engine.stats().bufferedBytes;
      },
    });
    for (let i = 0; i < 4; i++) h.engine.change(change(`k${i}`, 1, 100n, i, { blob: big }));
    expect(h.pressure, 'four events of ~10 kB are below 50 kB').to.deep.equal([]);
    expect(h.engine.stats().bufferedBytes).to.be.within(40_000, 50_000);
    h.engine.change(change('k4', 1, 100n, 4, { blob: big }));
    expect(h.pressure).to.deep.equal([true]);
    h.engine.commit(100n);
    sink.respond = () => ({ ok: true });
    while (sink.waiting.length) sink.answerNext();
    await until('drained', () => lastAck(h) === 100n);
    expect(h.pressure).to.deep.equal([true, false]);
    expect(bytesAtRelease).to.be.below(25_000);
    expect(h.engine.stats().bufferedBytes).to.equal(0);
  });

  it('reset() aborts retries and queued work promptly, waits for the send in flight, and acknowledges nothing of it', async () => {
    const sink = new MemorySink();
    sink.respond = async (call) => {
      if (keyOf(call.events[0]) === 'retrying') return { ok: false, error: unavailable() };
      return new Promise(() => undefined); // held: answered by the test below
    };
    const h = harness(sink, { policy: { maxInFlight: 2, backoffDelayMs: 60_000, backoffMaxMs: 60_000 } });
    h.engine.change(change('retrying', 1, 100n, 0));
    h.engine.change(change('held', 1, 100n, 1));
    h.engine.change(change('queued', 1, 100n, 2));
    h.engine.commit(100n);
    await until('both sends made', () => sink.calls.length === 2);
    const held = sink.calls.find((c) => keyOf(c.events[0]) === 'held')!;
    let resetDone = false;
    const reset = h.engine.reset().then(() => (resetDone = true));
    await settle();
    expect(resetDone, 'reset waits for the send in flight').to.equal(false);
    expect(h.pressure).to.deep.equal([]);
    held.answer({ ok: true });
    await reset;
    await settle();
    expect(h.acks, 'an abandoned round acknowledges nothing').to.deep.equal([]);
    expect(sink.calls.length, 'the queued event was never sent').to.equal(2);
    const { inFlightByDestination, ...stats } = h.engine.stats();
    expect(stats).to.deep.equal({ inFlight: 0, buffered: 0, bufferedBytes: 0, oldestUndeliveredCommitTime: undefined });
    expect([...inFlightByDestination!.values()]).to.satisfy((counts: number[]) => counts.every((n) => n === 0));
    // The slot resends from its position: the engine works normally again.
    sink.respond = () => ({ ok: true });
    h.engine.change(change('queued', 1, 100n, 2));
    h.engine.commit(100n);
    await until('acknowledged after the restart', () => lastAck(h) === 100n);
  });

  it('reset() releases backpressure', async () => {
    const sink = new MemorySink();
    const h = harness(sink, { policy: { maxInFlight: 1, maxBufferBytes: 1000 } });
    h.engine.change(change('A', 1, 100n, 0, { blob: 'x'.repeat(2000) }));
    expect(h.pressure).to.deep.equal([true]);
    await until('sent', () => sink.waiting.length === 1);
    const reset = h.engine.reset();
    sink.answerNext({ ok: true });
    await reset;
    expect(h.pressure).to.deep.equal([true, false]);
    expect(h.acks).to.deep.equal([]);
  });

  it('stop() abandons a retry wait promptly, acknowledges nothing more and refuses further work', async () => {
    const sink = new MemorySink();
    sink.respond = () => ({ ok: false, error: unavailable() });
    const h = harness(sink, { policy: { backoffDelayMs: 60_000, backoffMaxMs: 60_000 } });
    h.engine.change(change('A', 1, 100n));
    h.engine.commit(100n);
    await until('the first attempt', () => sink.calls.length === 1);
    const started = Date.now();
    await h.engine.stop();
    expect(Date.now() - started).to.be.lessThan(500);
    h.engine.change(change('B', 1, 200n));
    h.engine.commit(200n);
    h.engine.position(300n);
    await settle();
    expect(h.acks).to.deep.equal([]);
    expect(sink.calls.length).to.equal(1);
    expect(h.engine.stats().buffered).to.equal(0);
  });
});
