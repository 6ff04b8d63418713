import { expect } from 'chai';
import type { Change, InsertChange, RelationInfo } from '../../../../src/sources/change';
import type { ChangeConsumer } from '../../../../src/sources/contract';
import { SnapshotVisibility } from '../../../../src/sources/backfill/snapshot';
import { BackfillWindow, type ChunkOutcome } from '../../../../src/sources/backfill/window';

const relation: RelationInfo = {
  id: 1, schema: 'public', table: 'orders', replicaIdentity: 'default', keyColumns: ['id'],
  columns: [{ name: 'id', typeOid: 23, typeMod: -1, isKey: true }, { name: 'v', typeOid: 23, typeMod: -1, isKey: false }],
};

/** Records what the window passes on, in order. */
function recorder() {
  const calls: string[] = [];
  const inserts: InsertChange[] = [];
  const consumer: ChangeConsumer = {
    change: (c) => {
      if (c.kind === 'insert' && c.backfill) inserts.push(c);
      calls.push(c.kind === 'insert' && c.backfill ? `backfill:${c.new.id}` : `${c.kind}`);
    },
    undecodable: () => calls.push('undecodable'),
    commit: (p) => calls.push(`commit:${p}`),
    position: (p) => calls.push(`position:${p}`),
    reset: async () => void calls.push('reset'),
    stop: async () => void calls.push('stop'),
  };
  return { calls, inserts, consumer };
}

const base = { relation, commitLsn: 10n, commitTime: new Date(0), ordinal: 0 };
const update = (id: number, xid: number): Change => ({ ...base, xid, kind: 'update', new: { id, v: 1 }, oldIsKeyOnly: false, missingColumns: [] });
const rows = (...ids: number[]) => ids.map((id) => ({ id, v: 0 }));
/** xmin 100, xmax 110, 105 in progress. */
const SNAPSHOT = SnapshotVisibility.parse('100:110:105');

