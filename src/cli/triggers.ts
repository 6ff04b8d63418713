/**
 * `pg-cloudevents triggers list|test` (README "Triggers", "Commands"): the rules this
 * configuration and database hold (the file's and the triggers table's, invalid rows with their
 * problems), and a dry run of one rule over a row given on the command line, which says whether it
 * fires and what each action would send, through the same routing and rendering code as `run`,
 * with every action's target replaced by a recorder: nothing is sent.
 */
import type { CloudEvent } from 'cloudevents';
import type { Client } from 'pg';
import type { BrokerActionConfig, Config, TriggerConfig, WebhookActionConfig } from '../config/types';
import { displayName, parseTableName, tableKey } from '../config/tables';
import { errorMessage } from '../errors';
import { eventBuilder } from '../events/build';
import { TABLE_KEYS_SQL } from '../pg/catalog';
import { createPool } from '../pg/db';
import { createRelationResolver, textQuery } from '../routing/triggers/relations';
import { REPLICATION_SESSION_OPTIONS } from '../sources/logical/stream';
import { knexOn } from '../pg/schema/knex';
import { schemaNames } from '../pg/schema/names';
import { actionDestinationName, derivedEvent, rulesRoute, type TargetFactory } from '../routing/triggers';
import { plainMessage } from '../routing/triggers/actions/message';
import { compileRule, matchesChange } from '../routing/triggers/rules';
import type { KindContext } from '../routing/contract';
import type { Destination, PlainMessage, Sink } from '../sinks/types';
import type { Change, ColumnInfo, RelationInfo, ReplicaIdentity, Row } from '../sources/change';
import { DEFAULT_MESSAGE_PREFIX } from '../sources/app-event';
import { parseJsonLossless } from '../events/json-text';
import { checkRows, rowContext, RuleStore, ruleKeyPath, writtenRule, type InvalidRule } from '../trigger-rules';
import { isMissingTable } from '../trigger-rules/store';
import type { Command, CommandOptions } from './command';
import { configure, withDatabase } from './context';

const OPERATIONS = ['insert', 'update', 'delete'] as const;
type Operation = (typeof OPERATIONS)[number];

/** A rule as listed: the file's or the table's, valid or not. */
interface Listed {
  name: string;
  origin: 'file' | 'table';
  valid: boolean;
  rule?: TriggerConfig;
  problems?: string[];
}

