import { expect } from 'chai';
import { honoursRetryAfter, parseRetryAfter } from '../../../../src/sinks/http/retry-after';

describe('sinks/http/retry-after (RFC 9110 §10.2.3)', () => {
  const now = Date.UTC(2024, 0, 1, 12, 0, 0);

  it('reads delta-seconds', () => {
    expect(parseRetryAfter('0', now)).to.equal(0);
    expect(parseRetryAfter('120', now)).to.equal(120_000);
    expect(parseRetryAfter(' 3 ', now)).to.equal(3000);
    expect(parseRetryAfter(['7', '9'], now)).to.equal(7000);
  });

  it('reads an HTTP-date relative to now, and a past date as 0', () => {
    expect(parseRetryAfter('Mon, 01 Jan 2024 12:00:30 GMT', now)).to.equal(30_000);
    expect(parseRetryAfter('Monday, 01-Jan-24 12:01:00 GMT', now)).to.equal(60_000); // RFC 850 form
    expect(parseRetryAfter('Mon Jan  1 12:00:05 2024', now)).to.equal(5000); // asctime form
    expect(parseRetryAfter('Sun, 31 Dec 2023 12:00:00 GMT', now)).to.equal(0);
  });

  it('returns undefined for garbage', () => {
    for (const bad of [undefined, '', 'soon', '-5', '1.5', '10s', 'Mon, 99 Foo 2024 GMT', '2024-01-01T12:00:00Z']) {
      expect(parseRetryAfter(bad, now), String(bad)).to.equal(undefined);
    }
  });

  it('is honoured on 429 and 503 only', () => {
    expect(honoursRetryAfter(429)).to.equal(true);
    expect(honoursRetryAfter(503)).to.equal(true);
    expect(honoursRetryAfter(500)).to.equal(false);
    expect(honoursRetryAfter(404)).to.equal(false);
  });

});
