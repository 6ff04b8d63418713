/**
 * How `pg-cloudevents backfill` shows the progress it reads from the backfills table (README
 * "Backfill"): on a terminal one cli-progress bar per table (rows done of the estimate, rate,
 * ETA, state), elsewhere (a pipe, a CI log) plain lines, one per table at most every few seconds
 * and one at each change of state. The figures come from the leader's rows; the rate is measured
 * here, over the last few seconds of what the rows said.
 */
import { MultiBar, Format, type Options as BarOptions, type Params as BarParams } from 'cli-progress';
import type { BackfillRow } from '../sources/backfill/store';
import { tableOf } from '../sources/backfill/view';

/** The rate is rows done over this window of samples, so a pause shows soon and a burst fades. */
export const RATE_WINDOW_MS = 10_000;
/** Off a terminal, a backfill's line repeats at most this often (a change of state prints at once). */
export const LINE_INTERVAL_MS = 5_000;

/** Rows per second from the samples of one backfill's rows_done. */
export class RateMeter {
  private readonly samples: { at: number; done: number }[] = [];

  add(at: number, done: number): void {
    this.samples.push({ at, done });
    while (this.samples.length > 2 && at - this.samples[1].at >= RATE_WINDOW_MS) this.samples.shift();
  }

  /** Undefined until two samples a moment apart. */
  rate(): number | undefined {
    if (this.samples.length < 2) return undefined;
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const seconds = (last.at - first.at) / 1000;
    return seconds > 0 ? Math.max(0, (last.done - first.done) / seconds) : undefined;
  }
}

/** What one backfill looks like at a moment: its row, and what the watcher measured and knows. */
export interface ProgressSnapshot {
  row: BackfillRow;
  /** Rows per second, when measured. */
  rate?: number;
  /** The active backfill of the slot that runs before this pending one, if any. */
  behind?: string;
  /** Pending with nothing ahead of it for this long: no leader may be running. */
  waitedMs?: number;
}

/** A pending backfill with nothing ahead of it gets a hint after this long. */
export const NO_LEADER_HINT_MS = 30_000;

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Seconds left at `rate`, or undefined while unknown (no rate yet, no estimate, or past it). */
export function etaSeconds(row: BackfillRow, rate: number | undefined): number | undefined {
  if (rate === undefined || rate <= 0 || row.rowsEstimated === null || row.rowsEstimated <= row.rowsDone) return undefined;
  return (row.rowsEstimated - row.rowsDone) / rate;
}

/** Done of the estimate, 0..1; the estimate is the planner's, so never past 1. */
export function fraction(row: BackfillRow): number {
  if (row.state === 'done') return 1;
  if (row.rowsEstimated === null || row.rowsEstimated <= 0) return 0;
  return Math.min(1, row.rowsDone / row.rowsEstimated);
}

/** `4000/~10000 rows`; just `4000 rows` without an estimate or once done. */
function rowsText(row: BackfillRow): string {
  if (row.state === 'done' || row.rowsEstimated === null) return `${row.rowsDone} rows`;
  return `${row.rowsDone}/~${row.rowsEstimated} rows`;
}

function elapsed(row: BackfillRow): string {
  if (row.startedAt === null) return '';
  const end = row.finishedAt ?? row.updatedAt;
  return ` in ${formatDuration((end.getTime() - row.startedAt.getTime()) / 1000)}`;
}

