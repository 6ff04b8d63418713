import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import type { DeliveryConfig } from '../../../src/config/types';
import { deliverWithRetry, type AttemptFailure } from '../../../src/delivery/deliver';
import { DeliveryError, ErrorCodes, PgceError } from '../../../src/errors';
import type { Sink } from '../../../src/sinks/types';

type Outcome = 'ok' | Error;

/** A sink that plays a script of outcomes, then keeps repeating the last one. */
function scriptedSink(script: Outcome[]): Sink & { calls: number } {
  const sink = {
    name: 'scripted',
    calls: 0,
    async send() {
      const outcome = script[Math.min(sink.calls, script.length - 1)];
      sink.calls++;
      if (outcome !== 'ok') throw outcome;
    },
    async close() {},
    describe: () => 'scripted',
  };
  return sink;
}

const unavailable = () => new DeliveryError('sink answered 503 Service Unavailable', { status: 503, retriable: true });
const badRequest = () => new DeliveryError('sink answered 400 Bad Request', { status: 400, retriable: false });

const policy = (over: Partial<DeliveryConfig> = {}): DeliveryConfig => ({
  backoffPolicy: 'exponential',
  backoffDelayMs: 100,
  backoffMaxMs: 1000,
  timeoutMs: 1000,
  maxInFlight: 1,
  maxBufferBytes: 1 << 26,
  ...over,
});

const event = new CloudEvent({ id: '1', source: '/test', type: 'test.event', data: { a: 1 } });

/** Records the waits instead of sleeping. */
function recordingSleep(): { waits: number[]; sleep: (ms: number) => Promise<void> } {
  const waits: number[] = [];
  return { waits, sleep: async (ms: number) => void waits.push(ms) };
}

