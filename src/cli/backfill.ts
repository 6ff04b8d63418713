/**
 * `pg-cloudevents backfill` (README "Backfill"): requests a backfill of captured tables (checked
 * first: src/sources/backfill/request.ts) and follows its progress until it ends, or returns at
 * once with `--detach`; `backfill list|show|cancel` manage requests. The leader of the slot's
 * `run` performs them; this command only writes requests and reads the backfills table, so it
 * works from anywhere DATABASE_URL reaches. Interrupting the wait leaves the backfill running.
 */
import type { Client } from 'pg';
import type { Config } from '../config/types';
import { knexOn } from '../pg/schema/knex';
import { schemaNames } from '../pg/schema/names';
import { sleep } from '../retry';
import { parseChunk, parseRate, validateBackfill } from '../sources/backfill/request';
import { BackfillError, BackfillStore, DEFAULT_CHUNK_SIZE, DEFAULT_LIST_LIMIT, type BackfillRow } from '../sources/backfill/store';
import { backfillJson, tableOf } from '../sources/backfill/view';
import { BarsView, LinesView, progressLine, RateMeter, type ProgressSnapshot, type ProgressView } from './backfill-progress';
import type { Command, CommandOptions, OptionSpec } from './command';
import { configure, withDatabase } from './context';

/** How often the table is read while following (the leader writes after each delivered chunk). */
export const POLL_INTERVAL_MS = 500;

type BackfillOptions = CommandOptions & {
  table?: string[];
  where?: string;
  chunk?: number;
  rate?: number;
  detach?: boolean;
  limit?: number;
};

const JSON_OPTION: OptionSpec = { flags: '--json', description: 'machine-readable output' };
const ID_ARGUMENT = { name: 'id', description: 'the backfill\'s id (as the request and `backfill list` show it)' };

export const backfillCommand: Command = {
  summary: 'emit events for rows that already exist (resumable, with progress); list, show, cancel',
  options: [
    { flags: '--table <table>', description: 'a captured table to backfill, schema.table (repeat for several)', parse: (text, previous) => [...((previous as string[] | undefined) ?? []), text] },
    { flags: '--where <condition>', description: 'only rows matching this SQL condition, e.g. "created_at > now() - interval \'30 days\'"' },
    { flags: '--chunk <rows>', description: `rows read and sent per chunk, 1 to 100000 (default ${DEFAULT_CHUNK_SIZE})`, parse: (text) => parseChunk(text) },
    { flags: '--rate <rate>', description: 'at most this many rows: 5000/s, 5000 (per second) or 300/m (default: no limit)', parse: (text) => parseRate(text) },
    { flags: '--detach', description: 'return once requested instead of following the progress' },
    { flags: '--json', description: 'print the backfills as JSON when they end (or at once with --detach), not the progress' },
  ],
  run: (options) => request(options as BackfillOptions),
  commands: {
    list: {
      summary: 'the backfills of this slot, newest first: id, table, state, rows, origin, condition',
      options: [{ flags: '--limit <n>', description: `at most n (default ${DEFAULT_LIST_LIMIT})`, parse: positiveInteger }, JSON_OPTION],
      run: (options) => withStore(options, (store) => list(store, options as BackfillOptions)),
    },
    show: {
      summary: 'one backfill: state, progress, condition, chunk and rate, times, error',
      argument: ID_ARGUMENT,
      options: [JSON_OPTION],
      run: (options) => withStore(options, (store, config) => show(store, options as BackfillOptions, config.capture.slot)),
    },
    cancel: {
      summary: 'cancel a pending or running backfill: the leader stops before its next chunk (events sent stay sent)',
      argument: ID_ARGUMENT,
      options: [JSON_OPTION],
      run: (options) => withStore(options, async (store) => {
        const row = await store.cancel(options.name as string);
        if (options.json) out(JSON.stringify(backfillJson(row)));
        else if (row.startedAt === null) out(`backfill ${row.id} (${tableOf(row)}) cancelled before it started`);
        else out(`backfill ${row.id} (${tableOf(row)}) cancelled after ${row.rowsDone} rows: the leader stops before its next chunk; the events it sent stay sent`);
        return 0;
      }),
    },
  },
};

