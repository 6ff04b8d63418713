import { expect } from 'chai';
import { Lifecycle } from '../../src/lifecycle';

describe('Lifecycle', () => {
  it('runs every listener although an earlier one throws, and counts the failure', () => {
    const lifecycle = new Lifecycle();
    const seen: string[] = [];
    lifecycle.on('capture:walEnd', () => {
      throw new Error('boom');
    });
    lifecycle.on('capture:walEnd', ({ lsn }) => seen.push(`second ${lsn}`));
    expect(() => lifecycle.emit('capture:walEnd', { lsn: 5n })).to.not.throw();
    expect(seen).to.deep.equal(['second 5']);
    expect(lifecycle.listenerErrors).to.equal(1);
  });

  it('lets a listener remove itself while the event is being emitted', () => {
    const lifecycle = new Lifecycle();
    const seen: number[] = [];
    const once = () => {
      seen.push(1);
      lifecycle.off('capture:walEnd', once);
    };
    lifecycle.on('capture:walEnd', once);
    lifecycle.on('capture:walEnd', () => seen.push(2));
    lifecycle.emit('capture:walEnd', { lsn: 1n });
    lifecycle.emit('capture:walEnd', { lsn: 2n });
    expect(seen).to.deep.equal([1, 2, 2]);
    expect(lifecycle.listenerCount('capture:walEnd')).to.equal(1);
  });
});
