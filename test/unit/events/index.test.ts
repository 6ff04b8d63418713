import { expect } from 'chai';
import { ErrorCodes, PgceError } from '../../../src/errors';
import { getEventFormat, resolveSource } from '../../../src/events/index';

describe('events/index registry and source', () => {
  const def = getEventFormat('default');
  const django = getEventFormat('django');

  it('finds formats by name and refuses unknown ones', () => {
    expect([def.name, django.name]).to.deep.equal(['default', 'django']);
    expect([def.defaultTypePrefix, django.defaultTypePrefix]).to.deep.equal(['orm', 'django.orm']);
    expect(() => getEventFormat('xml' as 'default')).to.throw(PgceError, /events.format: unknown format "xml"/);
    expect(() => getEventFormat('toString' as 'default')).to.throw(PgceError, /unknown format/);
  });

  it('K_SOURCE wins, then the configured source, then the format default', () => {
    expect(resolveSource({ kSource: '/k', configured: '/c', format: def, databaseName: 'db' })).to.equal('/k');
    expect(resolveSource({ kSource: '', configured: '/c', format: def, databaseName: 'db' })).to.equal('/c');
    expect(resolveSource({ format: def, databaseName: 'db' })).to.equal('/pg-cloudevents/db');
    expect(resolveSource({ configured: '', format: django, databaseName: 'db' })).to.equal('django-orm');
    expect(resolveSource({ kSource: 'https://example.com/x', format: django, databaseName: 'db' })).to.equal(
      'https://example.com/x',
    );
  });

  it('an invalid source is a configuration error naming where it came from', () => {
    for (const [opts, origin] of [
      [{ kSource: 'has space' }, 'K_SOURCE'],
      [{ configured: 'a b' }, 'events.source'],
    ] as const) {
      try {
        resolveSource({ ...opts, format: def, databaseName: 'db' });
        expect.fail('accepted');
      } catch (err) {
        expect((err as PgceError).code).to.equal(ErrorCodes.CONFIG_INVALID);
        expect((err as PgceError).message).to.match(new RegExp(`^${origin}: `));
      }
    }
  });
});