/** The state and what goes with it: why it waits, how fast it goes, how it ended. */
export function statusText(s: ProgressSnapshot): string {
  const { row } = s;
  switch (row.state) {
    case 'pending':
      return s.behind !== undefined
        ? `pending: waiting for backfill ${s.behind}, which the leader of slot ${row.slot} performs first`
        : `pending: waiting for the leader of slot ${row.slot}${(s.waitedMs ?? 0) >= NO_LEADER_HINT_MS
          ? ` (nothing started it in ${formatDuration((s.waitedMs ?? 0) / 1000)}: is \`pg-cloudevents run\` running for this slot?)` : ''}`;
    case 'running': {
      const eta = etaSeconds(row, s.rate);
      return `running, ${s.rate === undefined ? '- rows/s' : `${Math.round(s.rate)} rows/s`}, ETA ${eta === undefined ? '-' : formatDuration(eta)}`;
    }
    case 'done': {
      const superseded = row.rowsDone - row.rowsEmitted;
      return `done${elapsed(row)}: ${row.rowsEmitted} events${superseded > 0 ? ` (${superseded} rows skipped: a live change had newer state)` : ''}`;
    }
    case 'cancelled':
      return 'cancelled (the events sent before stay sent)';
    case 'failed':
      return `failed: ${row.error ?? 'no reason recorded'}`;
  }
}

/** One plain line: `backfill 12 public.orders: 4000/~10000 rows (40%), running, 2000 rows/s, ETA 3s`. */
export function progressLine(s: ProgressSnapshot): string {
  const { row } = s;
  const percent = row.state === 'pending' ? '' : ` (${Math.floor(fraction(row) * 100)}%)`;
  const rows = row.state === 'pending' ? '' : ` ${rowsText(row)}${percent},`;
  return `backfill ${row.id} ${tableOf(row)}:${rows} ${statusText(s)}`;
}

/** Where the progress goes: bars on a terminal, lines elsewhere. */
export interface ProgressView {
  update(snapshots: ProgressSnapshot[], now: number): void;
  /** A message between the updates (a bar view prints it above its bars). */
  say(line: string): void;
  /** Leaves the last state on screen. */
  stop(): void;
}

export interface Writable {
  write(text: string): unknown;
}

/** Plain lines, throttled per backfill; a change of state always prints. */
export class LinesView implements ProgressView {
  private readonly last = new Map<string, { at: number; state: string; done: number; line: string }>();

  constructor(private readonly out: Writable, private readonly intervalMs = LINE_INTERVAL_MS) {}

  update(snapshots: ProgressSnapshot[], now: number): void {
    for (const s of snapshots) {
      const seen = this.last.get(s.row.id);
      const line = progressLine(s);
      // A pending line changes only when what it waits for does (another backfill, or no leader).
      const changed = seen === undefined || seen.state !== s.row.state || (s.row.state === 'pending' && seen.line !== line);
      const due = seen !== undefined && now - seen.at >= this.intervalMs && seen.done !== s.row.rowsDone;
      if (!changed && !due) continue;
      this.last.set(s.row.id, { at: now, state: s.row.state, done: s.row.rowsDone, line });
      this.out.write(`${line}\n`);
    }
  }

  say(line: string): void {
    this.out.write(`${line}\n`);
  }

  stop(): void {}
}

/** The bar's text: table, bar, percent, rows, then the state with rate and ETA. */
export function barText(s: ProgressSnapshot, bar: string, tableWidth: number): string {
  const { row } = s;
  const percent = row.state === 'pending' ? '    ' : `${String(Math.floor(fraction(row) * 100)).padStart(3)}%`;
  const rows = row.state === 'pending' ? '' : `  ${rowsText(row)}`;
  return `${`#${row.id} ${tableOf(row)}`.padEnd(tableWidth)}  [${bar}] ${percent}${rows}  ${statusText(s)}`;
}

/** One cli-progress bar per backfill, in the order first seen. */
export class BarsView implements ProgressView {
  private readonly multi: MultiBar;
  private readonly bars = new Map<string, ReturnType<MultiBar['create']>>();
  private tableWidth = 0;

  constructor(stream: NodeJS.WritableStream, barsize = 30) {
    const format = (options: BarOptions, params: BarParams, payload: { snapshot?: ProgressSnapshot }) => {
      if (!payload.snapshot) return '';
      return barText(payload.snapshot, Format.BarFormat(fraction(payload.snapshot.row), options), this.tableWidth);
    };
    this.multi = new MultiBar({
      stream, format, barsize, hideCursor: true, clearOnComplete: false, stopOnComplete: false,
      barCompleteChar: '\u2588', barIncompleteChar: '\u2591', fps: 5, linewrap: false,
    });
  }

  update(snapshots: ProgressSnapshot[]): void {
    this.tableWidth = Math.max(this.tableWidth, ...snapshots.map((s) => `#${s.row.id} ${tableOf(s.row)}`.length));
    for (const s of snapshots) {
      // value/total are cli-progress's own bookkeeping; the text is drawn from the snapshot.
      const total = Math.max(s.row.rowsEstimated ?? 0, s.row.rowsDone, 1);
      const bar = this.bars.get(s.row.id);
      if (bar) {
        bar.setTotal(total);
        bar.update(s.row.rowsDone, { snapshot: s });
      } else {
        this.bars.set(s.row.id, this.multi.create(total, s.row.rowsDone, { snapshot: s }));
      }
    }
    // Draw now rather than at the next tick, so the last state is on screen when we stop.
    this.multi.update();
  }

  say(line: string): void {
    this.multi.log(`${line}\n`);
    this.multi.update();
  }

  stop(): void {
    this.multi.stop();
  }
}
