import { expect } from 'chai';
import { ErrorCodes, PgceError } from '../../../src/errors';
import type { UndecodableRecord } from '../../../src/delivery/undecodable';
import { buildEvent, change, harness, lastAck, MemorySink, settle, until } from './engine-harness';
import type { Change } from '../../../src/sources/change';

/** An event builder that fails on one row, as a bug or an unexpected value would. */
function failingOn(badId: number) {
  return (c: Change) => {
    if ((c as unknown as { new: { id: number } }).new.id === badId) throw new TypeError('unexpected value in column question_text');
    return buildEvent(c);
  };
}

describe('DeliveryEngine: a change whose event cannot be built (in-memory sink)', () => {
  it('dead-letters it with its row and the reason, delivers the others and acknowledges past it', async () => {
    const sink = new MemorySink();
    sink.respond = () => ({ ok: true });
    const h = harness(sink, { buildEvent: failingOn(2) });
    h.engine.change(change('a', 1, 100n, 0));
    h.engine.change(change('b', 2, 100n, 1));
    h.engine.change(change('c', 3, 100n, 2));
    h.engine.commit(100n);
    await until('the commit acknowledged', () => lastAck(h) === 100n);
    expect(sink.accepted.map((e) => e.partitionkey)).to.have.members(['a', 'c']);
    expect(h.undecodable).to.have.length(1);
    const [record] = h.undecodable;
    expect(record.eventId).to.equal('0000000000000064-00000001');
    expect(record.error).to.contain('unexpected value in column question_text');
    expect(JSON.parse(record.raw)).to.deep.include({ kind: 'insert', ordinal: 1, row: { new: { id: 2, question_text: 'b' } } });
  });

  it('holds the position until the record is stored, retrying a store that fails', async () => {
    const sink = new MemorySink();
    sink.respond = () => ({ ok: true });
    let attempts = 0;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const stored: UndecodableRecord[] = [];
    const h = harness(sink, {
      buildEvent: failingOn(1),
      policy: { backoffMaxMs: 1 },
      undecodable: async (record) => {
        attempts++;
        if (attempts === 1) throw new PgceError(ErrorCodes.DB_CONNECT, 'database restarting', { retriable: true });
        await released;
        stored.push(record);
      },
    });
    h.engine.change(change('a', 1, 100n, 0));
    h.engine.commit(100n);
    await until('a second attempt to store', () => attempts === 2);
    await settle();
    expect(h.acks, 'nothing acknowledged before it is stored').to.deep.equal([]);
    release();
    await until('the commit acknowledged', () => lastAck(h) === 100n);
    expect(stored).to.have.length(1);
  });

  it('takes no send slot and is not counted in flight while its record is stored, and reset waits for it', async () => {
    const sink = new MemorySink();
    sink.respond = () => ({ ok: true });
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let storing = false;
    let stored = false;
    const h = harness(sink, {
      buildEvent: failingOn(1),
      policy: { maxInFlight: 1 },
      undecodable: async () => {
        storing = true;
        await released;
        stored = true;
      },
    });
    h.engine.change(change('a', 1, 100n, 0));
    h.engine.change(change('b', 2, 100n, 1));
    h.engine.commit(100n);
    await until('the store started', () => storing);
    // With one send slot, row b is delivered only if the pending store does not hold that slot.
    await until('row b delivered while the store hangs', () => sink.accepted.length === 1);
    expect(h.engine.stats().inFlight, 'sends in flight').to.equal(0);
    let resetDone = false;
    const reset = h.engine.reset().then(() => (resetDone = true));
    await settle();
    expect(resetDone, 'reset waits for the store').to.equal(false);
    release();
    await reset;
    expect(stored).to.equal(true);
  });

  it('emits capture:undecodable once per change', async () => {
    const sink = new MemorySink();
    sink.respond = () => ({ ok: true });
    const h = harness(sink, { buildEvent: failingOn(1) });
    const seen: string[] = [];
    h.lifecycle.on('capture:undecodable', ({ change: c }) => seen.push(String(c.ordinal)));
    h.engine.change(change('a', 1, 100n, 4));
    h.engine.commit(100n);
    await until('the commit acknowledged', () => lastAck(h) === 100n);
    expect(seen).to.deep.equal(['4']);
  });
});

describe('DeliveryEngine: lifecycle listeners cannot stop delivery', () => {
  it('acknowledges what was delivered although a delivered-listener throws on every event', async () => {
    const sink = new MemorySink();
    sink.respond = () => ({ ok: true });
    const h = harness(sink);
    h.lifecycle.on('delivery:delivered', () => {
      throw new Error('metrics exploded');
    });
    for (let i = 1; i <= 5; i++) h.engine.change(change(`k${i}`, i, 100n, i));
    h.engine.commit(100n);
    await until('the commit acknowledged', () => lastAck(h) === 100n);
    expect(h.engine.stats()).to.include({ buffered: 0, inFlight: 0 });
    expect(h.lifecycle.listenerErrors).to.equal(5);
  });
});
