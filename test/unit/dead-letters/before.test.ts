import { expect } from 'chai';
import { parseBefore } from '../../../src/delivery/dead-letters/before';

describe('dead-letters/before (purge --before)', () => {
  const now = new Date('2024-05-10T12:00:00.000Z');

  it('a duration means older than now minus it', () => {
    expect(parseBefore('P7D', now).toISOString()).to.equal('2024-05-03T12:00:00.000Z');
    expect(parseBefore('PT1H30M', now).toISOString()).to.equal('2024-05-10T10:30:00.000Z');
  });

  it('a timestamp with a zone, or a date (UTC midnight)', () => {
    expect(parseBefore('2024-05-01T08:00:00Z', now).toISOString()).to.equal('2024-05-01T08:00:00.000Z');
    expect(parseBefore('2024-05-01T08:00:00+02:00', now).toISOString()).to.equal('2024-05-01T06:00:00.000Z');
    expect(parseBefore('2024-05-01', now).toISOString()).to.equal('2024-05-01T00:00:00.000Z');
  });

  it('refuses a time without a zone, nonsense and months', () => {
    expect(() => parseBefore('2024-05-01T08:00:00', now)).to.throw(/--before/);
    expect(() => parseBefore('yesterday', now)).to.throw(/neither an ISO 8601 timestamp/);
    expect(() => parseBefore('P1M', now)).to.throw(/--before: .*not an ISO 8601 duration/);
  });
});
