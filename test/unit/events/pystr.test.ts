import { expect } from 'chai';
import { pyBytesRepr, pyFloat, pyStr, pyStrRepr } from '../../../src/events/pystr';

// Every expected value below is what CPython 3 prints for the equivalent Python value.
describe('events/pystr (Python str() for the django format)', () => {
  it('floats: repr digits and switch to exponent form where Python does', () => {
    const cases: Array<[number, string]> = [
      [1, '1.0'],
      [0.1, '0.1'],
      [1e16, '1e+16'],
      [1e15, '1000000000000000.0'],
      [1e-5, '1e-05'],
      [0.0001, '0.0001'],
      [-2.5, '-2.5'],
      [1.5e300, '1.5e+300'],
      [5e-324, '5e-324'],
      [-0, '-0.0'],
      [12345678901234567890, '1.2345678901234567e+19'],
    ];
    for (const [x, text] of cases) expect(pyFloat(x), String(x)).to.equal(text);
    expect(pyStr('NaN', 701)).to.equal('nan');
    expect(pyStr('-Infinity', 700)).to.equal('-inf');
    expect(pyStr(1e21, 20)).to.equal('1000000000000000000000');
  });

  it('str and bytes repr quoting and escapes', () => {
    expect(pyStrRepr("it's")).to.equal('"it\'s"');
    expect(pyStrRepr('say "hi" it\'s')).to.equal("'say \"hi\" it\\'s'");
    expect(pyStrRepr('a\u0000é\u200b\n\t\\')).to.equal("'a\\x00é\\u200b\\n\\t\\\\'");
    expect(pyStrRepr('🚀')).to.equal("'🚀'");
    expect(pyBytesRepr(Buffer.from([0, 0x41, 0x27, 0x5c, 0xff]).toString('base64'))).to.equal('b"\\x00A\'\\\\\\xff"');
  });

  it('timestamps, times and arrays', () => {
    expect(pyStr('2020-12-01T09:43:00.5+02:00', 1184)).to.equal('2020-12-01 07:43:00.500000+00:00');
    expect(pyStr('0050-01-01T01:00:00+02', 1184)).to.equal('0049-12-31 23:00:00+00:00');
    expect(pyStr('2020-12-01T09:43:00.000Z', 1184)).to.equal('2020-12-01 09:43:00+00:00');
    expect(pyStr('2020-12-01 09:43:00.123456', 1114)).to.equal('2020-12-01 09:43:00.123456');
    expect(pyStr('infinity', 1184)).to.equal('infinity');
    expect(pyStr('10:00:00.100', 1083)).to.equal('10:00:00.100000');
    expect(pyStr('10:00:00+0530', 1266)).to.equal('10:00:00+05:30');
    expect(pyStr(['1.5', null], 1231)).to.equal("[Decimal('1.5'), None]");
    expect(pyStr([1.5, 2], 1022)).to.equal('[1.5, 2.0]');
    expect(pyStr([['a'], ["b'"]], 1009)).to.equal('[[\'a\'], ["b\'"]]');
    expect(pyStr('2020-12-01', 1082)).to.equal('2020-12-01');
  });
});
