/**
 * What the backfill tests of both capture modes share: reading backfill events, waiting for a
 * backfill's state, and the kill -9 case (the leader dies mid-backfill; a new one resumes).
 */
import { expect } from 'chai';
import type { CloudEvent } from 'cloudevents';
import type { BackfillRow, BackfillStore } from '../../../src/sources/backfill/store';
import type { CliProcess } from './process';
import type { Receiver } from './receiver';
import { waitFor } from './postgres';

export type Payload = { data: Record<string, unknown>; signal_kwargs: Record<string, unknown>; db_table: string };
export const payload = (e: CloudEvent<unknown>) => e.data as Payload;
export const isBackfill = (e: CloudEvent<unknown>) => e.id.startsWith('backfill-');

export function until(store: BackfillStore, id: string, states: string[], timeoutMs = 60_000): Promise<BackfillRow> {
  return waitFor(async () => {
    const row = await store.get(id);
    return row && states.includes(row.state) ? row : undefined;
  }, { timeoutMs, intervalMs: 50, what: `backfill ${id} to be ${states.join(' or ')}` });
}

/** A `run` the test can kill and start again, its receiver and the backfills table. */
export interface RestartablePipeline {
  receiver: Receiver;
  cli: CliProcess;
  store: BackfillStore;
  start(): Promise<void>;
}

/**
 * Backfills `table` (ids 1..rows) in chunks of `chunk`, kills the leader with SIGKILL after four
 * chunks, starts it again, and checks: it finishes, every row arrives, at most one chunk is sent
 * again and with the same ids and rows, and each chunk is recorded once. `drained` waits until
 * the source acknowledged everything (the slot, or an empty journal).
 */
export async function expectResumeAfterKill(p: RestartablePipeline, options: {
  table: string; rows: number; chunk: number; rate: number; drained(): Promise<unknown>;
}): Promise<void> {
  const { table, rows, chunk, rate } = options;
  const [bf] = await p.store.request([{ schema: 'public', table, chunkSize: chunk, rate, origin: 'cli' }]);
  await waitFor(async () => ((await p.store.get(bf.id))?.rowsDone ?? 0) >= 4 * chunk || undefined, { timeoutMs: 30_000, intervalMs: 20, what: 'four chunks done' });
  p.cli.kill('SIGKILL');
  await p.cli.exit();
  const atKill = await p.store.get(bf.id);
  expect(atKill!.state).to.equal('running');
  expect(atKill!.rowsDone).to.be.lessThan(rows);
  const seenBefore = new Map(p.receiver.events.filter(isBackfill).map((e) => [e.id, JSON.stringify(payload(e).data)]));
  const countBefore = p.receiver.events.length;

  await p.start();
  const done = await until(p.store, bf.id, ['done', 'failed']);
  expect(done.state, String(done.error)).to.equal('done');
  await options.drained();
  const ids = new Set(p.receiver.accepted.filter(isBackfill).map((e) => payload(e).data.id as number));
  const missing = Array.from({ length: rows }, (_, i) => i + 1).filter((id) => !ids.has(id));
  expect(missing.slice(0, 10), `${missing.length} rows never delivered`).to.deep.equal([]);
  // After the restart: what the first process had sent already and is sent again.
  const repeated = p.receiver.events.slice(countBefore).filter((e) => isBackfill(e) && seenBefore.has(e.id));
  expect(repeated.length, 'rows sent again after the restart').to.be.at.most(chunk);
  for (const e of repeated) expect(JSON.stringify(payload(e).data), `redelivered ${e.id} keeps its id and its row`).to.equal(seenBefore.get(e.id));
  expect(done.rowsDone, 'rows recorded: each chunk once').to.equal(rows);
}