/** A JSON object given on the command line (--row, --old). */
function jsonObject(text: string): Row {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`must be a JSON object, e.g. '{"id": 1}' (${errorMessage(err)})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`must be a JSON object, e.g. '{"id": 1}' (got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value})`);
  return value as Row;
}

/** Any JSON value given on the command line (--data), numbers exact. */
function jsonValue(text: string): unknown {
  try {
    return parseJsonLossless(text);
  } catch (err) {
    throw new Error(`must be JSON, e.g. '{"plan": "pro"}' (${errorMessage(err)})`);
  }
}

/** What a rule selects, for "does not match" messages. */
function selectorSummary(rule: TriggerConfig): string {
  if (rule.types !== undefined) return `types: ${rule.types.join(', ')}`;
  return `tables: ${rule.tables.map((t) => displayName(t)).join(', ')}; on: ${rule.on.join(', ')}${rule.columns ? `; columns: ${rule.columns.join(', ')}` : ''}`;
}

/** An application event as capture hands it over (position 0: nothing is sent, no id is kept). */
function appEventChange(config: Config, type: string, subject: string | undefined, data: unknown): Change {
  return {
    kind: 'message', prefix: config.events.messagePrefix ?? DEFAULT_MESSAGE_PREFIX,
    event: { type, subject: subject ?? null, data: data ?? {}, extensions: {} },
    commitLsn: 0n, commitTime: new Date(), xid: 0, ordinal: 0,
  };
}

function operation(text: string): Operation {
  if (!(OPERATIONS as readonly string[]).includes(text)) throw new Error(`must be one of ${OPERATIONS.join(', ')}`);
  return text as Operation;
}

export const triggersCommand: Command = {
  summary: 'list the trigger rules (file and table), or test one over a row without sending',
  commands: {
    list: {
      summary: 'the rules of the file and of the triggers table: name, origin, active, tables, operations, action destinations; invalid rows with their problems',
      options: [{ flags: '--json', description: 'machine-readable output' }],
      run: (options) => list(configure(options), options.json),
    },
    test: {
      summary: 'render rule NAME over a row: whether it fires, and what each action would send (nothing is sent)',
      argument: { name: 'name', description: 'the rule' },
      options: [
        { flags: '--table <table>', description: 'the captured table the row belongs to (schema.name)' },
        { flags: '--row <json>', description: 'the row as a JSON object (the new row; the deleted one with --op delete)', parse: jsonObject },
        { flags: '--old <json>', description: 'the previous row, for an update', parse: jsonObject },
        { flags: '--op <operation>', description: `${OPERATIONS.join(' | ')} (default: update with --old, else insert)`, parse: operation },
        { flags: '--type <type>', description: 'instead of --table/--row: an application event of this type (a rule over types)' },
        { flags: '--data <json>', description: 'with --type: the event\'s data, any JSON value (default {})', parse: jsonValue },
        { flags: '--subject <subject>', description: 'with --type: the event\'s subject (default none)' },
        { flags: '--json', description: 'machine-readable output' },
      ],
      run: (options) => test(options),
    },
  },
};

async function rulesOf(config: Config, client: Client, warn: (m: string) => void): Promise<Listed[]> {
  const file: Listed[] = (config.triggers ?? []).map((rule) => ({ name: rule.name, origin: 'file', valid: true, rule }));
  if (config.triggersTable?.enabled === false) return file;
  const store = new RuleStore(knexOn(client), schemaNames(config));
  let rows;
  try {
    rows = await store.list();
  } catch (err) {
    if (!isMissingTable(err)) throw err;
    warn(errorMessage(err));
    return file;
  }
  const { valid, invalid } = checkRows(rows, rowContext(config));
  const table: Listed[] = [
    ...valid.map((r): Listed => ({ name: r.name, origin: 'table', valid: true, rule: r.rule })),
    ...invalid.map((r: InvalidRule): Listed => ({ name: r.name, origin: 'table', valid: false, problems: r.problems })),
  ].sort((a, b) => (a.name < b.name ? -1 : 1));
  return [...file, ...table];
}

/** What an action is, in a few words: its kind and where it goes. */
function actionSummary(action: Record<string, unknown>): string {
  const [kind] = Object.keys(action);
  const settings = action[kind] as Record<string, unknown> | undefined;
  if (kind === 'cloudevent') return `cloudevent${settings?.type ? ` ${String(settings.type)}` : ''} → the default sink`;
  const target = settings?.url ?? settings?.broker ?? settings?.name;
  return target === undefined ? kind : `${kind} → ${String(target)}`;
}

async function list(config: Config, json: boolean): Promise<number> {
  const warn = (m: string) => process.stderr.write(`warning: ${m}\n`);
  const rules = await withDatabase(config, (client) => rulesOf(config, client, warn));
  if (json) {
    process.stdout.write(`${JSON.stringify(rules.map((r) => ({
      name: r.name, origin: r.origin, valid: r.valid, active: r.rule?.active ?? null,
      ...(r.rule && { rule: writtenRule(r.rule), destinations: r.rule.actions.map((_, i) => actionDestinationName(r.name, i)) }),
      ...(r.problems && { problems: r.problems }),
    })), null, 2)}\n`);
    return 0;
  }
  if (rules.length === 0) {
    process.stdout.write('no trigger rules (configure triggers: in the file, or write rows into the triggers table)\n');
    return 0;
  }
  for (const r of rules) {
    if (!r.rule) {
      process.stdout.write(`${r.name}  (${r.origin})  INVALID, ignored\n${r.problems!.map((p) => `    problem: ${p}\n`).join('')}`);
      continue;
    }
    const { rule } = r;
    process.stdout.write(`${r.name}  (${r.origin})  ${rule.active ? 'active' : 'inactive'}\n`);
    process.stdout.write(rule.types !== undefined
      ? `    types: ${rule.types.join(', ')}\n`
      : `    tables: ${rule.tables.map((t) => displayName(t)).join(', ')}   on: ${rule.on.join(', ')}\n`);
    rule.actions.forEach((action, i) => {
      process.stdout.write(`    ${actionDestinationName(r.name, i)}: ${actionSummary(action as unknown as Record<string, unknown>)}\n`);
    });
  }
  return 0;
}

/** The table's columns and identity, for building its change as capture would. */
const RELATION_SQL = `SELECT c.oid::int AS id, c.relreplident::text AS identity,
  array_agg(json_build_object('name', a.attname, 'typeOid', a.atttypid::int, 'typeMod', a.atttypmod) ORDER BY a.attnum) AS columns
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = $1 AND c.relname = $2
GROUP BY c.oid, c.relreplident`;
const IDENTITY: Record<string, ReplicaIdentity> = { d: 'default', n: 'nothing', f: 'full', i: 'index' };

async function relationOf(client: Client, schema: string, table: string): Promise<RelationInfo> {
  const { rows } = await client.query(RELATION_SQL, [schema, table]);
  if (rows.length === 0) throw new Error(`--table: ${schema}.${table} does not exist`);
  const { id, identity, columns } = rows[0] as { id: number; identity: string; columns: Omit<ColumnInfo, 'isKey'>[] };
  const keys = await client.query(TABLE_KEYS_SQL, [[id]]);
  const keyColumns: string[] = keys.rows[0]?.columns ?? [];
  return { id, schema, table, replicaIdentity: IDENTITY[identity] ?? 'default', keyColumns, columns: columns.map((c) => ({ ...c, isKey: keyColumns.includes(c.name) })) };
}

/** A change as capture hands it over, for `row` (and `old`). */
function changeOf(relation: RelationInfo, op: Operation, row: Row, old: Row | undefined): Change {
  const base = { relation, commitLsn: 0n, commitTime: new Date(), xid: 0, ordinal: 0 };
  switch (op) {
    case 'insert':
      return { ...base, kind: 'insert', new: row, missingColumns: [] };
    case 'update':
      return { ...base, kind: 'update', new: row, old, oldIsKeyOnly: false, missingColumns: [] };
    case 'delete':
      return { ...base, kind: 'delete', old: row, oldIsKeyOnly: false, missingColumns: [] };
  }
}

/** What an action would have sent: an event to the default sink, or a bare message. */
interface Recorded {
  event?: CloudEvent<unknown>;
  message?: { contentType: string; id: string; key?: string; body: string };
  target: string;
}

/** Stands in for every sink a rule's actions reach: it records instead of sending. */
class RecordingSink implements Sink {
  readonly recorded: Recorded[] = [];
  constructor(readonly name: string) {}
  async send(event: CloudEvent<unknown>): Promise<void> {
    this.recorded.push({ event, target: this.name });
  }
  async sendBatch(events: CloudEvent<unknown>[]): Promise<void> {
    for (const event of events) await this.send(event);
  }
  async sendMessage(message: PlainMessage): Promise<void> {
    this.recorded.push({ target: this.name, message: { contentType: message.contentType, id: message.id, key: message.key, body: message.body.toString('utf8') } });
  }
  async close(): Promise<void> {}
  describe(): string {
    return `${this.name} (not sent)`;
  }
}

/**
 * Webhook and broker actions record what they would send (the bare message, or with `format:
 * cloudevent` the derived event) instead of opening a connection; a cloudevent action keeps its
 * own target, whose default sink is a recorder already.
 */
function recordingTarget(recorder: (target: string) => RecordingSink): TargetFactory {
  return (action, runtime) => {
    if (action.kind.key === 'cloudevent') return action.kind.target(action.config, runtime);
    const where = 'webhook' in action.config
      ? `webhook ${(action.config as WebhookActionConfig).webhook.method} ${(action.config as WebhookActionConfig).webhook.url}`
      : `broker ${(action.config as BrokerActionConfig).broker}`;
    const sink = recorder(where);
    const asEvent = (action.config as { format?: string }).format === 'cloudevent';
    return {
      send: (payload, delivery) => (asEvent ? sink.send(derivedEvent(delivery, payload)) : sink.sendMessage(plainMessage(payload, delivery))),
      close: async () => undefined,
      describe: () => where,
    };
  };
}

interface ActionOutcome {
  destination: string;
  fires: boolean;
  /** Why it sends nothing (`when` false), or why it fails (a render error: a dead letter in `run`). */
  reason?: string;
  error?: string;
  sends: Recorded[];
}

type TestOptions = CommandOptions & {
  table?: string; row?: Row; old?: Row; op?: Operation; type?: string; data?: unknown; subject?: string; json: boolean;
};

async function test(options: TestOptions): Promise<number> {
  const { name } = options;
  if (name === undefined) options.usage('test needs the rule name: triggers test NAME --table T --row JSON (or --type T --data JSON)');
  // An application event (README "Application events") instead of a row change.
  const appEvent = options.type !== undefined;
  if (appEvent) {
    const rowOptions = (['table', 'row', 'old', 'op'] as const).filter((k) => options[k] !== undefined);
    if (rowOptions.length > 0) options.usage(`--type tests an application event: leave out ${rowOptions.map((k) => `--${k}`).join(', ')}`);
  } else {
    if (options.data !== undefined || options.subject !== undefined) options.usage('--data and --subject go with --type');
    if (options.table === undefined) options.usage('test needs --table <schema.name> (or --type for an application event)');
    if (options.row === undefined) options.usage('test needs --row <json>');
  }
  const op: Operation = options.op ?? (options.old !== undefined ? 'update' : 'insert');
  if (options.old !== undefined && op !== 'update') options.usage('--old goes with --op update');
  const config = configure(options);
  const qualified = appEvent ? undefined : parseTableName(options.table!);
  if (qualified && !config.tables.some((t) => tableKey(t) === tableKey(qualified))) {
    throw new Error(`--table: ${displayName(qualified)} is not captured (tables: ${config.tables.map((t) => displayName(t)).join(', ')})`);
  }
  /** What was tested, in messages: `insert on public.sales`, or `application event com.example.signup`. */
  const what = qualified ? `${op} on ${displayName(qualified)}` : `application event ${options.type}`;
  const cleanups: (() => Promise<void>)[] = [];
  return withDatabase(config, async (client) => {
    try {
      return await testWith(client);
    } finally {
      for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    }
  });

  async function testWith(client: Client): Promise<number> {
    const rules = await rulesOf(config, client, (m) => process.stderr.write(`warning: ${m}\n`));
    const found = rules.find((r) => r.name === name);
    if (!found) throw new Error(`no trigger rule ${JSON.stringify(name)} (rules: ${rules.map((r) => r.name).join(', ') || 'none'})`);
    if (!found.rule) throw new Error(`trigger rule ${JSON.stringify(name)} in the table is invalid, and ignored by run:\n  - ${found.problems!.join('\n  - ')}`);
    const { rows: [{ db }] } = await client.query('SELECT current_database() AS db');
    const change: Change = qualified
      ? changeOf(await relationOf(client, qualified.schema, qualified.name), op, options.row!, options.old)
      : appEventChange(config, options.type!, options.subject, options.data);
    const buildEvent = eventBuilder(config, options.env, db as string);
    const event = buildEvent(change);
    const at = found.origin === 'file' ? `triggers[${(config.triggers ?? []).findIndex((t) => t.name === name)}]` : ruleKeyPath(name);
    const compiled = compileRule({ ...found.rule, active: true }, 0, config.events.typePrefix, at);
    const notMatched = !found.rule.active ? 'the rule is inactive (active: false)'
      : !matchesChange(compiled, change) ? `the rule does not match ${what} (${selectorSummary(found.rule)})`
        : !compiled.filter(event) ? 'the filters do not match the change event' : undefined;
    const outcomes: ActionOutcome[] = [];
    if (notMatched === undefined) {
      const sinks = new Map<string, RecordingSink>();
      const recorder = (target: string) => sinks.get(target) ?? sinks.set(target, new RecordingSink(target)).get(target)!;
      // Relations are read as run reads them at delivery (its own connection, the events' session settings).
      const relationPool = createPool(config.databaseUrl, 1, REPLICATION_SESSION_OPTIONS);
      cleanups.push(() => relationPool.end());
      const context: KindContext = {
        config, buildEvent, relations: createRelationResolver(config, textQuery(relationPool)),
        destination: (target): Destination => ({ name: target, sink: recorder(target), batchSize: 1 }),
        sink: (target) => recorder(target),
      };
      const route = rulesRoute([compiled], context, { trusted: found.origin === 'file', target: recordingTarget(recorder) });
      cleanups.push(() => route.close?.() ?? Promise.resolve());
      const deliveries: [Destination, CloudEvent<unknown>][] = [];
      route.route(change, (destination, delivery) => deliveries.push([destination, delivery]));
      for (const [destination, delivery] of deliveries) {
        const before = new Set([...sinks.values()].flatMap((s) => s.recorded));
        const outcome: ActionOutcome = { destination: destination.name, fires: true, sends: [] };
        try {
          await destination.sink.send(delivery);
        } catch (err) {
          outcome.error = errorMessage(err);
        }
        outcome.sends = [...sinks.values()].flatMap((s) => s.recorded).filter((r) => !before.has(r));
        if (outcome.error === undefined && outcome.sends.length === 0) {
          outcome.fires = false;
          outcome.reason = 'when is false: nothing is sent (the delivery counts as done)';
        }
        outcomes.push(outcome);
      }
    }
    const failed = outcomes.some((o) => o.error !== undefined);
    if (options.json) {
      process.stdout.write(`${JSON.stringify({
        rule: name, origin: found.origin, ...(qualified ? { operation: op, table: displayName(qualified) } : { applicationEvent: options.type }), fires: notMatched === undefined, ...(notMatched && { reason: notMatched }),
        event, actions: outcomes,
      }, null, 2)}\n`);
      return failed ? 1 : 0;
    }
    const out = (line: string) => process.stdout.write(`${line}\n`);
    out(`rule ${name} (${found.origin}), ${what}; the change's event: ${event.type} ${event.id}`);
    if (notMatched !== undefined) {
      out(`does not fire: ${notMatched}`);
      return 0;
    }
    for (const o of outcomes) {
      if (o.error !== undefined) out(`${o.destination}: FAILS (run would dead-letter it): ${o.error}`);
      else if (!o.fires) out(`${o.destination}: does not fire: ${o.reason}`);
      for (const sent of o.sends) {
        if (sent.event) {
          const { data, ...attributes } = sent.event.toJSON() as Record<string, unknown>;
          out(`${o.destination}: would send a CloudEvent to ${sent.target}`);
          out(`    ${JSON.stringify(attributes)}`);
          out(`    data: ${JSON.stringify(data)}`);
        } else {
          out(`${o.destination}: would send a ${sent.message!.contentType} message to ${sent.target} (id ${sent.message!.id})`);
          out(`    ${sent.message!.body}`);
        }
      }
    }
    out('nothing was sent');
    return failed ? 1 : 0;
  }
}
