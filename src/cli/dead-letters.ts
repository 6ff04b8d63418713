import type { Config } from '../config/types';
import { parseBefore } from '../delivery/dead-letters/before';
import { jsonRowText, tableHeader, tableLine } from '../delivery/dead-letters/report';
import { DeadLetterStore, type DeadLetterRow } from '../delivery/dead-letters/store';
import { DEFAULT_DESTINATION, Destinations, requireSink } from '../sinks';
import { resolveBrokerConn } from '../config/broker-conn';
import type { Command, OptionSpec } from './command';
import { configure, withDatabase } from './context';
import { knexOn } from '../pg/schema/knex';
import { REPLAY_DEFAULT_RETRY, replay } from './dead-letters-replay';
import { ActionReplay } from '../routing/triggers';
import { WORKFLOW_DESTINATION_PREFIX, workflowReplayRefusal } from '../routing/workflows/names';
import { tableRulesOf } from '../trigger-rules';
import { createRelationResolver, textQuery } from '../routing/triggers/relations';
import { createPool } from '../pg/db';
import { REPLICATION_SESSION_OPTIONS } from '../sources/logical/stream';

/** Only DATABASE_URL (and, to replay, a sink or handler): no tables. */
const NEEDS = { tables: false };
const PAGE = 200;
const MAX_RETRY = 100;
const ROW_ID = /^\d{1,19}$/;

const JSON_OPTION: OptionSpec = { flags: '--json', description: 'machine-readable output' };

function rowId(text: string): string {
  if (!ROW_ID.test(text)) throw new Error('must be a row id (a positive integer, as `dead-letters list` shows)');
  return text;
}

function retryCount(text: string): number {
  if (!/^\d{1,3}$/.test(text) || Number(text) > MAX_RETRY) throw new Error(`must be a whole number from 0 to ${MAX_RETRY}`);
  return Number(text);
}

/**
 * The dead-letter table from the command line: look at it, re-deliver through the configured
 * sink (./dead-letters-replay.ts: bounded retries; a row is removed only once the sink accepted
 * its event), or purge it.
 */
export const deadLettersCommand: Command = {
  summary: 'list, replay or purge the dead-letter table',
  commands: {
    list: {
      summary: 'show the dead letters: id, time, event id, destination, subject, status, attempts, error',
      options: [{ ...JSON_OPTION, description: 'every column as JSON, with the event as it was sent' }],
      run: (options) => list(configure(options, NEEDS), options.json),
    },
    replay: {
      summary: 'deliver dead letters again, each to the destination it recorded; a row is removed once accepted',
      options: [
        { flags: '--id <id>', description: 'replay one row', parse: rowId },
        { flags: '--all', description: 'replay every row, in id order', conflicts: ['id'] },
        { flags: '--destination <name>', description: 'only rows recorded for this destination (as list shows it)' },
        { flags: '--retry <n>', description: `retries per event (default ${REPLAY_DEFAULT_RETRY}; delivery.retry does not apply)`, parse: retryCount },
        { ...JSON_OPTION, description: 'print one JSON object with a result per row; progress goes to stderr' },
      ],
      async run(options) {
        if (options.id === undefined && !options.all) options.usage('replay needs --id <id> or --all');
        const { id } = options;
        const config = await resolveBrokerConn(configure(options, NEEDS));
        requireSink(config);
        // Each row goes back to the destination it recorded, resolved by name once; a trigger
        // action's row goes through its rule again, to the default destination (README "Triggers").
        const destinations = new Destinations(config);
        // Relations are read again, now (as at delivery), with the events' session settings.
        const relationPool = createPool(config.databaseUrl, 1, REPLICATION_SESSION_OPTIONS);
        const relations = createRelationResolver(config, textQuery(relationPool));
        let actions: ActionReplay | undefined;
        try {
          // The file's rules and the triggers table's, as it holds them now (README "Rules at runtime").
          actions = new ActionReplay(config, relations, await tableRulesOf(config));
          const replaying = actions;
          return await replay(config, {
            // A workflow's rows are refused by sinkFor (README "Workflows"): they need no destination of their own.
            destination: (name) => destinations.get(name.startsWith('trigger:') || name.startsWith(WORKFLOW_DESTINATION_PREFIX) ? DEFAULT_DESTINATION : name),
            sinkFor: (event, destination) => workflowReplayRefusal(event) ?? replaying.sinkFor(event, destination.sink),
            id,
            only: options.destination,
            retry: options.retry ?? REPLAY_DEFAULT_RETRY,
            json: options.json,
            rows: (store) => (id === undefined ? allRows(store, true) : single(store, id)),
          });
        } finally {
          await actions?.close().catch(() => undefined);
          await destinations.close().catch(() => undefined);
          await relationPool.end().catch(() => undefined);
        }
      },
    },
    purge: {
      summary: 'delete dead letters: all of them, one row, or those created before a time',
      options: [
        { flags: '--id <id>', description: 'delete one row', parse: rowId },
        {
          flags: '--before <time>',
          description: 'only rows created before this ISO 8601 timestamp, or older than a duration such as P7D',
          parse: (text) => parseBefore(text),
          conflicts: ['id'],
        },
      ],
      run: (options) => purge(configure(options, NEEDS), { before: options.before, id: options.id }),
    },
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
    const store = new DeadLetterStore(knexOn(client), config.deadLetters);
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
    const store = new DeadLetterStore(knexOn(client), config.deadLetters);
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
