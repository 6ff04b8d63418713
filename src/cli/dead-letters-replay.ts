import type { CloudEvent } from 'cloudevents';
import type { Config, DeliveryConfig } from '../config/types';
import { eventFromStoredText } from '../delivery/dead-letters/event-text';
import { DeadLetterStore, type DeadLetterRow } from '../delivery/dead-letters/store';
import { deliverWithRetry, type DeliveryFailure } from '../delivery/deliver';
import { DeliveryError, errorMessage } from '../errors';
import { logger, scrubSecrets } from '../logger';
import type { Destination, Sink } from '../sinks/types';
import { withDatabase } from './context';
import { knexOn } from '../pg/schema/knex';

/** Retries per event when `--retry` is not given: a replay is run by a person, who waits for it. */
export const REPLAY_DEFAULT_RETRY = 3;
/** The longest wait between two attempts of a replay, whatever backoffMax and Retry-After say. */
export const REPLAY_MAX_WAIT_MS = 5_000;
/** How many kept ids the summary names. */
const NAMED_IDS = 50;

/**
 * The delivery policy with bounded retries and waits capped at REPLAY_MAX_WAIT_MS, so that a
 * replay against a sink that stays down ends promptly (`delivery.retry` unset retries forever).
 */
export function replayPolicy(delivery: DeliveryConfig, retry: number): DeliveryConfig {
  return {
    ...delivery,
    retry,
    backoffMaxMs: Math.min(delivery.backoffMaxMs, REPLAY_MAX_WAIT_MS),
    retryAfterMaxMs: Math.min(delivery.retryAfterMaxMs ?? REPLAY_MAX_WAIT_MS, REPLAY_MAX_WAIT_MS),
  };
}

export interface ReplayOptions {
  /**
   * Each row's destination, by the name it recorded (README "Destination names"), resolved once
   * per name; throws when the name resolves to nothing (a broker since removed). The caller closes
   * what it opened.
   */
  destination(name: string): Destination;
  /**
   * The sink for one stored event, when it is not its destination's own (a trigger action's event
   * goes through its rule again); an Error when it cannot be replayed. Default: the destination's sink.
   */
  sinkFor?(event: CloudEvent<unknown>, destination: Destination): Sink | Error;
  /** One row; every row when undefined. */
  id?: string;
  /** Only rows recorded for this destination. */
  only?: string;
  retry: number;
  json: boolean;
  /** Every row in id order, a page at a time. */
  rows(store: DeadLetterStore): AsyncIterable<DeadLetterRow>;
}

type Outcome = 'delivered' | 'failed' | 'skipped' | 'interrupted' | 'unknownDestination';

interface Result {
  row: DeadLetterRow;
  outcome: Outcome;
  attempts: number;
  status?: number;
  error?: string;
  /** A retriable failure that outlived the retries: the sink itself is in trouble, stop sending to it. */
  sinkDown?: boolean;
}

/**
 * `dead-letters replay`: each row's event, rebuilt from its stored text, back to the destination
 * the row recorded, with bounded retries (the destination's own policy, when it has one); a row is
 * removed once the sink accepted its event. Undecodable changes are skipped (they have no event);
 * a row whose destination no longer resolves is kept, naming it, never sent elsewhere. A retriable
 * failure that outlives the retries (sink down, 5xx, 429) stops sending to that destination: its
 * later rows would only wait for the same sink. Exit 0 when every row asked for was delivered and
 * removed, else 1 with what is kept named.
 */
