import { expect } from 'chai';
import { effectiveTimeout } from '../../../../src/routing/triggers/limits';

describe('trigger limits: effectiveTimeout', () => {
  it('is the smaller of the action timeout and the maximum', () => {
    expect(effectiveTimeout(5000, 10000)).to.equal(5000);
    expect(effectiveTimeout(15000, 10000)).to.equal(10000);
    expect(effectiveTimeout(10000, 10000)).to.equal(10000);
  });

  it('is whichever is set when only one is, and undefined when neither is', () => {
    expect(effectiveTimeout(5000, undefined)).to.equal(5000);
    expect(effectiveTimeout(undefined, 10000)).to.equal(10000);
    expect(effectiveTimeout()).to.equal(undefined);
  });

  it('keeps a zero as a value, not as absent', () => {
    expect(effectiveTimeout(0, 10000)).to.equal(0);
    expect(effectiveTimeout(5000, 0)).to.equal(0);
  });
});