function positiveInteger(text: string): number {
  if (!/^[1-9][0-9]{0,5}$/.test(text)) throw new Error('must be a whole number from 1 to 999999');
  return Number(text);
}

const out = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

/** The slot's backfills on one connection; needs only DATABASE_URL (and the slot's name). */
async function withStore(options: CommandOptions, use: (store: BackfillStore, config: Config) => Promise<number>): Promise<number> {
  // commander lets a sub-command's arguments fill its parent's options: say they do not apply.
  const misplaced = (['table', 'where', 'chunk', 'rate', 'detach'] as const).filter((k) => (options as BackfillOptions)[k] !== undefined);
  if (misplaced.length > 0) options.usage(`${misplaced.map((k) => `--${k}`).join(', ')} ${misplaced.length === 1 ? 'goes' : 'go'} with a request (backfill --table T ...), not here`);
  const config = configure(options, { tables: false });
  return withDatabase(config, (client, resolved) => use(storeOn(client, resolved), resolved));
}

function storeOn(client: Client, config: Config): BackfillStore {
  return new BackfillStore(knexOn(client), schemaNames(config), config.capture.slot);
}

async function request(options: BackfillOptions): Promise<number> {
  if (!options.table?.length) options.usage('backfill needs --table <schema.table> (or a sub-command: list, show, cancel)');
  const config = configure(options);
  return withDatabase(config, async (client, resolved) => {
    const requests = await validateBackfill(client, resolved, { tables: options.table!, where: options.where, chunk: options.chunk, rate: options.rate }, 'cli');
    const store = storeOn(client, resolved);
    const rows = await store.request(requests);
    const slot = resolved.capture.slot;
    if (!options.json) {
      for (const row of rows) out(`requested backfill ${row.id}: ${tableOf(row)}${row.where === null ? '' : ` where ${row.where}`}, chunks of ${row.chunkSize} rows${row.rate === null ? '' : `, at most ${row.rate} rows/s`}; the leader of slot ${slot} performs it`);
    }
    if (options.detach) {
      if (options.json) out(JSON.stringify({ backfills: rows.map(backfillJson) }));
      else out(followHint(rows));
      return 0;
    }
    const stream = process.stderr;
    const view: ProgressView = options.json ? { update: () => undefined, say: () => undefined, stop: () => undefined }
      : stream.isTTY ? new BarsView(stream) : new LinesView(stream);
    const final = await follow(store, rows, view);
    // 128 + the signal's number, as a shell reports an interrupted command.
    if ('signal' in final) return final.signal === 'SIGINT' ? 130 : 143;
    if (options.json) out(JSON.stringify({ backfills: final.rows.map(backfillJson) }));
    else for (const row of final.rows) out(progressLine({ row }));
    const unfinished = final.rows.filter((r) => r.state !== 'done');
    for (const row of unfinished) {
      err(row.state === 'failed'
        ? `pg-cloudevents backfill: backfill ${row.id} (${tableOf(row)}) failed: ${row.error ?? 'no reason recorded'}`
        : `pg-cloudevents backfill: backfill ${row.id} (${tableOf(row)}) was cancelled after ${row.rowsDone} rows`);
    }
    return unfinished.length > 0 ? 1 : 0;
  });
}

function followHint(rows: BackfillRow[]): string {
  const ids = rows.map((r) => r.id);
  return `follow: pg-cloudevents backfill show ${ids[0]} (or backfill list); cancel: ${ids.map((id) => `pg-cloudevents backfill cancel ${id}`).join('; ')}`;
}

/**
 * Reads the rows until every one has ended, drawing each reading. SIGINT/SIGTERM stops the
 * watching only: the backfill goes on, and we say how to follow or cancel it. The handlers are
 * ours while we watch, so the signal never kills the process with the terminal left in a bar.
 */
