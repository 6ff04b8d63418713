import { expect } from 'chai';
import type { SlotState } from '../../../../src/sources/logical/setup';
import { describeGap, diagnoseSlot, lastKnownPosition, slotStreamError, walWarnings } from '../../../../src/sources/logical/slot-guard';
import type { SlotRecord } from '../../../../src/pg/slot-record';
import { loadConfig } from '../../../../src/config/load';
import type { Config } from '../../../../src/config/types';
import { ErrorCodes, PgceError } from '../../../../src/errors';

const MiB = 1024 * 1024;

function config(capture: Partial<Config['capture']> = {}): Config {
  const base = loadConfig({ env: { DATABASE_URL: 'postgres://app@127.0.0.1:5432/app', PG_CLOUDEVENTS_TABLES: 'public.orders', PG_CLOUDEVENTS_SLOT: 'pg_cloudevents', PG_CLOUDEVENTS_PUBLICATION: 'pg_cloudevents' } });
  return { ...base, capture: { ...base.capture, slot: 'cdc', ...capture } };
}

function slot(over: Partial<SlotState> = {}): SlotState {
  return {
    slot_name: 'cdc', plugin: 'pgoutput', database: 'app', active: false, active_pid: null,
    confirmed_flush_lsn: '0/3000000', restart_lsn: '0/2F00000', current_lsn: '0/3100000',
    retained_bytes: String(2 * MiB), lag_bytes: String(MiB),
    wal_status: 'reserved', safe_wal_size: null, max_slot_wal_keep_bytes: null,
    ...over,
  };
}

const CREATED_AT = new Date('2024-05-01T10:00:00.000Z');
const ACKED_AT = new Date('2024-05-02T11:30:00.000Z');

function record(over: Partial<SlotRecord> = {}): SlotRecord {
  return {
    slotName: 'cdc', database: 'app', createdLsn: '0/1000000', createdAt: CREATED_AT,
    acknowledgedLsn: '0/2A00000', acknowledgedAt: ACKED_AT, ...over,
  };
}

const codes = (errors: PgceError[]) => errors.map((e) => e.code);