export async function replay(config: Config, options: ReplayOptions): Promise<number> {
  const log = logger('dead-letters');
  const out = options.json ? jsonOutput() : textOutput();
  const stop = new AbortController();
  const onSignal = () => stop.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const counts = { delivered: 0, failed: 0, skipped: 0, notTried: 0, unknownDestination: 0 };
  const kept: string[] = [];
  // Per destination name: where it goes, or why it resolves to nothing; and whether it is down.
  const resolved = new Map<string, { destination?: Destination; error?: string }>();
  const down = new Set<string>();
  const unknown = new Set<string>();
  const resolve = (name: string) => {
    let r = resolved.get(name);
    if (!r) {
      try {
        r = { destination: options.destination(name) };
      } catch (err) {
        r = { error: scrubSecrets(errorMessage(err)) };
      }
      resolved.set(name, r);
    }
    return r;
  };
  try {
    return await withDatabase(config, async (client) => {
      const store = new DeadLetterStore(knexOn(client), config.deadLetters);
      let lastId: string | undefined;
      let interruptedId: string | undefined;
      let met = false;
      let stoppedBy: Result | undefined;
      for await (const row of options.rows(store)) {
        if (stop.signal.aborted) break;
        met = true;
        if (options.only !== undefined && row.destination !== options.only) continue;
        // Rows that stay (failed) are not met again: paging continues after the last id.
        lastId = row.id;
        if (down.has(row.destination)) {
          counts.notTried++;
          continue;
        }
        let result: Result;
        if (row.undecodable) result = skip(row);
        else {
          const { destination, error } = resolve(row.destination);
          if (!destination) {
            unknown.add(row.destination);
            result = { row, outcome: 'unknownDestination', attempts: 0, error: `destination ${row.destination} not found: ${error}` };
          } else {
            const policy = replayPolicy(destination.policy ?? config.delivery, options.retry);
            result = await replayOne({ store, sink: destination.sink, sinkFor: options.sinkFor && ((event) => options.sinkFor!(event, destination)), policy, row, signal: stop.signal, out });
          }
        }
        out.result(result, store.tableName);
        if (result.outcome === 'interrupted') {
          interruptedId = row.id;
          break;
        }
        if (result.outcome === 'delivered') counts.delivered++;
        else {
          counts[result.outcome]++;
          kept.push(row.id);
        }
        if (result.sinkDown && options.id === undefined) {
          stoppedBy ??= result;
          down.add(row.destination);
        }
      }
      if (options.id !== undefined && !met) {
        process.stderr.write(`pg-cloudevents dead-letters: no dead letter with id ${options.id} in ${store.tableName}\n`);
        return 1;
      }
      const interrupted = stop.signal.aborted;
      if (interrupted && options.id === undefined) {
        // The rows not met yet, and the interrupted one (still in the table): not tried.
        const after = interruptedId !== undefined ? String(BigInt(interruptedId) - 1n) : lastId;
        counts.notTried += await store.count({ afterId: after, destination: options.only });
      }
      out.summary({
        ...counts, interrupted, kept, lastId, stoppedBy, table: store.tableName, retry: options.retry,
        down: [...down], unknown: [...unknown],
      });
      log.debug({ ...counts, interrupted, destinations: [...resolved.keys()] }, 'replay finished');
      const everything = counts.failed === 0 && counts.skipped === 0 && counts.notTried === 0 &&
        counts.unknownDestination === 0 && !interrupted;
      return everything ? 0 : 1;
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function skip(row: DeadLetterRow): Result {
  return { row, outcome: 'skipped', attempts: 0, error: row.error };
}

async function replayOne(args: {
  store: DeadLetterStore;
  sink: Sink;
  sinkFor?: (event: CloudEvent<unknown>) => Sink | Error;
  policy: DeliveryConfig;
  row: DeadLetterRow;
  signal: AbortSignal;
  out: Output;
}): Promise<Result> {
  const { store, policy, row, signal, out } = args;
  if (row.supersededBySequence !== null) out.superseded(row);
  let event;
  try {
    event = eventFromStoredText(row.event ?? '');
  } catch (err) {
    return { row, outcome: 'failed', attempts: 0, error: `the stored event is not a valid CloudEvent: ${errorMessage(err)}` };
  }
  const sink = args.sinkFor ? args.sinkFor(event) : args.sink;
  if (sink instanceof Error) return { row, outcome: 'failed', attempts: 0, error: sink.message };
  try {
    const { attempts } = await deliverWithRetry(sink, event, policy, {
      signal,
      onAttemptFailed: (failure) => out.attemptFailed(row, failure.attempt, policy.retry! + 1, failure.error, failure.retryInMs),
    });
    await store.delete(row.id);
    return { row, outcome: 'delivered', attempts };
  } catch (err) {
    if (signal.aborted) return { row, outcome: 'interrupted', attempts: (err as { attempts?: number }).attempts ?? 0 };
    const failure = err as DeliveryFailure;
    const attempts = failure.attempts ?? 1;
    const status = err instanceof DeliveryError ? err.status : undefined;
    await store.recordFailure(row.id, { error: err as Error, status, attempts });
    return {
      row, outcome: 'failed', attempts, status, error: scrubSecrets(errorMessage(err)),
      sinkDown: err instanceof DeliveryError && err.retriable,
    };
  }
}

interface Summary {
  delivered: number;
  failed: number;
  skipped: number;
  notTried: number;
  unknownDestination: number;
  /** Destinations that stayed down: their later rows were not tried. */
  down: string[];
  /** Destination names that resolve to nothing: their rows are kept. */
  unknown: string[];
  interrupted: boolean;
  kept: string[];
  lastId?: string;
  stoppedBy?: Result;
  table: string;
  retry: number;
}

interface Output {
  superseded(row: DeadLetterRow): void;
  attemptFailed(row: DeadLetterRow, attempt: number, of: number, error: Error, retryInMs?: number): void;
  result(result: Result, table: string): void;
  summary(summary: Summary): void;
}

const what = (row: DeadLetterRow) => `${row.id} (event ${row.eventId})`;

function supersededText(row: DeadLetterRow): string {
  return `${what(row)}: a newer event of ${row.partitionKey} (sequence ${row.supersededBySequence}) was delivered ` +
    'after it was dead-lettered; replaying it delivers the older state last';
}

function skippedText(row: DeadLetterRow, table: string): string {
  return `${what(row)}: an undecodable change has no event and cannot be replayed (${row.error}); ` +
    `its raw row is kept in ${table}, row ${row.id}, column raw_change (dead-letters list --json shows it as rawChange)`;
}

function attemptText(row: DeadLetterRow, attempt: number, of: number, error: Error, retryInMs?: number): string {
  const next = retryInMs === undefined ? '' : `; next attempt in ${retryInMs} ms`;
  return `attempt ${attempt}/${of} for ${what(row)} failed: ${scrubSecrets(errorMessage(error))}${next}`;
}

function keptText(s: Summary): string | undefined {
  const total = s.kept.length + s.notTried;
  if (total === 0) return undefined;
  const named = s.kept.slice(0, NAMED_IDS).join(', ') + (s.kept.length > NAMED_IDS ? `, … (${s.kept.length - NAMED_IDS} more)` : '');
  const parts = [s.kept.length ? `id${s.kept.length > 1 ? 's' : ''} ${named}` : '', s.notTried ? `${s.notTried} not tried` : '']
    .filter(Boolean);
  return `kept in ${s.table}: ${total} dead letter(s): ${parts.join(' and ')}`;
}

function textOutput(): Output {
  const print = (line: string) => process.stdout.write(`${line}\n`);
  return {
    superseded: (row) => print(`warning   ${supersededText(row)}`),
    attemptFailed: (...args) => print(`retrying  ${attemptText(...args)}`),
    result(r, table) {
      if (r.outcome === 'delivered') print(`delivered ${what(r.row)} after ${r.attempts} attempt(s); removed`);
      else if (r.outcome === 'failed') print(`failed    ${what(r.row)} after ${r.attempts} attempt(s): ${r.error}; kept`);
      else if (r.outcome === 'skipped') print(`skipped   ${skippedText(r.row, table)}`);
      else if (r.outcome === 'unknownDestination') print(`kept      ${what(r.row)}: ${r.error}; not sent elsewhere`);
      else print(`stopped   ${what(r.row)}: interrupted before the sink accepted it; kept`);
    },
    summary(s) {
      if (s.stoppedBy) {
        print(`stopped: the sink still failed after ${s.retry} retr${s.retry === 1 ? 'y' : 'ies'} (${s.stoppedBy.error}); ` +
          `the ${s.notTried} later dead letter(s) were not tried (destination ${s.down.join(', ')})`);
      }
      if (s.unknown.length) {
        print(`not found: destination(s) ${s.unknown.join(', ')} (no such broker or handler in this configuration); ` +
          `their ${s.unknownDestination} dead letter(s) are kept`);
      }
      const extra = [
        s.skipped ? `, ${s.skipped} undecodable skipped and kept` : '',
        s.unknownDestination ? `, ${s.unknownDestination} for an unknown destination kept` : '',
        s.notTried ? `, ${s.notTried} not tried and kept` : '',
      ].join('');
      print(`replay${s.interrupted ? ' (interrupted)' : ''}: ${s.delivered} delivered and removed, ${s.failed} failed and kept${extra}`);
      const kept = keptText(s);
      if (kept) print(kept);
    },
  };
}

/**
 * `--json`: stdout is one JSON object, written as the replay goes: `results` (one object per row
 * handled, `superseded` flagging a newer delivery of the same key), then the counts and the kept
 * ids. Progress and warnings go to stderr as text.
 */
function jsonOutput(): Output {
  const note = (line: string) => process.stderr.write(`${line}\n`);
  let n = 0;
  return {
    superseded: (row) => note(`warning: ${supersededText(row)}`),
    attemptFailed: (...args) => note(attemptText(...args)),
    result(r, table) {
      if (r.outcome === 'skipped') note(`skipped: ${skippedText(r.row, table)}`);
      if (r.outcome === 'unknownDestination') note(`kept: ${what(r.row)}: ${r.error}`);
      const item = {
        id: r.row.id,
        eventId: r.row.eventId,
        destination: r.row.destination,
        partitionKey: r.row.partitionKey,
        sequence: r.row.sequence,
        outcome: r.outcome,
        attempts: r.attempts,
        status: r.status ?? null,
        error: r.error ?? null,
        undecodable: r.row.undecodable,
        superseded: r.row.supersededBySequence !== null,
        supersededBySequence: r.row.supersededBySequence,
      };
      process.stdout.write(`${n++ === 0 ? '{"results":[\n' : ',\n'}${JSON.stringify(item)}`);
    },
    summary(s) {
      const { delivered, failed, skipped, notTried, unknownDestination, interrupted, kept } = s;
      const tail = JSON.stringify({
        delivered, failed, skipped, notTried, unknownDestination, interrupted, stopped: Boolean(s.stoppedBy), kept,
        unknownDestinations: s.unknown,
      });
      process.stdout.write(`${n === 0 ? '{"results":[' : '\n'}],${tail.slice(1)}\n`);
      const keptLine = keptText(s);
      if (keptLine) note(keptLine);
    },
  };
}
