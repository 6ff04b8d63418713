import { triggerRulesTeardownWarning } from '../../../src/pg/schema/trigger-rules-table';
import { backfillsTeardownWarning } from '../../../src/pg/schema/backfills-table';
import { expect } from 'chai';
import { planSetup, planTeardown, renderStep, verify, type Inspection, type SlotState } from '../../../src/sources/logical/setup';
import type { SlotRecordState } from '../../../src/pg/slot-record';
import { loadConfig } from '../../../src/config/load';
import { ErrorCodes } from '../../../src/errors';

const config = loadConfig({ env: { DATABASE_URL: 'postgres://app@127.0.0.1:5432/app', PG_CLOUDEVENTS_TABLES: 'public.orders', PG_CLOUDEVENTS_SLOT: 'pg_cloudevents', PG_CLOUDEVENTS_PUBLICATION: 'pg_cloudevents' } });

const SLOT: SlotState = {
  slot_name: 'pg_cloudevents', plugin: 'pgoutput', database: 'app', active: false, active_pid: null,
  confirmed_flush_lsn: '0/3000000', restart_lsn: '0/2F00000', current_lsn: '0/3000100',
  retained_bytes: '1048832', lag_bytes: '256', wal_status: 'reserved', safe_wal_size: null, max_slot_wal_keep_bytes: null,
};

const RECORDED: SlotRecordState = {
  tableExists: true, otherRecords: 0,
  record: {
    slotName: 'pg_cloudevents', database: 'app', createdLsn: '0/1000000', createdAt: new Date('2024-05-01T00:00:00Z'),
    acknowledgedLsn: '0/2000000', acknowledgedAt: new Date('2024-05-02T00:00:00Z'),
  },
};

function state(over: Partial<Inspection> = {}): Inspection {
  return {
    walLevel: 'logical', maxSlots: 10, usedSlots: 1, database: 'app', canReplicate: true,
    tables: new Map([['public.orders', { schema: 'public', name: 'orders', kind: 'r', replident: 'f', hasPk: true, generatedColumns: [] }]]),
    publication: { exists: true, allTables: false, tables: ['public.orders'] },
    slot: SLOT,
    slotElsewhere: null,
    slotRecord: RECORDED,
    // The schema's other relations are the slot record, trigger rules and backfills tables.
    deadLetters: { schemaExists: true, tableExists: true, empty: true, otherObjectsInSchema: 3 },
    triggerRules: { tableExists: true, rules: 0 },
    backfills: { tableExists: true, own: 2, active: 0, others: 0 },
    ...over,
  };
}

const descriptions = (steps: { description: string }[]) => steps.map((s) => s.description);

