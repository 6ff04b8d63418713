import { expect } from 'chai';
import { AckNode, AckTracker } from '../../../src/delivery/ack-tracker';
import { seeded } from './engine-harness';

function tracker() {
  const acks: { lsn: bigint; idle: boolean }[] = [];
  const t = new AckTracker((lsn, idle) => acks.push({ lsn, idle }));
  const add = () => {
    const n = new AckNode();
    t.track(n);
    return n;
  };
  return { t, acks, add, lsns: () => acks.map((a) => a.lsn) };
}

describe('AckTracker', () => {
  it('acknowledges a marker at once when nothing before it is undone, and says idle', () => {
    const { t, acks } = tracker();
    t.mark(10n);
    expect(acks).to.deep.equal([{ lsn: 10n, idle: true }]);
  });

  it('holds a commit until every change before it is done, whatever the completion order', () => {
    const { t, add, lsns, acks } = tracker();
    const a = add();
    const b = add();
    const c = add();
    t.mark(100n);
    t.done(c);
    t.done(b);
    expect(lsns(), 'a is still undone').to.deep.equal([]);
    t.done(a);
    expect(acks).to.deep.equal([{ lsn: 100n, idle: true }]);
  });

  it('never acknowledges past an undone change: a stuck change holds later commits, then the ack jumps', () => {
    const { t, add, lsns } = tracker();
    const first = add();
    t.mark(100n);
    const stuck = add();
    t.mark(200n);
    const later: AckNode[] = [];
    for (let i = 0; i < 5; i++) {
      later.push(add());
      t.mark(BigInt(300 + i * 100));
    }
    for (const n of later) t.done(n);
    t.done(first);
    expect(lsns(), 'only the transaction before the stuck change').to.deep.equal([100n]);
    t.done(stuck);
    expect(lsns(), 'jumps to the newest marker once the stuck change is done').to.deep.equal([100n, 700n]);
  });

  it('reports idle only when no undone change is left after the acknowledged marker', () => {
    const { t, add, acks } = tracker();
    const a = add();
    t.mark(10n);
    const b = add();
    t.done(a);
    expect(acks).to.deep.equal([{ lsn: 10n, idle: false }]);
    t.mark(20n);
    t.done(b);
    expect(acks[1]).to.deep.equal({ lsn: 20n, idle: true });
  });

  it('never moves backwards (a keepalive position below an acknowledged commit is ignored)', () => {
    const { t, add, lsns } = tracker();
    t.mark(500n);
    t.mark(400n);
    const a = add();
    t.mark(450n);
    t.done(a);
    t.mark(600n);
    expect(lsns()).to.deep.equal([500n, 600n]);
  });

  it('ignores a second done() and a done() after clear(); clear() keeps the acknowledged floor', () => {
    const { t, add, lsns } = tracker();
    t.mark(3n);
    const a = add();
    const b = add();
    t.mark(10n);
    t.done(a);
    t.done(a);
    expect(t.pending).to.equal(1);
    t.clear();
    expect([t.pending, t.markers]).to.deep.equal([0, 0]);
    t.done(b);
    expect(lsns()).to.deep.equal([3n]);
    t.mark(2n);
    t.mark(11n);
    expect(lsns(), 'nothing at or below an earlier acknowledgement is repeated').to.deep.equal([3n, 11n]);
  });

  it('matches a brute-force model under random interleavings', () => {
    const random = seeded(7);
    for (let run = 0; run < 50; run++) {
      const { t, add, lsns } = tracker();
      // Model: items in arrival order, each a change (done flag) or a marker.
      const model: ({ node: AckNode; done: boolean } | { lsn: bigint })[] = [];
      const open: { node: AckNode; done: boolean }[] = [];
      let lsn = 0n;
      const expected: bigint[] = [];
      const check = () => {
        let best: bigint | undefined;
        for (const item of model) {
          if ('node' in item) {
            if (!item.done) break;
          } else best = item.lsn;
        }
        if (best !== undefined && best !== expected[expected.length - 1]) expected.push(best);
        expect(lsns()).to.deep.equal(expected);
      };
      for (let step = 0; step < 300; step++) {
        const r = random();
        if (r < 0.45) {
          const item = { node: add(), done: false };
          model.push(item);
          open.push(item);
        } else if (r < 0.65) {
          lsn += BigInt(1 + Math.floor(random() * 10));
          model.push({ lsn });
          t.mark(lsn);
        } else if (open.length) {
          const item = open.splice(Math.floor(random() * open.length), 1)[0];
          item.done = true;
          t.done(item.node);
        }
        check();
        expect(t.pending).to.equal(open.length);
        expect(t.markers).to.be.at.most(open.length);
      }
    }
  });

  it('streams 1,000,000 changes of one transaction with internal structures bounded by the undone ones', () => {
    const { t, lsns } = tracker();
    const window: AckNode[] = [];
    let maxPending = 0;
    // Changes arrive in chunks and finish (out of order within the chunk) before the next chunk,
    // as the engine's backpressure makes them; the transaction commits only at the end.
    const CHUNK = 1000;
    for (let i = 0; i < 1_000_000; i += CHUNK) {
      for (let j = 0; j < CHUNK; j++) {
        const n = new AckNode();
        t.track(n);
        window.push(n);
      }
      maxPending = Math.max(maxPending, t.pending);
      for (let j = window.length - 1; j >= 0; j--) t.done(window[j]);
      window.length = 0;
      expect(t.pending).to.equal(0);
    }
    t.mark(0x1_0000_0000n);
    expect(maxPending).to.equal(CHUNK);
    expect(lsns()).to.deep.equal([0x1_0000_0000n]);
  });

  it('keeps one marker, not one per transaction, behind a stuck change while 1,000,000 later changes finish', () => {
    const { t, lsns } = tracker();
    const stuck = new AckNode();
    t.track(stuck);
    t.mark(1n);
    for (let i = 0; i < 1_000_000; i++) {
      const n = new AckNode();
      t.track(n);
      t.mark(BigInt(i + 2));
      t.done(n);
      if (i % 100_000 === 0) expect([t.pending, t.markers], `after ${i}`).to.deep.equal([1, 1]);
    }
    expect(lsns(), 'nothing past the stuck change').to.deep.equal([]);
    expect(t.oldest()).to.equal(stuck);
    t.done(stuck);
    expect(lsns()).to.deep.equal([1_000_001n]);
    expect([t.pending, t.markers]).to.deep.equal([0, 0]);
  });

  it('shrinks as changes complete: pending and markers fall back to zero', () => {
    const { t } = tracker();
    const nodes: AckNode[] = [];
    for (let i = 0; i < 10_000; i++) {
      const n = new AckNode();
      t.track(n);
      nodes.push(n);
      if (i % 10 === 9) t.mark(BigInt(i));
    }
    expect([t.pending, t.markers]).to.deep.equal([10_000, 1000]);
    // Finish the even ones first: markers merge into the undone predecessors.
    for (let i = 0; i < nodes.length; i += 2) t.done(nodes[i]);
    expect(t.pending).to.equal(5000);
    expect(t.markers).to.be.at.most(1000);
    for (let i = 1; i < nodes.length; i += 2) t.done(nodes[i]);
    expect([t.pending, t.markers]).to.deep.equal([0, 0]);
  });
});
