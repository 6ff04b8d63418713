import { expect } from 'chai';
import { backoffDelay, cappedRetryAfter } from '../../../src/delivery/backoff';

describe('delivery/backoff (Knative backoffPolicy through the retrier)', () => {
  const exponential = { backoffPolicy: 'exponential' as const, backoffDelayMs: 200, backoffMaxMs: 30_000 };
  const linear = { backoffPolicy: 'linear' as const, backoffDelayMs: 200, backoffMaxMs: 1000 };

  it('exponential: backoffDelay, then doubling, capped at backoffMax (the default sequence)', () => {
    const seq = Array.from({ length: 11 }, (_, i) => backoffDelay(exponential, i + 1));
    expect(seq).to.deep.equal([200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000, 30_000]);
  });

  it('linear: backoffDelay × retry number, capped', () => {
    const seq = Array.from({ length: 7 }, (_, i) => backoffDelay(linear, i + 1));
    expect(seq).to.deep.equal([200, 400, 600, 800, 1000, 1000, 1000]);
  });

  it('does not overflow for very many retries', () => {
    expect(backoffDelay(exponential, 10_000)).to.equal(30_000);
  });

  it('jitter stays within ±20% and under the cap, deterministic for a given random', () => {
    expect(backoffDelay(exponential, 3, () => 0)).to.equal(640);
    expect(backoffDelay(exponential, 3, () => 1)).to.equal(960);
    expect(backoffDelay(exponential, 3, () => 0.5)).to.equal(800);
    expect(backoffDelay(exponential, 20, () => 1)).to.equal(30_000);
    expect(backoffDelay(exponential, 20, () => 0)).to.equal(24_000);
  });

  it('a sink\'s Retry-After is capped by retryAfterMax; PT0S turns it off', () => {
    expect(cappedRetryAfter(60_000, undefined)).to.equal(60_000);
    expect(cappedRetryAfter(60_000, 2000)).to.equal(2000);
    expect(cappedRetryAfter(1000, 2000)).to.equal(1000);
    expect(cappedRetryAfter(60_000, 0)).to.equal(0);
    expect(cappedRetryAfter(undefined, 2000)).to.equal(undefined);
  });
});
