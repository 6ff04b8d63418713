import { CloudEvent } from 'cloudevents';
import type { Config } from '../config/types';
import { parseBefore } from '../delivery/dead-letters/before';
import { jsonRow, tableHeader, tableLine } from '../delivery/dead-letters/report';
import { DeadLetterStore, type DeadLetterRow } from '../delivery/dead-letters/store';
import { deliverWithRetry } from '../delivery/deliver';
import { DeliveryError, errorMessage } from '../errors';
import { logger, scrubSecrets } from '../logger';
import { createSink } from '../sinks';
import type { Command, CommandOptions } from './command';
import { configure, withDatabase } from './context';

/** What main passes besides the common options (positionals after the command name, and flags). */
type DeadLettersOptions = CommandOptions & Partial<{ args: string[]; id: string; all: boolean; before: string }>;

const PAGE = 200;
const USAGE = `usage: pg-cloudevents dead-letters list [--json]
       pg-cloudevents dead-letters replay (--id ID | --all)
       pg-cloudevents dead-letters purge [--before TIMESTAMP|DURATION]`;

/**
 * The dead-letter table from the command line: look at it, re-deliver through the configured
 * sink (the normal path: `deliverWithRetry` with the delivery policy; a row is removed only once
 * the sink accepted its event), or purge it.
 */
export const deadLettersCommand: Command = {
  summary: 'list, replay (--id ID | --all) or purge [--before T] the dead-letter table',
  async run(input) {
    const options = input as DeadLettersOptions;
    const [action, ...extra] = options.args ?? [];
    const usage = (problem: string) => {
      process.stderr.write(`pg-cloudevents dead-letters: ${problem}\n\n${USAGE}\n`);
      return 2;
    };
    if (extra.length) return usage(`unexpected argument ${JSON.stringify(extra[0])}`);
    switch (action) {
      case 'list':
        return list(configure(options), options.json);
      case 'replay': {
        if (options.id !== undefined && options.all) return usage('give either --id or --all, not both');
        if (options.id === undefined && !options.all) return usage('replay needs --id ID or --all');
        if (options.id !== undefined && !/^\d{1,19}$/.test(options.id)) return usage(`--id must be a row id (a positive integer), got ${JSON.stringify(options.id)}`);
        return replay(configure(options), options.id);
      }
      case 'purge': {
        let before: Date | undefined;
        try {
          before = options.before === undefined ? undefined : parseBefore(options.before);
        } catch (err) {
          return usage(errorMessage(err));
        }
        return purge(configure(options), before);
      }
      case undefined:
        return usage('missing action');
      default:
        return usage(`unknown action ${JSON.stringify(action)}`);
    }
  },
};

/** Every row in id order, a page at a time (the table may be large). */
async function* allRows(store: DeadLetterStore, withEvent: boolean): AsyncGenerator<DeadLetterRow> {
  let afterId: string | undefined;
  for (;;) {
    const rows = await store.list({ limit: PAGE, afterId, withEvent });
    yield* rows;
    if (rows.length < PAGE) return;
    afterId = rows[rows.length - 1].id;
  }
}

async function list(config: Config, json: boolean): Promise<number> {
  return withDatabase(config, async (client) => {
    const store = new DeadLetterStore(client, config.deadLetters);
    let n = 0;
    if (json) {
      // A JSON array, written as it is read.
      for await (const row of allRows(store, true)) {
        process.stdout.write(`${n++ === 0 ? '[\n' : ',\n'}${JSON.stringify(jsonRow(row))}`);
      }
      process.stdout.write(n === 0 ? '[]\n' : '\n]\n');
      return 0;
    }
    for await (const row of allRows(store, false)) {
      if (n++ === 0) process.stdout.write(`${tableHeader()}\n`);
      process.stdout.write(`${tableLine(row)}\n`);
    }
    process.stdout.write(n === 0 ? `no dead letters in ${store.tableName}\n` : `${n} dead letter(s) in ${store.tableName}\n`);
    return 0;
  });
}

async function replay(config: Config, id: string | undefined): Promise<number> {
  const log = logger('dead-letters');
  const sink = createSink(config.handler, config);
  const stop = new AbortController();
  const onSignal = () => stop.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let replayed = 0;
  let failed = 0;
  try {
    return await withDatabase(config, async (client) => {
      const store = new DeadLetterStore(client, config.deadLetters);
      const rows = id === undefined ? allRows(store, true) : single(store, id);
      let lastId = '0';
      for await (const row of rows) {
        if (stop.signal.aborted) break;
        // Rows that stay (failed) are not met again: paging continues after the last id.
        lastId = row.id;
        const outcome = await replayOne(store, sink, config, row, stop.signal);
        if (outcome === 'aborted') break;
        if (outcome === 'delivered') replayed++;
        else failed++;
      }
      if (id !== undefined && lastId === '0') {
        process.stderr.write(`pg-cloudevents dead-letters: no dead letter with id ${id} in ${store.tableName}\n`);
        return 1;
      }
      const interrupted = stop.signal.aborted ? ' (interrupted)' : '';
      process.stdout.write(`replay${interrupted}: ${replayed} delivered and removed, ${failed} failed and kept\n`);
      log.info({ replayed, failed, sink: sink.describe() }, 'replay finished');
      return failed > 0 || stop.signal.aborted ? 1 : 0;
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await sink.close().catch(() => undefined);
  }
}

async function* single(store: DeadLetterStore, id: string): AsyncGenerator<DeadLetterRow> {
  const row = await store.get(id);
  if (row) yield row;
}

async function replayOne(
  store: DeadLetterStore,
  sink: ReturnType<typeof createSink>,
  config: Config,
  row: DeadLetterRow,
  signal: AbortSignal,
): Promise<'delivered' | 'failed' | 'aborted'> {
  const what = `${row.id} (event ${row.eventId})`;
  let event: CloudEvent<unknown>;
  try {
    event = new CloudEvent<unknown>(row.event as never);
  } catch (err) {
    process.stdout.write(`failed    ${what}: the stored event is not a valid CloudEvent: ${errorMessage(err)}; kept\n`);
    return 'failed';
  }
  try {
    const { attempts } = await deliverWithRetry(sink, event, config.delivery, { signal });
    await store.delete(row.id);
    process.stdout.write(`delivered ${what} after ${attempts} attempt(s); removed\n`);
    return 'delivered';
  } catch (err) {
    if (signal.aborted) {
      process.stdout.write(`stopped   ${what}: interrupted before the sink accepted it; kept\n`);
      return 'aborted';
    }
    const attempts = (err as { attempts?: number }).attempts ?? 1;
    const status = err instanceof DeliveryError ? err.status : undefined;
    await store.recordFailure(row.id, { error: err as Error, status, attempts });
    process.stdout.write(`failed    ${what} after ${attempts} attempt(s): ${scrubSecrets(errorMessage(err))}; kept\n`);
    return 'failed';
  }
}

async function purge(config: Config, before: Date | undefined): Promise<number> {
  return withDatabase(config, async (client) => {
    const store = new DeadLetterStore(client, config.deadLetters);
    const n = await store.purge({ before });
    const when = before ? ` created before ${before.toISOString()}` : '';
    process.stdout.write(`purged ${n} dead letter(s)${when} from ${store.tableName}\n`);
    return 0;
  });
}
