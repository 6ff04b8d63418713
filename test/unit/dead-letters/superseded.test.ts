import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import { SupersededTracker } from '../../../src/delivery/dead-letters/superseded';
import { Lifecycle } from '../../../src/lifecycle';

const seq = (n: number) => `00000000016B3748-${String(n).padStart(8, '0')}`;
const at = (key: string, n: number) =>
  new CloudEvent({ id: seq(n), source: '/s', type: 't', sequence: seq(n), partitionkey: key });

/**
 * A scripted store (the real one is exercised in test/integration/dead-letters.test.ts): each
 * markSuperseded call waits until the test answers it, so interleavings can be forced.
 */
function scriptedStore(keys: string[]) {
  const calls: { key: string; destination: string; sequence: string; answer(remaining: boolean): void }[] = [];
  let arrived: (() => void) | undefined;
  return {
    calls,
    /** Resolves once `n` calls were made. */
    async callCount(n: number): Promise<void> {
      while (calls.length < n) await new Promise<void>((resolve) => (arrived = resolve));
    },
    store: {
      tableName: 's.t',
      partitionKeys: async () => keys.map((partitionKey) => ({ destination: 'default', partitionKey })),
      markSuperseded: (at: { destination: string; partitionKey: string }, sequence: string) =>
        new Promise<{ marked: number; remaining: boolean }>((resolve) => {
          calls.push({ key: at.partitionKey, destination: at.destination, sequence, answer: (remaining) => resolve({ marked: 1, remaining }) });
          arrived?.();
        }),
    },
  };
}

describe('dead-letters/superseded (scripted store)', () => {
  function setUp(keys: string[]) {
    const scripted = scriptedStore(keys);
    const lifecycle = new Lifecycle();
    const tracker = new SupersededTracker(scripted.store);
    tracker.subscribe(lifecycle);
    const delivered = (e: CloudEvent<unknown>, destination = 'default') =>
      lifecycle.emit('delivery:delivered', { event: e, destination, attempts: 1, latencyMs: 1, commitTime: new Date() });
    return { ...scripted, lifecycle, tracker, delivered };
  }

  it('one UPDATE per key at a time; deliveries meanwhile collapse into the newest sequence', async () => {
    const { calls, callCount, tracker, lifecycle, delivered } = setUp(['k']);
    lifecycle.emit('capture:connected', { slot: 's', publication: 'p', startLsn: 0n });
    await tracker.idle();
    delivered(at('k', 5));
    await callCount(1);
    delivered(at('k', 7));
    delivered(at('k', 9));
    delivered(at('k', 8));
    delivered(at('other', 10));
    expect(calls).to.have.length(1);
    calls[0].answer(true);
    await callCount(2);
    expect(calls.map((c) => c.sequence)).to.deep.equal([seq(5), seq(9)]);
    calls[1].answer(true);
    await tracker.idle();
    expect(calls).to.have.length(2);
    tracker.unsubscribe();
  });

  it('only a delivery to the dead letter\'s own destination supersedes it: another destination\'s newer event of the row does not', async () => {
    const { calls, callCount, tracker, delivered } = setUp(['k']);
    await tracker.load();
    delivered(at('k', 5), 'trigger:big-sale/0');
    await tracker.idle();
    expect(calls, 'a trigger action delivered the row\'s newer state: the default destination\'s dead letter is not superseded').to.have.length(0);
    tracker.watch(at('k', 6), 'trigger:big-sale/0');
    delivered(at('k', 7), 'trigger:big-sale/0');
    await callCount(1);
    expect(calls.map((c) => [c.destination, c.key, c.sequence])).to.deep.equal([['trigger:big-sale/0', 'k', seq(7)]]);
    calls[0].answer(true);
    delivered(at('k', 8));
    await callCount(2);
    expect(calls[1]).to.include({ destination: 'default', key: 'k', sequence: seq(8) });
    calls[1].answer(true);
    await tracker.idle();
    tracker.unsubscribe();
  });

  it('a key whose rows are gone is dropped, unless a new dead letter of it was stored meanwhile', async () => {
    const { calls, callCount, tracker, delivered } = setUp(['k']);
    await tracker.load();
    delivered(at('k', 5));
    await callCount(1);
    tracker.watch(at('k', 6), 'default'); // stored while the UPDATE that will find no rows was running
    calls[0].answer(false);
    await tracker.idle();
    delivered(at('k', 7));
    await callCount(2);
    calls[1].answer(false);
    await tracker.idle();
    delivered(at('k', 8)); // no rows, nothing stored since: no longer watched
    await tracker.idle();
    expect(calls.map((c) => c.sequence)).to.deep.equal([seq(5), seq(7)]);
    tracker.unsubscribe();
  });
});