describe('sources/logical/slot-guard: is the slot the one we acknowledged?', () => {
  describe('diagnoseSlot', () => {
    it('the very first run (no slot, nothing remembered) is no error: setup or run creates the slot', () => {
      expect(diagnoseSlot(null, null, 'app', config())).to.deep.equal({ errors: [], warnings: [] });
    });

    it('a remembered slot that is missing is PGCE_ERR_SLOT_LOST naming the last acknowledged position and the recovery', () => {
      const { errors } = diagnoseSlot(null, record(), 'app', config());
      expect(codes(errors)).to.deep.equal([ErrorCodes.SLOT_LOST]);
      expect(errors[0].retriable).to.equal(false);
      expect(errors[0].message).to.equal(
        'replication slot "cdc" is gone (pg-cloudevents created it at LSN 0/1000000 on 2024-05-01T10:00:00.000Z): it was ' +
        'dropped, or the database was restored or copied without it. The changes committed after LSN 0/2A00000 (last ' +
        'acknowledged at 2024-05-02T11:30:00.000Z) were never delivered and cannot be. To accept the gap and capture from ' +
        'now on: pg-cloudevents setup --recreate-slot');
      expect(errors[0].detail.reason).to.equal('missing');
    });

    it('says where the record comes from when it names another database (a copy without the slot)', () => {
      const { errors } = diagnoseSlot(null, record({ database: 'prod', createdLsn: null }), 'staging', config());
      expect(errors[0].message).to.include('(pg-cloudevents recorded it on 2024-05-01T10:00:00.000Z in database "prod")');
    });

    it('an invalidated slot (wal_status lost) is the same gap, with or without a record', () => {
      const lost = slot({ wal_status: 'lost', restart_lsn: null, retained_bytes: null, max_slot_wal_keep_bytes: String(64 * MiB) });
      for (const r of [record(), null]) {
        const { errors } = diagnoseSlot(lost, r, 'app', config());
        expect(codes(errors)).to.deep.equal([ErrorCodes.SLOT_LOST]);
        expect(errors[0].message).to.include('replication slot "cdc" was invalidated (wal_status lost): PostgreSQL removed WAL it still needed, as it retained more than max_slot_wal_keep_size = 64.0 MiB');
        expect(errors[0].message).to.include('pg-cloudevents setup --recreate-slot');
      }
      // The slot confirmed more than the record had written: the gap starts there.
      expect(diagnoseSlot(lost, record(), 'app', config()).errors[0].message).to.include('The changes committed after LSN 0/3000000 (its last confirmed position)');
    });

    it('a slot older than the one we created is not ours', () => {
      const { errors } = diagnoseSlot(slot({ confirmed_flush_lsn: '0/800000' }), record({ acknowledgedLsn: null, acknowledgedAt: null }), 'app', config());
      expect(codes(errors)).to.deep.equal([ErrorCodes.SLOT_LOST]);
      expect(errors[0].message).to.include('is not the one pg-cloudevents created at LSN 0/1000000');
      expect(errors[0].detail.reason).to.equal('different');
    });

    it('a slot behind what we acknowledged (a crash took it back to its checkpoint) only warns: nothing is lost', () => {
      const { errors, warnings } = diagnoseSlot(slot({ confirmed_flush_lsn: '0/2000000' }), record(), 'app', config());
      expect(errors).to.deep.equal([]);
      expect(warnings.join('\n')).to.include('behind the last acknowledged position 0/2A00000');
    });

    it('a slot found without a record (an older version, or made by hand) is adopted, not refused', () => {
      expect(diagnoseSlot(slot(), null, 'app', config()).errors).to.deep.equal([]);
    });
  });

  describe('retained-WAL warnings', () => {
    it('warn above capture.retainedWalWarnBytes; 0 turns it off', () => {
      const big = slot({ retained_bytes: String(3 * 1024 * MiB) });
      expect(walWarnings(big, config()).map((w) => w.kind)).to.deep.equal(['retained']);
      expect(walWarnings(big, config()).map((w) => w.message).join()).to.include('retains 3.0 GiB of WAL (more than capture.retainedWalWarnBytes = 1.0 GiB)');
      expect(walWarnings(big, config({ retainedWalWarnBytes: 0 }))).to.deep.equal([]);
      expect(walWarnings(slot(), config())).to.deep.equal([]);
    });

    it('warn above capture.retainedWalWarnFraction of max_slot_wal_keep_size, naming how much is left', () => {
      const near = slot({ retained_bytes: String(40 * MiB), max_slot_wal_keep_bytes: String(64 * MiB), safe_wal_size: String(24 * MiB) });
      const [w] = walWarnings(near, config());
      expect(w.kind).to.equal('keepSize');
      expect(w.message).to.include('retains 40.0 MiB, 63% of max_slot_wal_keep_size = 64.0 MiB (capture.retainedWalWarnFraction = 0.5); 24.0 MiB more WAL and PostgreSQL invalidates it');
      expect(walWarnings(near, config({ retainedWalWarnFraction: 0.75 }))).to.deep.equal([]);
      expect(walWarnings(near, config({ retainedWalWarnFraction: 0 }))).to.deep.equal([]);
      // No limit on the server: nothing to compare with.
      expect(walWarnings(slot({ retained_bytes: String(40 * MiB) }), config())).to.deep.equal([]);
    });

    it('always warn on wal_status unreserved: the next checkpoint invalidates the slot', () => {
      const kinds = walWarnings(slot({ wal_status: 'unreserved' }), config()).map((w) => w.kind);
      expect(kinds).to.deep.equal(['unreserved']);
    });
  });

  describe('the gap named', () => {
    it('starts at the furthest position known, with the time it was acknowledged', () => {
      expect(lastKnownPosition(null, record())).to.deep.equal({ lsn: '0/2A00000', at: ACKED_AT, created: false });
      expect(lastKnownPosition(null, record({ acknowledgedLsn: null, acknowledgedAt: null })))
        .to.deep.equal({ lsn: '0/1000000', at: CREATED_AT, created: true });
      const now = new Date('2024-05-03T00:00:00.000Z');
      expect(lastKnownPosition(slot(), record(), { lsn: 0x3100000n, at: now })).to.deep.equal({ lsn: '0/3100000', at: now, created: false });
      expect(lastKnownPosition(null, null)).to.equal(null);
    });

    it('reads as a sentence in each case', () => {
      expect(describeGap({ lsn: '0/1000000', at: CREATED_AT, created: true }))
        .to.equal('the changes committed after LSN 0/1000000 (where the slot began on 2024-05-01T10:00:00.000Z; nothing was acknowledged after it)');
      expect(describeGap(null)).to.equal('the changes committed since its last acknowledged position (not recorded)');
    });
  });

  describe('slotStreamError: the walsender errors that end capture for good', () => {
    it('an invalidated slot, keeping PostgreSQL\'s detail', () => {
      const err = slotStreamError(Object.assign(new Error('cannot read from logical replication slot "cdc"'), {
        code: '55000', detail: 'This slot has been invalidated because it exceeded the maximum reserved size.',
      }));
      expect(err).to.be.instanceOf(PgceError);
      expect(err!.code).to.equal(ErrorCodes.SLOT_LOST);
      expect(err!.retriable).to.equal(false);
      expect(err!.message).to.equal(
        'replication slot "cdc" was invalidated and can no longer be read (PostgreSQL: cannot read from logical replication slot "cdc" ' +
        'DETAIL: This slot has been invalidated because it exceeded the maximum reserved size.). ' +
        'To accept the gap and capture from now on: pg-cloudevents setup --recreate-slot');
    });

    it('a slot dropped while reading it', () => {
      const err = slotStreamError(Object.assign(new Error('replication slot "cdc" does not exist'), { code: '42704' }));
      expect(err!.code).to.equal(ErrorCodes.SLOT_LOST);
      expect(err!.detail.reason).to.equal('missing');
    });

    it('a publication the slot cannot see at its position, with the LSN from PostgreSQL\'s context', () => {
      const err = slotStreamError(Object.assign(new Error('publication "cdc_pub" does not exist'), {
        code: '42704', where: 'slot "cdc", output plugin "pgoutput", in the change callback, associated LSN 0/B6D500',
      }));
      expect(err!.code).to.equal(ErrorCodes.SLOT_LOST);
      expect(err!.detail).to.include({ reason: 'publication', publication: 'cdc_pub', slot: 'cdc', lsn: '0/B6D500' });
      expect(err!.message).to.include('replication slot "cdc" cannot decode the change at LSN 0/B6D500: publication "cdc_pub" did not exist there');
      expect(err!.message).to.include('creating the publication again does not help this slot');
    });

    it('leaves everything else to the usual classification (retriable or not)', () => {
      expect(slotStreamError(Object.assign(new Error('replication slot "cdc" is active for PID 42'), { code: '55006' }))).to.equal(undefined);
      expect(slotStreamError(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }))).to.equal(undefined);
      expect(slotStreamError(new PgceError(ErrorCodes.REPLICATION, 'x'))).to.equal(undefined);
      expect(slotStreamError(undefined)).to.equal(undefined);
    });
  });
});