describe('sources/backfill/window: the DBLog window around the engine', () => {
  it('drops keys changed between the watermarks, emits the rest at the high watermark with deterministic ids', async () => {
    const { calls, inserts, consumer } = recorder();
    const w = new BackfillWindow(consumer);
    const armed = w.arm({ backfillId: '7', chunkNo: 0, relation });
    w.watermark(armed.low, 20n);
    w.supply({ rows: rows(1, 2, 3), snapshot: SNAPSHOT, readAt: new Date(5) });
    w.change(update(2, 100));
    w.commit(30n);
    w.watermark(armed.high, 40n);
    const outcome = await armed.outcome as Extract<ChunkOutcome, { kind: 'emitted' }>;
    expect(outcome).to.include({ kind: 'emitted', position: 40n, read: 3, emitted: 2, superseded: 1 });
    expect(calls).to.deep.equal(['update', 'commit:30', 'backfill:1', 'backfill:3', 'commit:40']);
    expect(inserts.map((c) => [c.commitLsn, c.ordinal, c.xid])).to.deep.equal([[40n, 0, 0], [40n, 1, 0]]);
    expect(inserts[0].backfill!.eventId).to.match(/^backfill-7-[0-9a-f]{32}$/);
    // Read again (another term, another chunk number): the same row keeps its id.
    const again = recorder();
    const w2 = new BackfillWindow(again.consumer);
    const a2 = w2.arm({ backfillId: '7', chunkNo: 5, relation });
    w2.watermark(a2.low, 1n);
    w2.supply({ rows: rows(1), snapshot: SNAPSHOT, readAt: new Date(5) });
    w2.watermark(a2.high, 2n);
    await a2.outcome;
    expect(again.inserts[0].backfill!.eventId).to.equal(inserts[0].backfill!.eventId);
  });

  it('trigger mode: the rows carry the watermark\'s own commitLsn (its journal id), and are committed at its position', async () => {
    const { calls, inserts, consumer } = recorder();
    const w = new BackfillWindow(consumer);
    const armed = w.arm({ backfillId: '3', chunkNo: 0, relation });
    w.watermark(armed.low, 5n, 901n);
    w.supply({ rows: rows(1), snapshot: SNAPSHOT, readAt: new Date(5) });
    w.watermark(armed.high, 6n, 903n);
    expect(await armed.outcome).to.include({ position: 6n, emitted: 1 });
    expect(inserts.map((c) => c.commitLsn)).to.deep.equal([903n]);
    expect(calls).to.deep.equal(['backfill:1', 'commit:6']);
  });

  it('before the low watermark: drops only the keys of transactions the chunk\'s snapshot did not see', async () => {
    const { calls, consumer } = recorder();
    const w = new BackfillWindow(consumer);
    const armed = w.arm({ backfillId: '1', chunkNo: 0, relation });
    w.change(update(1, 99)); // seen by the snapshot (older than xmin): the chunk has it
    w.change(update(2, 105)); // in progress for the snapshot although committed: stale in the chunk
    w.change(update(3, 111)); // at or after xmax: not seen
    w.watermark(armed.low, 20n);
    w.supply({ rows: rows(1, 2, 3, 4), snapshot: SNAPSHOT, readAt: new Date(5) });
    w.watermark(armed.high, 40n);
    expect(await armed.outcome).to.include({ emitted: 2, superseded: 2 });
    expect(calls.filter((c) => c.startsWith('backfill'))).to.deep.equal(['backfill:1', 'backfill:4']);
  });

  it('a delete and a key change drop the old key; a truncate abandons the chunk; other tables and foreign tokens are ignored', async () => {
    const { calls, consumer } = recorder();
    const w = new BackfillWindow(consumer);
    let armed = w.arm({ backfillId: '1', chunkNo: 0, relation });
    w.watermark('someone-else:1:0:low', 1n);
    w.watermark(armed.low, 2n);
    w.change({ ...base, xid: 120, kind: 'delete', old: { id: 1 }, oldIsKeyOnly: true, missingColumns: [] });
    w.change({ ...base, xid: 120, kind: 'update', new: { id: 9, v: 0 }, old: { id: 2 }, oldIsKeyOnly: true, missingColumns: [] });
    w.change({ ...base, xid: 120, relation: { ...relation, table: 'other' }, kind: 'delete', old: { id: 3 }, oldIsKeyOnly: true, missingColumns: [] });
    w.supply({ rows: rows(1, 2, 3), snapshot: SNAPSHOT, readAt: new Date(5) });
    w.watermark(armed.high, 3n);
    expect(await armed.outcome).to.include({ emitted: 1, superseded: 2 });
    expect(calls.filter((c) => c.startsWith('backfill'))).to.deep.equal(['backfill:3']);

    armed = w.arm({ backfillId: '1', chunkNo: 1, relation });
    w.watermark(armed.low, 4n);
    w.supply({ rows: rows(4), snapshot: SNAPSHOT, readAt: new Date(5) });
    w.change({ ...base, xid: 121, kind: 'truncate', cascade: false, restartIdentity: false });
    w.watermark(armed.high, 5n);
    expect(await armed.outcome).to.deep.equal({ kind: 'redo', reason: 'public.orders was truncated' });
    expect(calls.at(-1), 'the position still moves on').to.equal('position:5');
  });

  it('a stream restart abandons the open chunk and an emitted one not yet acknowledged', async () => {
    const { consumer } = recorder();
    const w = new BackfillWindow(consumer);
    const armed = w.arm({ backfillId: '1', chunkNo: 0, relation });
    w.watermark(armed.low, 2n);
    w.supply({ rows: rows(1), snapshot: SNAPSHOT, readAt: new Date(5) });
    w.watermark(armed.high, 3n);
    const outcome = await armed.outcome as Extract<ChunkOutcome, { kind: 'emitted' }>;
    const delivered = w.delivered(outcome.position, outcome.epoch);
    await w.reset();
    expect(await delivered).to.equal(false);
    // An acknowledgement of the new stream past it does not count for it either.
    w.acknowledged(10n);
    expect(await w.delivered(outcome.position, outcome.epoch)).to.equal(false);
    const next = w.arm({ backfillId: '1', chunkNo: 1, relation });
    w.watermark(next.low, 11n);
    await w.reset();
    expect(await next.outcome).to.deep.equal({ kind: 'redo', reason: 'the change stream restarted' });
  });

  it('snapshot visibility compares 32-bit xids of the stream with the snapshot\'s 64-bit ones, across an epoch', () => {
    // Epoch 1: xids 2^32 + 5 … ; the stream sees them as 5 ….
    const s = SnapshotVisibility.parse(`${2 ** 32 + 3}:${2 ** 32 + 8}:${2 ** 32 + 4}`);
    expect(s.invisible(2)).to.equal(false);
    expect(s.invisible(4)).to.equal(true);
    expect(s.invisible(5)).to.equal(false);
    expect(s.invisible(8)).to.equal(true);
    expect(s.invisible(0xfffffff0)).to.equal(false); // the previous epoch's last xids: long finished
  });
});