describe('delivery/deliverWithRetry', () => {
  it('retries 503, 503 then succeeds: attempts 3, waits follow the backoff', async () => {
    const sink = scriptedSink([unavailable(), unavailable(), 'ok']);
    const { waits, sleep } = recordingSleep();
    const failures: AttemptFailure[] = [];
    const result = await deliverWithRetry(sink, event, policy(), { sleep, onAttemptFailed: (f) => failures.push(f) });
    expect(result).to.deep.equal({ attempts: 3 });
    expect(sink.calls).to.equal(3);
    expect(waits).to.deep.equal([100, 200]);
    expect(failures.map((f) => [f.attempt, f.willRetry, f.retryInMs, f.error.status])).to.deep.equal([
      [1, true, 100, 503],
      [2, true, 200, 503],
    ]);
  });

  it('gives up after `retry` retries and throws the last error with the attempt count', async () => {
    const sink = scriptedSink([unavailable()]);
    const { waits, sleep } = recordingSleep();
    const failures: AttemptFailure[] = [];
    const err = await deliverWithRetry(sink, event, policy({ retry: 2 }), { sleep, onAttemptFailed: (f) => failures.push(f) })
      .then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(DeliveryError);
    expect((err as DeliveryError).status).to.equal(503);
    expect((err as { attempts: number }).attempts).to.equal(3);
    expect(sink.calls).to.equal(3);
    expect(waits).to.have.length(2);
    expect(failures.map((f) => f.willRetry)).to.deep.equal([true, true, false]);
    expect(failures[2].retryInMs).to.equal(undefined);
  });

  it('retry: 0 makes exactly one attempt', async () => {
    const sink = scriptedSink([unavailable()]);
    const { sleep } = recordingSleep();
    await deliverWithRetry(sink, event, policy({ retry: 0 }), { sleep }).catch(() => undefined);
    expect(sink.calls).to.equal(1);
  });

  it('a final answer is not retried', async () => {
    const sink = scriptedSink([badRequest(), 'ok']);
    const { waits, sleep } = recordingSleep();
    const err = await deliverWithRetry(sink, event, policy(), { sleep }).then(() => undefined, (e: unknown) => e);
    expect((err as DeliveryError).status).to.equal(400);
    expect((err as DeliveryError).code).to.equal(ErrorCodes.SINK_FINAL);
    expect(sink.calls).to.equal(1);
    expect(waits).to.deep.equal([]);
  });

  it('retry undefined keeps retrying (nothing is dropped)', async () => {
    const script: Outcome[] = [...Array.from({ length: 25 }, unavailable), 'ok'];
    const sink = scriptedSink(script);
    const { waits, sleep } = recordingSleep();
    const result = await deliverWithRetry(sink, event, policy(), { sleep });
    expect(result.attempts).to.equal(26);
    expect(waits).to.have.length(25);
    expect(Math.max(...waits)).to.equal(1000); // capped at backoffMax
  });

  it('waits max(backoff, Retry-After), the Retry-After capped by retryAfterMax', async () => {
    const asked = () => new DeliveryError('429', { status: 429, retriable: true, retryAfterMs: 5000 });
    const small = () => new DeliveryError('503', { status: 503, retriable: true, retryAfterMs: 10 });
    const { waits, sleep } = recordingSleep();
    await deliverWithRetry(scriptedSink([asked(), small(), 'ok']), event, policy(), { sleep });
    expect(waits).to.deep.equal([5000, 200]);

    const capped = recordingSleep();
    await deliverWithRetry(scriptedSink([asked(), 'ok']), event, policy({ retryAfterMaxMs: 700 }), { sleep: capped.sleep });
    expect(capped.waits).to.deep.equal([700]);

    const off = recordingSleep();
    await deliverWithRetry(scriptedSink([asked(), 'ok']), event, policy({ retryAfterMaxMs: 0 }), { sleep: off.sleep });
    expect(off.waits).to.deep.equal([100]);
  });

  it('a plain Error from a handler is retried; a non-retriable PgceError keeps its code and is final', async () => {
    const { sleep } = recordingSleep();
    const plain = scriptedSink([new Error('boom'), 'ok']);
    expect(await deliverWithRetry(plain, event, policy(), { sleep })).to.deep.equal({ attempts: 2 });

    const config = scriptedSink([new PgceError(ErrorCodes.SINK_CONFIG, 'bad topic'), 'ok']);
    const err = await deliverWithRetry(config, event, policy(), { sleep }).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(DeliveryError);
    expect((err as DeliveryError).code).to.equal(ErrorCodes.SINK_CONFIG);
    expect((err as DeliveryError).message).to.equal('bad topic');
    expect(config.calls).to.equal(1);
  });

  it('abort during a (real) wait stops promptly with an AbortError and no further attempt', async () => {
    const sink = scriptedSink([unavailable()]);
    const ac = new AbortController();
    const started = Date.now();
    setTimeout(() => ac.abort(), 50);
    const err = await deliverWithRetry(sink, event, policy({ backoffDelayMs: 10_000, backoffMaxMs: 10_000 }), { signal: ac.signal })
      .then(() => undefined, (e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(err).to.be.instanceOf(PgceError);
    expect((err as Error).name).to.equal('AbortError');
    expect((err as PgceError).cause).to.be.instanceOf(DeliveryError);
    expect(elapsed).to.be.lessThan(2000);
    expect(sink.calls).to.equal(1);
  });

  it('an already aborted signal sends nothing', async () => {
    const sink = scriptedSink(['ok']);
    const ac = new AbortController();
    ac.abort();
    const err = await deliverWithRetry(sink, event, policy(), { signal: ac.signal }).then(() => undefined, (e: unknown) => e);
    expect((err as Error).name).to.equal('AbortError');
    expect(sink.calls).to.equal(0);
  });

  it('a sink that stays down is retried on real timers, not in a tight loop', async () => {
    const sink = scriptedSink([unavailable()]);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 400);
    await deliverWithRetry(sink, event, policy({ backoffDelayMs: 20, backoffMaxMs: 80 }), { signal: ac.signal }).catch(() => undefined);
    // 20+40+80+80+80 ≈ 300 ms: about 6 attempts in 400 ms; a spinning loop would make thousands.
    expect(sink.calls).to.be.within(3, 10);
  });
});
