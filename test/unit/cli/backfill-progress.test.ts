import { expect } from 'chai';
import { Writable } from 'node:stream';
import { BarsView, barText, etaSeconds, formatDuration, fraction, LinesView, progressLine, RateMeter, statusText } from '../../../src/cli/backfill-progress';
import type { BackfillRow } from '../../../src/sources/backfill/store';

const T0 = new Date('2026-12-01T10:00:00Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

function row(over: Partial<BackfillRow> = {}): BackfillRow {
  return {
    id: '12', slot: 'pgce_orders', schema: 'public', table: 'orders', where: null, chunkSize: 1000, rate: null, origin: 'cli',
    state: 'running', lastKey: null, rowsDone: 4000, rowsEmitted: 4000, rowsEstimated: 10000, error: null,
    createdAt: T0, startedAt: T0, updatedAt: at(2), finishedAt: null, ...over,
  };
}

describe('cli/backfill-progress: what `backfill` shows while it follows', () => {
  it('the rate is measured over the last samples; the ETA needs a rate and an estimate not yet reached', () => {
    const meter = new RateMeter();
    expect(meter.rate()).to.equal(undefined);
    meter.add(0, 0);
    expect(meter.rate()).to.equal(undefined);
    meter.add(1000, 2000);
    expect(meter.rate()).to.equal(2000);
    // A pause shows: old samples leave the window.
    meter.add(20_000, 2000);
    meter.add(21_000, 2000);
    expect(meter.rate()).to.equal(0);
    expect(etaSeconds(row(), 2000)).to.equal(3);
    expect(etaSeconds(row(), undefined)).to.equal(undefined);
    expect(etaSeconds(row(), 0)).to.equal(undefined);
    expect(etaSeconds(row({ rowsEstimated: null }), 100)).to.equal(undefined);
    expect(etaSeconds(row({ rowsEstimated: 3000 }), 100), 'past the planner\'s estimate').to.equal(undefined);
  });

  it('durations and fractions', () => {
    expect([0, 3.4, 59, 60, 125, 3599, 3600, 7384].map(formatDuration)).to.deep.equal(['0s', '3s', '59s', '1m00s', '2m05s', '59m59s', '1h00m', '2h03m']);
    expect(fraction(row())).to.equal(0.4);
    expect(fraction(row({ rowsDone: 12000 })), 'never past the bar').to.equal(1);
    expect(fraction(row({ rowsEstimated: null }))).to.equal(0);
    expect(fraction(row({ state: 'done', rowsEstimated: 20000 }))).to.equal(1);
  });

  it('one plain line per state: why it waits, how fast it goes, how it ended', () => {
    const pending = row({ state: 'pending', rowsDone: 0, rowsEmitted: 0, rowsEstimated: null, startedAt: null });
    expect(progressLine({ row: pending })).to.equal('backfill 12 public.orders: pending: waiting for the leader of slot pgce_orders');
    expect(progressLine({ row: pending, waitedMs: 29_000 })).to.equal('backfill 12 public.orders: pending: waiting for the leader of slot pgce_orders');
    expect(progressLine({ row: pending, waitedMs: 95_000 })).to.equal('backfill 12 public.orders: pending: waiting for the leader of slot pgce_orders (nothing started it in 1m35s: is `pg-cloudevents run` running for this slot?)');
    expect(progressLine({ row: pending, behind: '11 (public.items)' })).to.equal('backfill 12 public.orders: pending: waiting for backfill 11 (public.items), which the leader of slot pgce_orders performs first');
    expect(progressLine({ row: row(), rate: 2000 })).to.equal('backfill 12 public.orders: 4000/~10000 rows (40%), running, 2000 rows/s, ETA 3s');
    expect(progressLine({ row: row() })).to.equal('backfill 12 public.orders: 4000/~10000 rows (40%), running, - rows/s, ETA -');
    expect(progressLine({ row: row({ state: 'done', rowsDone: 10010, rowsEmitted: 10000, finishedAt: at(65) }) }))
      .to.equal('backfill 12 public.orders: 10010 rows (100%), done in 1m05s: 10000 events (10 rows skipped: a live change had newer state)');
    expect(progressLine({ row: row({ state: 'done', rowsDone: 5, rowsEmitted: 5, finishedAt: at(1) }) })).to.equal('backfill 12 public.orders: 5 rows (100%), done in 1s: 5 events');
    expect(progressLine({ row: row({ state: 'cancelled' }) })).to.equal('backfill 12 public.orders: 4000/~10000 rows (40%), cancelled (the events sent before stay sent)');
    expect(statusText({ row: row({ state: 'failed', error: 'sink down' }) })).to.equal('failed: sink down');
    expect(progressLine({ row: row({ schema: 'My Schema', table: 'Orders' }), rate: 1 })).to.match(/^backfill 12 "My Schema"\."Orders": /);
  });

  it('off a terminal: a line at each change of state (and of what a pending one waits for), else at most one per backfill every interval, and only when it moved', () => {
    let text = '';
    const view = new LinesView({ write: (t: string) => (text += t) }, 5000);
    const lines = () => text.trimEnd().split('\n');
    view.update([{ row: row({ state: 'pending', rowsDone: 0 }) }], 0);
    view.update([{ row: row({ state: 'pending', rowsDone: 0 }) }], 10_000);
    expect(lines()).to.have.length(1);
    view.update([{ row: row({ state: 'pending', rowsDone: 0 }), waitedMs: 30_000 }], 10_050);
    view.update([{ row: row({ state: 'pending', rowsDone: 0 }), waitedMs: 30_000 }], 10_060);
    expect(lines(), 'the no-leader hint is said once').to.have.length(2);
    expect(lines()[1]).to.match(/is `pg-cloudevents run` running for this slot\?\)$/);
    view.update([{ row: row({ rowsDone: 100 }) }], 10_100);
    view.update([{ row: row({ rowsDone: 200 }) }], 12_000);
    expect(lines()).to.have.length(3);
    view.update([{ row: row({ rowsDone: 300 }) }], 15_100);
    expect(lines()).to.have.length(4);
    expect(lines()[3]).to.match(/: 300\/~10000 rows \(3%\), running/);
    view.update([{ row: row({ rowsDone: 300 }) }], 30_000);
    expect(lines(), 'no new line when nothing moved').to.have.length(4);
    view.update([{ row: row({ state: 'done', rowsDone: 10000, rowsEmitted: 10000, finishedAt: at(9) }) }], 30_100);
    expect(lines()[4]).to.match(/done in 9s: 10000 events$/);
  });

  it('on a terminal: one cli-progress bar per backfill, drawn with the rows, state, rate and ETA', () => {
    expect(barText({ row: row(), rate: 2000 }, '####------', 18)).to.equal('#12 public.orders   [####------]  40%  4000/~10000 rows  running, 2000 rows/s, ETA 3s');
    let screen = '';
    const stream = Object.assign(new Writable({ write: (chunk, _enc, done) => { screen += String(chunk); done(); } }), { isTTY: true, columns: 200, cursorTo: () => true, moveCursor: () => true, clearLine: () => true, clearScreenDown: () => true });
    const view = new BarsView(stream as unknown as NodeJS.WritableStream, 10);
    view.update([{ row: row(), rate: 2000 }, { row: row({ id: '13', table: 'items', state: 'pending', rowsDone: 0 }), behind: '12 (public.orders)' }]);
    view.say('a message above the bars');
    view.update([{ row: row({ state: 'done', rowsDone: 10000, rowsEmitted: 10000, finishedAt: at(5) }) }]);
    view.stop();
    expect(screen).to.include('#12 public.orders  [████░░░░░░]  40%  4000/~10000 rows  running, 2000 rows/s, ETA 3s');
    expect(screen).to.include('#13 public.items   [░░░░░░░░░░]       pending: waiting for backfill 12 (public.orders)');
    expect(screen).to.include('a message above the bars');
    expect(screen).to.include('#12 public.orders  [██████████] 100%  10000 rows  done in 5s: 10000 events');
  });
});