async function follow(store: BackfillStore, requested: BackfillRow[], view: ProgressView): Promise<{ rows: BackfillRow[] } | { signal: NodeJS.Signals }> {
  const meters = new Map(requested.map((r) => [r.id, new RateMeter()]));
  const stop = new AbortController();
  let signal: NodeJS.Signals = 'SIGINT';
  const onSignal = (name: NodeJS.Signals) => {
    signal = name;
    stop.abort();
  };
  for (const name of ['SIGINT', 'SIGTERM'] as const) process.once(name, onSignal);
  let rows = requested;
  const since = Date.now();
  try {
    for (;;) {
      const fresh: BackfillRow[] = [];
      for (const r of rows) fresh.push((await store.get(r.id)) ?? r);
      rows = fresh;
      const now = Date.now();
      for (const r of rows) if (r.state === 'running') meters.get(r.id)!.add(now, r.rowsDone);
      const active = rows.some((r) => r.state === 'pending') ? await store.active() : [];
      view.update(rows.map((row) => snapshot(row, meters.get(row.id)!, active, now - since)), now);
      if (rows.every((r) => r.state !== 'pending' && r.state !== 'running')) return { rows };
      if (await sleep(POLL_INTERVAL_MS, stop.signal).then(() => false, () => true)) break;
    }
  } finally {
    for (const name of ['SIGINT', 'SIGTERM'] as const) process.off(name, onSignal);
    view.stop();
  }
  const going = rows.filter((r) => r.state === 'pending' || r.state === 'running');
  err(`stopped following; ${going.map((r) => `backfill ${r.id} (${tableOf(r)})`).join(', ')} ${going.length === 1 ? 'goes' : 'go'} on in the leader of slot ${rows[0].slot}`);
  err(followHint(going));
  return { signal };
}

/** The row with its measured rate, and for a pending one the backfill the leader performs first. */
function snapshot(row: BackfillRow, meter: RateMeter, active: BackfillRow[], watchedMs: number): ProgressSnapshot {
  if (row.state !== 'pending') return { row, rate: meter.rate() };
  // The leader performs a running (interrupted) one first, else the oldest pending: see NEXT_SQL.
  const first = active.find((a) => a.state === 'running') ?? active[0];
  if (first && first.id !== row.id) return { row, behind: `${first.id} (${tableOf(first)})` };
  return { row, waitedMs: watchedMs };
}

async function list(store: BackfillStore, options: BackfillOptions): Promise<number> {
  const rows = await store.list(options.limit ?? DEFAULT_LIST_LIMIT);
  if (options.json) {
    out(JSON.stringify({ backfills: rows.map(backfillJson) }));
    return 0;
  }
  if (rows.length === 0) {
    out('no backfills (request one: pg-cloudevents backfill --table <schema.table>)');
    return 0;
  }
  const table = [['ID', 'TABLE', 'STATE', 'ROWS', 'EVENTS', 'ORIGIN', 'CREATED', 'WHERE'], ...rows.map((r) => [
    r.id, tableOf(r), r.state, r.rowsEstimated === null || r.state === 'done' ? String(r.rowsDone) : `${r.rowsDone}/~${r.rowsEstimated}`,
    String(r.rowsEmitted), r.origin, r.createdAt.toISOString().replace(/\.\d+Z$/, 'Z'), r.where ?? '',
  ])];
  const widths = table[0].map((_, i) => Math.max(...table.map((cells) => cells[i].length)));
  for (const cells of table) out(cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd());
  return 0;
}

async function show(store: BackfillStore, options: BackfillOptions, slot: string): Promise<number> {
  const row = await store.get(options.name as string);
  if (!row) throw new BackfillError('missing', `backfill ${options.name as string} does not exist (for slot ${slot})`);
  if (options.json) {
    out(JSON.stringify(backfillJson(row)));
    return 0;
  }
  const j = backfillJson(row);
  out(progressLine({ row }));
  const fields: [string, unknown][] = [
    ['slot', j.slot], ['where', j.where ?? '(all rows)'], ['chunk', `${j.chunkSize} rows`], ['rate', j.rate === null ? 'no limit' : `${j.rate} rows/s`],
    ['origin', j.origin], ['rows read', j.rowsDone], ['events sent', j.rowsEmitted], ['rows estimated', j.rowsEstimated ?? '-'],
    ['last key', j.lastKey === null ? '-' : JSON.stringify(j.lastKey)], ['created', j.createdAt], ['started', j.startedAt ?? '-'],
    ['updated', j.updatedAt], ['finished', j.finishedAt ?? '-'], ...(j.error === null ? [] : [['error', j.error] as [string, unknown]]),
  ];
  for (const [k, v] of fields) out(`  ${`${k}:`.padEnd(16)}${String(v)}`);
  return 0;
}
