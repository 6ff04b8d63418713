import { expect } from 'chai';
import { DeliveryError } from '../../../../src/errors';
import { parseRateLimit, RateLimiter } from '../../../../src/routing/triggers/rate-limit';
import type { Timers } from '../../../../src/sinks/support/deadline';

/** A clock the test moves: timers fire only in advance(), in time order. */
class FakeClock implements Timers {
  private t = 0;
  private pending: { at: number; fn: () => void; id: number }[] = [];
  private ids = 0;
  set(fn: () => void, ms: number): unknown {
    const id = ++this.ids;
    this.pending.push({ at: this.t + ms, fn, id });
    return id;
  }
  clear(handle: unknown): void {
    this.pending = this.pending.filter((p) => p.id !== handle);
  }
  now(): number {
    return this.t;
  }
  get timers(): number {
    return this.pending.length;
  }
  async advance(ms: number): Promise<void> {
    const until = this.t + ms;
    for (;;) {
      await flush();
      const due = this.pending.filter((p) => p.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.pending = this.pending.filter((p) => p !== due);
      this.t = due.at;
      due.fn();
    }
    this.t = until;
    await flush();
  }
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('routing/triggers rateLimit: a sliding window, waiting (never dropping), on an injected clock', () => {
  it('parses N/s and N/m; anything else is undefined', () => {
    expect(parseRateLimit('50/s')).to.deep.equal({ count: 50, perMs: 1000, text: '50/s' });
    expect(parseRateLimit('10/m')).to.deep.equal({ count: 10, perMs: 60_000, text: '10/m' });
    for (const bad of ['0/s', '5/h', '5', 's/5', '-1/s', '1.5/s']) expect(parseRateLimit(bad), bad).to.equal(undefined);
  });

  it('lets N through at once, then each next one when the oldest of the last N is a window old', async () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter(parseRateLimit('2/s')!, clock);
    const passedAt: number[] = [];
    const takes = [0, 1, 2, 3, 4].map(() => limiter.take().then(() => passedAt.push(clock.now())));
    await clock.advance(0);
    expect(passedAt).to.deep.equal([0, 0]);
    expect(limiter.queued).to.equal(3);
    await clock.advance(999);
    expect(passedAt, 'nothing before the window is over').to.deep.equal([0, 0]);
    await clock.advance(1);
    expect(passedAt).to.deep.equal([0, 0, 1000, 1000]);
    await clock.advance(1000);
    await Promise.all(takes);
    expect(passedAt).to.deep.equal([0, 0, 1000, 1000, 2000]);
    // No window of a second ever held more than 2.
    for (const start of passedAt) expect(passedAt.filter((t) => t >= start && t < start + 1000).length).to.be.at.most(2);
  });

  it('spaces per minute, first come first served, and frees a slot a window after each send', async () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter(parseRateLimit('1/m')!, clock);
    const order: string[] = [];
    await limiter.take();
    await clock.advance(30_000);
    const a = limiter.take().then(() => order.push(`a@${clock.now()}`));
    const b = limiter.take().then(() => order.push(`b@${clock.now()}`));
    await clock.advance(29_999);
    expect(order).to.deep.equal([]);
    await clock.advance(1);
    expect(order).to.deep.equal(['a@60000']);
    await clock.advance(60_000);
    await Promise.all([a, b]);
    expect(order).to.deep.equal(['a@60000', 'b@120000']);
  });

  it('close fails the waiting sends retriably and leaves no timer behind', async () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter(parseRateLimit('1/s')!, clock);
    await limiter.take();
    const waiting = limiter.take();
    await clock.advance(10);
    expect(clock.timers).to.equal(1);
    limiter.close();
    const err = await waiting.then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(DeliveryError);
    expect((err as DeliveryError).retriable).to.equal(true);
    expect(clock.timers).to.equal(0);
    expect(await limiter.take().then(() => 'taken', () => 'refused')).to.equal('refused');
  });
});