describe('pg/slot-record: setup with the slot record', () => {
  it('the first set-up creates the slot, then records where it began (the table is the schema migrations\' own)', () => {
    const steps = planSetup(state({ slot: null, slotRecord: { tableExists: false, record: null, otherRecords: 0 } }), config);
    expect(descriptions(steps)).to.deep.equal([
      'create replication slot pg_cloudevents (pgoutput)',
      'record replication slot pg_cloudevents in pgcloudevents.capture_slots',
    ]);
    expect(renderStep(steps[1])).to.match(/INSERT INTO "pgcloudevents"."capture_slots"[\s\S]*WHERE slot_name = 'pg_cloudevents'/);
    expect(steps[1].sql).to.include('slot_name = $1');
  });

  it('a slot that exists without a record is recorded as found; a recorded one needs nothing', () => {
    const found = planSetup(state({ slotRecord: { tableExists: true, record: null, otherRecords: 2 } }), config);
    expect(descriptions(found)).to.deep.equal(['record existing replication slot pg_cloudevents in pgcloudevents.capture_slots']);
    expect(found[0].sql).to.include('ON CONFLICT (slot_name) DO NOTHING');
    expect(planSetup(state(), config)).to.deep.equal([]);
  });

  it('a remembered slot that is missing stops set-up (no quiet re-creation) unless the loss is accepted', () => {
    const lost = state({ slot: null });
    const verdict = verify(lost, config);
    expect(verdict.errors.map((e) => e.code)).to.deep.equal([ErrorCodes.SLOT_LOST]);
    expect(verify(lost, config, { acceptSlotLoss: true }).errors).to.deep.equal([]);
  });

  it('--recreate-slot drops the slot, creates a new one and records it; it refuses a slot in use', () => {
    expect(descriptions(planSetup(state(), config, { recreateSlot: true }))).to.deep.equal([
      'drop replication slot pg_cloudevents',
      'create replication slot pg_cloudevents (pgoutput)',
      'record replication slot pg_cloudevents in pgcloudevents.capture_slots',
    ]);
    expect(descriptions(planSetup(state({ slot: null }), config, { recreateSlot: true }))).to.deep.equal([
      'create replication slot pg_cloudevents (pgoutput)',
      'record replication slot pg_cloudevents in pgcloudevents.capture_slots',
    ]);
    expect(() => planSetup(state({ slot: { ...SLOT, active: true, active_pid: 4242 } }), config, { recreateSlot: true }))
      .to.throw(/in use by process 4242/);
  });

  it('teardown forgets the slot and drops the record table with its last row, so the empty schema goes too', () => {
    const steps = planTeardown(state(), config);
    expect(descriptions(steps)).to.deep.equal([
      'drop replication slot pg_cloudevents',
      'drop publication pg_cloudevents',
      'forget replication slot pg_cloudevents (pgcloudevents.capture_slots)',
      'drop slot record table pgcloudevents.capture_slots (empty)',
      'drop trigger rules table pgcloudevents.triggers (empty)',
      'drop function "pgcloudevents"."triggers_notify"()',
      'drop backfills table pgcloudevents.backfills',
      'drop function "pgcloudevents"."backfills_notify"()',
      'drop dead-letter table pgcloudevents.dead_letters (empty)',
      'drop the migration record pgcloudevents.knex_migrations',
      'drop schema pgcloudevents (empty)',
    ]);
    // Another source's slot is recorded in the same table: the table and the schema stay.
    const shared = planTeardown(state({
      slotRecord: { ...RECORDED, otherRecords: 1 },
      backfills: { tableExists: true, own: 2, active: 1, others: 3 },
    }), config);
    expect(descriptions(shared)).to.deep.equal([
      'drop replication slot pg_cloudevents',
      'drop publication pg_cloudevents',
      'forget replication slot pg_cloudevents (pgcloudevents.capture_slots)',
      'drop trigger rules table pgcloudevents.triggers (empty)',
      'drop function "pgcloudevents"."triggers_notify"()',
      'forget the backfills of slot pg_cloudevents (pgcloudevents.backfills)',
      'drop dead-letter table pgcloudevents.dead_letters (empty)',
    ]);
    expect(backfillsTeardownWarning({ tableExists: true, own: 2, active: 1, others: 3 }, config)).to.match(/1 backfill\(s\) of slot pg_cloudevents are pending or running/);
    // Trigger rules are a user's own: a table that holds some stays, and so does the schema.
    const withRules = planTeardown(state({ triggerRules: { tableExists: true, rules: 3 } }), config);
    expect(descriptions(withRules)).to.deep.equal([
      'drop replication slot pg_cloudevents',
      'drop publication pg_cloudevents',
      'forget replication slot pg_cloudevents (pgcloudevents.capture_slots)',
      'drop slot record table pgcloudevents.capture_slots (empty)',
      'drop backfills table pgcloudevents.backfills',
      'drop function "pgcloudevents"."backfills_notify"()',
      'drop dead-letter table pgcloudevents.dead_letters (empty)',
    ]);
    expect(triggerRulesTeardownWarning({ tableExists: true, rules: 3 }, config)).to.match(/holds 3 rule\(s\) and is kept/);
  });
});
