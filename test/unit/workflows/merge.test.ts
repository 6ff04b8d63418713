import { expect } from 'chai';
import { RawJson } from '../../../src/events/json-text';
import { mergeRecursive } from '../../../src/workflows/merge';

describe('workflows: mergeRecursive (a run payload is the inputs merged over withParams)', () => {
  const cases: { title: string; lower: Record<string, unknown>; upper: Record<string, unknown>; want: Record<string, unknown> }[] = [
    {
      title: 'nested objects merge key by key, the upper side wins',
      lower: { paid: { name: 'observations', status: 'clone', deep: { a: 1, b: 2 } } },
      upper: { paid: { name: 'Dolly', greeting: 'Hello', deep: { b: 3 } } },
      want: { paid: { name: 'Dolly', status: 'clone', greeting: 'Hello', deep: { a: 1, b: 3 } } },
    },
    { title: 'arrays are replaced, not concatenated', lower: { tags: ['a', 'b'] }, upper: { tags: ['c'] }, want: { tags: ['c'] } },
    { title: 'scalars are replaced', lower: { n: 1, s: 'x' }, upper: { n: 2 }, want: { n: 2, s: 'x' } },
    { title: 'an object replaces a scalar below it', lower: { paid: 'replaced' }, upper: { paid: {} }, want: { paid: {} } },
    { title: 'a scalar replaces an object below it', lower: { paid: { a: 1 } }, upper: { paid: null }, want: { paid: null } },
    { title: 'keys only below are kept (withParams adds)', lower: { carrier: { name: 'dhl' } }, upper: { paid: { id: 1 } }, want: { carrier: { name: 'dhl' }, paid: { id: 1 } } },
  ];
  for (const c of cases) {
    it(c.title, () => {
      expect(mergeRecursive(c.lower, c.upper)).to.deep.equal(c.want);
    });
  }

  it('changes neither argument', () => {
    const lower = { a: { b: 1 } };
    const upper = { a: { c: 2 } };
    const merged = mergeRecursive(lower, upper);
    (merged.a as Record<string, unknown>).d = 3;
    expect(lower).to.deep.equal({ a: { b: 1 } });
    expect(upper).to.deep.equal({ a: { c: 2 } });
  });

  it('an exact number (RawJson) is a value, not an object to merge into', () => {
    const exact = new RawJson('12345678901234567890');
    const merged = mergeRecursive({ amount: { currency: 'EUR' } }, { amount: exact });
    expect(merged.amount).to.equal(exact);
  });

  it('a __proto__ key from row data stays an ordinary key', () => {
    const upper = JSON.parse('{"__proto__": {"polluted": true}}') as Record<string, unknown>;
    const merged = mergeRecursive({}, upper);
    expect(Object.keys(merged)).to.deep.equal(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    expect((merged as { polluted?: unknown }).polluted).to.equal(undefined);
  });
});
