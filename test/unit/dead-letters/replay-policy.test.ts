import { expect } from 'chai';
import { REPLAY_DEFAULT_RETRY, REPLAY_MAX_WAIT_MS, replayPolicy } from '../../../src/cli/dead-letters-replay';
import { loadConfig } from '../../../src/config/load';
import { waitBefore } from '../../../src/delivery/deliver';
import { DeliveryError } from '../../../src/errors';

const ENV = { DATABASE_URL: 'postgres://app@127.0.0.1:5432/app', PG_CLOUDEVENTS_TABLES: 'public.orders' };

describe('dead-letters replay policy', () => {
  it('bounded retries and waits capped, whatever backoffMax and Retry-After say; the configured backoff otherwise', () => {
    const base = loadConfig({ env: ENV }).delivery;
    expect(base.retry).to.equal(undefined); // the default for `run`: retry forever
    const slow = { ...base, backoffDelayMs: 1_000, backoffMaxMs: 600_000, retryAfterMaxMs: undefined };
    const policy = replayPolicy(slow, REPLAY_DEFAULT_RETRY);
    expect(policy.retry).to.equal(3);
    const unavailable = new DeliveryError('sink answered 503', { status: 503, retriable: true, retryAfterMs: 3_600_000 });
    expect(waitBefore(policy, 1, unavailable)).to.equal(REPLAY_MAX_WAIT_MS);
    expect(waitBefore(policy, 20, new DeliveryError('down', { retriable: true }))).to.equal(REPLAY_MAX_WAIT_MS);
    // Below the cap the configured backoff is kept.
    expect(waitBefore(policy, 1, new DeliveryError('down', { retriable: true }))).to.equal(1_000);
    const fast = replayPolicy({ ...base, backoffMaxMs: 500, retryAfterMaxMs: 0 }, 7);
    expect(fast).to.include({ retry: 7, backoffMaxMs: 500, retryAfterMaxMs: 0 });
  });
});
