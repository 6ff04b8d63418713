import { expect } from 'chai';
import type { Router } from '../../../src/routing/contract';
import type { Destination } from '../../../src/sinks/types';
import {
  badRequest, buildEvent, change, harness, lastAck, MemorySink, seqOf, settle, unavailable, until,
} from './engine-harness';

/**
 * Only the default route exists in production today; these tests build the engine with two
 * destinations (every change delivered to both), as trigger actions will, to show that order is per
 * (destination, key), that each destination has its own send slots, and that a change is
 * acknowledged only once all its deliveries are done.
 */
function twoDestinations(opts: { maxInFlight?: number } = {}) {
  const sinkA = new MemorySink();
  const sinkB = new MemorySink();
  const a: Destination = { name: 'a', sink: sinkA, batchSize: 1 };
  const b: Destination = { name: 'b', sink: sinkB, batchSize: 1 };
  const router: Router = {
    destinations: [a, b],
    route(c, deliver) {
      const event = buildEvent(c);
      deliver(a, event);
      deliver(b, event);
    },
  };
  const h = harness(sinkA, { router, policy: { maxInFlight: opts.maxInFlight ?? 4 } });
  return { h, a, b, sinkA, sinkB };
}

async function answerAll(sink: MemorySink, count: number): Promise<void> {
  while (sink.accepted.length < count) {
    if (sink.waiting.length) sink.answerNext();
    await new Promise((r) => setImmediate(r));
  }
}

describe('DeliveryEngine with two destinations (in-memory sinks)', () => {
  it('orders per (destination, key): one key goes to both destinations at once, each in commit order', async () => {
    const { h, sinkA, sinkB } = twoDestinations();
    for (let seq = 1; seq <= 3; seq++) h.engine.change(change('same', seq, 100n, seq));
    h.engine.commit(100n);
    await until('the first send of each destination', () => sinkA.open === 1 && sinkB.open === 1);
    await settle();
    expect(sinkA.calls.length, 'the key waits for its head in a').to.equal(1);
    expect(h.engine.stats().inFlight).to.equal(2);
    expect([...h.engine.stats().inFlightByDestination!], 'per destination, for pgce_delivery_in_flight').to.deep.equal([['a', 1], ['b', 1]]);
    await answerAll(sinkB, 3);
    expect(sinkB.accepted.map(seqOf)).to.deep.equal([1, 2, 3]);
    expect(sinkA.accepted, 'a is still on its first send').to.deep.equal([]);
    await settle();
    expect(h.acks, 'nothing acknowledged while a delivery of each change is undone').to.deep.equal([]);
    await answerAll(sinkA, 3);
    expect(sinkA.accepted.map(seqOf)).to.deep.equal([1, 2, 3]);
    await until('the commit acknowledged', () => lastAck(h) === 100n);
    expect(h.engine.stats()).to.include({ inFlight: 0, buffered: 0, bufferedBytes: 0 });
    const delivered = h.events['delivery:delivered']!.map((d) => `${d.destination}:${seqOf(d.event)}`);
    expect(delivered.sort(), 'lifecycle events name the destination').to.deep.equal(['a:1', 'a:2', 'a:3', 'b:1', 'b:2', 'b:3']);
  });

  it('a destination that keeps failing does not hold back another, even with more failing keys than send slots', async () => {
    const { h, sinkA, sinkB } = twoDestinations({ maxInFlight: 2 });
    let aDown = true;
    sinkA.respond = () => (aDown ? { ok: false, error: unavailable() } : { ok: true });
    sinkB.respond = () => ({ ok: true });
    for (let i = 0; i < 5; i++) h.engine.change(change(`k${i}`, 1, 10n, i));
    h.engine.commit(10n);
    await until('b delivered every change', () => sinkB.accepted.length === 5);
    await until('a retried', () => sinkA.calls.length > 5);
    expect(sinkA.maxOpen, 'a stays within its own slots').to.be.at.most(2);
    expect(h.acks, 'the changes wait for a').to.deep.equal([]);
    aDown = false;
    await until('the commit acknowledged once a delivered too', () => lastAck(h) === 10n);
    expect(sinkA.accepted.map((e) => e.partitionkey).sort()).to.deep.equal(['k0', 'k1', 'k2', 'k3', 'k4']);
  });

  it('a final failure is dead-lettered naming its destination; the change is acknowledged once the other destination delivered', async () => {
    const { h, a, sinkA, sinkB } = twoDestinations();
    sinkA.respond = () => ({ ok: false, error: badRequest() });
    let releaseB!: () => void;
    const bHeld = new Promise<void>((resolve) => (releaseB = resolve));
    sinkB.respond = async () => {
      await bHeld;
      return { ok: true };
    };
    h.engine.change(change('k', 1, 20n));
    h.engine.commit(20n);
    await until('the dead letter', () => h.deadLettered.length === 1);
    expect(h.deadLettered[0].destination).to.equal(a);
    await until('the dead letter reported', () => h.events['delivery:deadLettered']!.length === 1);
    expect(h.events['delivery:deadLettered']!.map((d) => d.destination)).to.deep.equal(['a']);
    expect(h.events['delivery:attemptFailed']!.every((f) => f.destination === 'a')).to.equal(true);
    await settle();
    expect(h.acks, 'b still holds the change').to.deep.equal([]);
    releaseB();
    await until('acknowledged', () => lastAck(h) === 20n);
    expect(sinkB.accepted.map(seqOf)).to.deep.equal([1]);
  });
});

describe('DeliveryEngine with destinations that appear at runtime (trigger rules from the table)', () => {
  it('makes a lane when a destination is first routed to, delivers in order, and forgets it once idle and no longer routed to', async () => {
    const sinkA = new MemorySink();
    const sinkB = new MemorySink();
    sinkA.respond = () => ({ ok: true });
    const a: Destination = { name: 'a', sink: sinkA, batchSize: 1 };
    const b: Destination = { name: 'trigger:late/0', sink: sinkB, batchSize: 1 };
    let withB = false;
    const router: Router = {
      get destinations() {
        return withB ? [a, b] : [a];
      },
      route(c, deliver) {
        const event = buildEvent(c);
        deliver(a, event);
        if (withB) deliver(b, event);
      },
    };
    const h = harness(sinkA, { router, policy: { maxInFlight: 4 } });
    h.engine.change(change('k', 1, 10n, 0));
    h.engine.commit(10n);
    await until('the first change acknowledged', () => lastAck(h) === 10n);
    withB = true;
    for (let seq = 2; seq <= 4; seq++) h.engine.change(change('k', seq, 20n, seq));
    h.engine.commit(20n);
    await until('b sent its first', () => sinkB.open === 1);
    expect([...h.engine.stats().inFlightByDestination!.keys()]).to.deep.equal(['a', 'trigger:late/0']);
    // Removed from the router while it still has deliveries: it drains them first.
    withB = false;
    await answerAll(sinkB, 3);
    expect(sinkB.accepted.map(seqOf)).to.deep.equal([2, 3, 4]);
    await until('the second commit acknowledged', () => lastAck(h) === 20n);
    expect([...h.engine.stats().inFlightByDestination!.keys()], 'the idle lane is forgotten').to.deep.equal(['a']);
  });
});
