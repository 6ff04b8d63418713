import { expect } from 'chai';
import { verify, type Inspection } from '../../../../src/sources/logical/setup';
import { loadConfig } from '../../../../src/config/load';
import { ErrorCodes } from '../../../../src/errors';

const ENV = { DATABASE_URL: 'postgres://app@127.0.0.1:5432/shop', PG_CLOUDEVENTS_TABLES: 'public.orders' };

function state(over: Partial<Inspection>): Inspection {
  return {
    walLevel: 'logical', maxSlots: 10, usedSlots: 1, database: 'shop', canReplicate: true,
    tables: new Map([['public.orders', { schema: 'public', name: 'orders', kind: 'r', replident: 'f', hasPk: true, generatedColumns: [] }]]),
    publication: { exists: true, allTables: false, tables: ['public.orders'] },
    slot: null,
    slotElsewhere: null,
    slotRecord: { tableExists: true, record: null, otherRecords: 0 },
    deadLetters: { schemaExists: true, tableExists: true, empty: true, otherObjectsInSchema: 2 },
    triggerRules: { tableExists: true, rules: 0 },
    backfills: { tableExists: false, own: 0, active: 0, others: 0 },
    ...over,
  };
}

describe('sources/logical/setup verify: a slot name taken by another database', () => {
  it('names the owner and the variable to set, suggesting the per-database default', () => {
    const config = loadConfig({ env: { ...ENV, PG_CLOUDEVENTS_SLOT: 'cdc' } });
    const { errors } = verify(state({ slotElsewhere: { database: 'billing', slotType: 'logical' } }), config);
    expect(errors.map((e) => e.code)).to.deep.equal([ErrorCodes.SLOT_NAME_TAKEN]);
    expect(errors[0].message).to.include('replication slot "cdc" (PG_CLOUDEVENTS_SLOT) belongs to database "billing"')
      .and.include('not to this database "shop"')
      .and.include('PG_CLOUDEVENTS_SLOT=pg_cloudevents_shop (the per-database default');
  });

  it('a physical slot of that name (a standby\'s) is taken too', () => {
    const config = loadConfig({ env: ENV, configPath: undefined });
    const resolved = { ...config, capture: { ...config.capture, slot: 'pg_cloudevents_shop', publication: 'pg_cloudevents_shop' } };
    const { errors } = verify(state({ slotElsewhere: { database: null, slotType: 'physical' } }), resolved);
    expect(errors[0].code).to.equal(ErrorCodes.SLOT_NAME_TAKEN);
    expect(errors[0].message).to.include('"pg_cloudevents_shop" (the default name) is a physical slot')
      .and.include('PG_CLOUDEVENTS_SLOT=pg_cloudevents_shop_2');
  });

  it('warns with what resolving the default names found (an earlier version\'s slot kept)', () => {
    const config = loadConfig({ env: ENV });
    const noted = { ...config, capture: { ...config.capture, slot: 's', publication: 'p', names: { slot: 'earlier' as const, publication: 'earlier' as const, notes: ['kept'] } } };
    expect(verify(state({}), noted).warnings).to.include('kept');
  });
});
