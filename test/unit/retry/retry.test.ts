import { expect } from 'chai';
import { Backoff, backoffDelay, retry, sleep, type BackoffPolicy, type RetryFailure } from '../../../src/retry';

const EXPONENTIAL: BackoffPolicy = { kind: 'exponential', delayMs: 200, maxMs: 30_000 };

/** A sleep that records the waits and returns at once (rejecting like the real one on abort). */
function recordingSleep() {
  const waits: number[] = [];
  const fn = async (ms: number, signal?: AbortSignal) => {
    if (signal?.aborted) throw signal.reason;
    waits.push(ms);
  };
  return { waits, fn };
}

class Flagged extends Error {
  constructor(message: string, readonly retriable: boolean) {
    super(message);
  }
}

describe('retry: the one retrier', () => {
  describe('backoffDelay', () => {
    it('exponential from the delay, capped: 0.2, 0.4, 0.8 … 25.6, 30, 30 s', () => {
      const seq = Array.from({ length: 10 }, (_, i) => backoffDelay(EXPONENTIAL, i + 1));
      expect(seq).to.deep.equal([200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]);
    });

    it('linear counts retries from 1, so the first retry is never immediate', () => {
      const seq = [1, 2, 3].map((n) => backoffDelay({ kind: 'linear', delayMs: 200, maxMs: 500 }, n));
      expect(seq).to.deep.equal([200, 400, 500]);
    });

    it('jitter stays within ±20 % and under the cap', () => {
      expect(backoffDelay(EXPONENTIAL, 1, () => 0)).to.equal(160);
      expect(backoffDelay(EXPONENTIAL, 1, () => 1)).to.equal(240);
      expect(backoffDelay(EXPONENTIAL, 20, () => 1)).to.equal(30_000);
    });
  });

  it('Backoff walks the sequence and starts over after reset()', () => {
    const b = new Backoff({ kind: 'exponential', delayMs: 1000, maxMs: 4000 });
    expect([b.next(), b.next(), b.next(), b.next()]).to.deep.equal([1000, 2000, 4000, 4000]);
    b.reset();
    expect(b.next()).to.equal(1000);
  });

  it('retries retriable failures with the backoff between attempts, then resolves', async () => {
    const sleepRec = recordingSleep();
    const failures: RetryFailure[] = [];
    let calls = 0;
    const result = await retry(async (attempt) => {
      calls++;
      if (attempt < 3) throw new Flagged('down', true);
      return 'ok';
    }, { policy: EXPONENTIAL, sleep: sleepRec.fn, onFailure: (f) => failures.push(f) });
    expect(result).to.equal('ok');
    expect(calls).to.equal(3);
    expect(sleepRec.waits).to.deep.equal([200, 400]);
    expect(failures.map((f) => [f.attempt, f.willRetry, f.retryInMs])).to.deep.equal([[1, true, 200], [2, true, 400]]);
  });

  it('a final error is thrown at once, with the number of attempts on it', async () => {
    const sleepRec = recordingSleep();
    const err = await retry(async () => {
      throw new Flagged('bad request', false);
    }, { policy: EXPONENTIAL, sleep: sleepRec.fn }).catch((e) => e);
    expect(err).to.be.instanceOf(Flagged);
    expect(err.attempts).to.equal(1);
    expect(sleepRec.waits).to.deep.equal([]);
  });

  it('stops after `retries` retries and throws the last error', async () => {
    const sleepRec = recordingSleep();
    let calls = 0;
    const err = await retry(async () => {
      calls++;
      throw new Error(`attempt ${calls}`);
    }, { policy: EXPONENTIAL, retries: 2, sleep: sleepRec.fn }).catch((e) => e);
    expect(calls).to.equal(3);
    expect(err.message).to.equal('attempt 3');
    expect(err.attempts).to.equal(3);
  });

  it('waitMs can lengthen the wait (Retry-After) and `retriable` can override the flag', async () => {
    const sleepRec = recordingSleep();
    let calls = 0;
    await retry(async () => {
      if (++calls === 1) throw new Flagged('overloaded', false);
    }, {
      policy: EXPONENTIAL,
      sleep: sleepRec.fn,
      retriable: () => true,
      waitMs: (backoff) => Math.max(backoff, 5000),
    });
    expect(sleepRec.waits).to.deep.equal([5000]);
  });

  it('an abort during the wait rejects with the reason and makes no further attempt (real timer)', async () => {
    const controller = new AbortController();
    let calls = 0;
    const pending = retry(async () => {
      calls++;
      throw new Error('down');
    }, { policy: { kind: 'exponential', delayMs: 60_000, maxMs: 60_000 }, signal: controller.signal });
    setImmediate(() => controller.abort(new Error('shutting down')));
    const err = await pending.catch((e) => e);
    expect(err.message).to.equal('shutting down');
    expect(calls).to.equal(1);
  });

  it('sleep resolves after the time and rejects at once when already aborted', async () => {
    await sleep(1);
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    const err = await sleep(10_000, controller.signal).catch((e) => e);
    expect(err.message).to.equal('gone');
  });
});
