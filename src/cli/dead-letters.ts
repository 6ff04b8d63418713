import type { Config } from '../config/types';
import { parseBefore } from '../delivery/dead-letters/before';
import { jsonRowText, tableHeader, tableLine } from '../delivery/dead-letters/report';
import { DeadLetterStore, type DeadLetterRow } from '../delivery/dead-letters/store';
import { errorMessage } from '../errors';
import type { Command, CommandOptions } from './command';
import { configure, withDatabase } from './context';
import { REPLAY_DEFAULT_RETRY, replay } from './dead-letters-replay';

/** What main passes besides the common options (positionals after the command name, and flags). */
type DeadLettersOptions = CommandOptions & Partial<{ args: string[]; id: string; all: boolean; before: string; retry: string }>;

/** Only DATABASE_URL (and, to replay, a sink or handler): no tables. */
const NEEDS = { tables: false };
const PAGE = 200;
const MAX_RETRY = 100;
const ROW_ID = /^\d{1,19}$/;
const USAGE = `usage: pg-cloudevents dead-letters list [--json]
       pg-cloudevents dead-letters replay (--id ID | --all) [--retry N] [--json]
       pg-cloudevents dead-letters purge [--id ID | --before TIMESTAMP|DURATION]`;

/**
 * The dead-letter table from the command line: look at it, re-deliver through the configured
 * sink (./dead-letters-replay.ts: bounded retries; a row is removed only once the sink accepted
 * its event), or purge it.
 */
export const deadLettersCommand: Command = {
  summary: 'list, replay (--id ID | --all) [--retry N] or purge [--id ID | --before T] the dead-letter table',
  async run(input) {
    const options = input as DeadLettersOptions;
    const [action, ...extra] = options.args ?? [];
    const usage = (problem: string) => {
      process.stderr.write(`pg-cloudevents dead-letters: ${problem}\n\n${USAGE}\n`);
      return 2;
    };
    if (extra.length) return usage(`unexpected argument ${JSON.stringify(extra[0])}`);
    const badId = options.id !== undefined && !ROW_ID.test(options.id)
      ? `--id must be a row id (a positive integer), got ${JSON.stringify(options.id)}`
      : undefined;
    switch (action) {
      case 'list':
        return list(configure(options, NEEDS), options.json);
      case 'replay': {
        if (options.id !== undefined && options.all) return usage('give either --id or --all, not both');
        if (options.id === undefined && !options.all) return usage('replay needs --id ID or --all');
        if (badId) return usage(badId);
        const retry = options.retry === undefined ? REPLAY_DEFAULT_RETRY : Number(options.retry);
        if (options.retry !== undefined && (!/^\d{1,3}$/.test(options.retry) || retry > MAX_RETRY)) {
          return usage(`--retry must be a whole number from 0 to ${MAX_RETRY}, got ${JSON.stringify(options.retry)}`);
        }
        const { id } = options;
        return replay(configure(options, NEEDS), {
          id,
          retry,
          json: options.json,
          rows: (store) => (id === undefined ? allRows(store, true) : single(store, id)),
        });
      }
      case 'purge': {
        if (options.id !== undefined && options.before !== undefined) return usage('give either --id or --before, not both');
        if (badId) return usage(badId);
        let before: Date | undefined;
        try {
          before = options.before === undefined ? undefined : parseBefore(options.before);
        } catch (err) {
          return usage(errorMessage(err));
        }
        return purge(configure(options, NEEDS), { before, id: options.id });
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

async function* single(store: DeadLetterStore, id: string): AsyncGenerator<DeadLetterRow> {
  const row = await store.get(id);
  if (row) yield row;
}

async function list(config: Config, json: boolean): Promise<number> {
  return withDatabase(config, async (client) => {
    const store = new DeadLetterStore(client, config.deadLetters);
    let n = 0;
    if (json) {
      // A JSON array, written as it is read.
      for await (const row of allRows(store, true)) {
        process.stdout.write(`${n++ === 0 ? '[\n' : ',\n'}${jsonRowText(row)}`);
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

async function purge(config: Config, { before, id }: { before?: Date; id?: string }): Promise<number> {
  return withDatabase(config, async (client) => {
    const store = new DeadLetterStore(client, config.deadLetters);
    if (id !== undefined) {
      if (await store.delete(id)) {
        process.stdout.write(`purged dead letter ${id} from ${store.tableName}\n`);
        return 0;
      }
      process.stderr.write(`pg-cloudevents dead-letters: no dead letter with id ${id} in ${store.tableName}\n`);
      return 1;
    }
    const n = await store.purge({ before });
    const when = before ? ` created before ${before.toISOString()}` : '';
    process.stdout.write(`purged ${n} dead letter(s)${when} from ${store.tableName}\n`);
    return 0;
  });
}
