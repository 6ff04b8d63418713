import { expect } from 'chai';
import { checkInstanceName, parseInstanceAddress } from '../../../src/workflows/operations';

describe('workflows: addressing an instance (the subject <workflow>/<session>/<task>#<n>)', () => {
  it('reads workflow, session and instance; the session may hold slashes', () => {
    expect(parseInstanceAddress('orders/o-17/t_ship#0')).to.deep.equal({ workflow: 'orders', session: 'o-17', instance: 't_ship#0' });
    expect(parseInstanceAddress('orders/eu/2024/o 17/t_ship#12')).to.deep.equal({ workflow: 'orders', session: 'eu/2024/o 17', instance: 't_ship#12' });
  });

  it('refuses what is not an address, saying what one looks like', () => {
    expect(() => parseInstanceAddress('orders/t_ship#0')).to.throw('must be <workflow>/<session>/<task>#<n>');
    expect(() => parseInstanceAddress('/o-17/t_ship#0')).to.throw('names no workflow');
    expect(() => parseInstanceAddress('orders//t_ship#0')).to.throw('names no session');
    expect(() => parseInstanceAddress('orders/o-17/t_ship')).to.throw('"t_ship" is not an instance name: <task>#<n>');
    expect(() => checkInstanceName('ship#0')).to.throw('is not an instance name');
    expect(() => checkInstanceName('t_ship#-1')).to.throw('is not an instance name');
    expect(() => checkInstanceName('t_ship#3')).to.not.throw();
  });
});
