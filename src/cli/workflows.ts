/**
 * `pg-cloudevents workflows list|show|replay|skip|requeue` (README "Workflows", "Recovery"): the
 * sessions of the configured workflows and their instances, and an operator's way out of a
 * failed instance. Needs the `workflows:` and Redis (`redis.url` or REDIS_URL) of the
 * configuration, neither the database nor the tables. Replay and skip write the work pointers
 * of what they scheduled, so a running `run` picks the clone or the cascade up.
 */
import type { Config } from '../config/types';
import { ConfigError, errorMessage } from '../errors';
import { parseJsonLossless, stringifyJson } from '../events/json-text';
import { withoutCredentials } from '../logger';
import { isPlainObject, type JsonObject } from '../workflows/merge';
import type { InstanceView, SessionView } from '../workflows/model';
import { checkInstanceName, connectOperations, parseInstanceAddress, type WorkflowOperations, type InstanceAddress, type TransitionResult, type WorkflowListing } from '../workflows/operations';
import type { Command, CommandOptions, OptionSpec } from './command';
import { configure } from './context';

/** Redis and the workflows: no database, no tables. */
const NEEDS = { tables: false, database: false };
/** A one-shot command fails fast when Redis is not there rather than retrying forever. */
const CONNECT_TIMEOUT_MS = 5_000;

type WorkflowsOptions = CommandOptions & {
  workflow?: string;
  session?: string;
  unresolved?: boolean;
  params?: JsonObject;
  cascade?: boolean;
  result?: JsonObject;
};

/** A JSON object given on the command line (--params, --result); exact numbers stay exact. */
function jsonObject(text: string): JsonObject {
  let value: unknown;
  try {
    value = parseJsonLossless(text);
  } catch (err) {
    throw new Error(`must be a JSON object, e.g. '{"paid": {"id": 7}}' (${errorMessage(err)})`);
  }
  if (!isPlainObject(value)) throw new Error(`must be a JSON object, e.g. '{"paid": {"id": 7}}' (got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value})`);
  return value;
}

const WORKFLOW_OPTION: OptionSpec = { flags: '--workflow <name>', description: 'the workflow (needed when several are configured)' };
const JSON_OPTION: OptionSpec = { flags: '--json', description: 'machine-readable output' };
const INSTANCE_ARGUMENT = {
  name: 'instance',
  description: '<workflow>/<session>/<task>#<n> (the subject of the task\'s event), or <task>#<n> with --session',
};
const ADDRESS_OPTIONS: OptionSpec[] = [
  WORKFLOW_OPTION,
  { flags: '--session <session>', description: 'the session, when INSTANCE is only <task>#<n>' },
];

export const workflowsCommand: Command = {
  summary: 'list and show workflow sessions; replay or skip a failed task instance',
  commands: {
    list: {
      summary: 'the sessions of each workflow: instances by status, unresolved tasks, last change',
      options: [WORKFLOW_OPTION, { flags: '--unresolved', description: 'only sessions with an unresolved task (one with no instance yet, or with one not abandoned, finished, skipped or replayed)' }, JSON_OPTION],
      run: (options) => withOperations(options, (ops) => list(ops, options as WorkflowsOptions)),
    },
    show: {
      summary: 'every instance of one session: status, inputs, result, error, depth and parent, timestamps',
      argument: { name: 'session', description: 'the session (as `workflows list` shows it)' },
      options: [WORKFLOW_OPTION, JSON_OPTION],
      run: (options) => withOperations(options, (ops) => show(ops, options as WorkflowsOptions)),
    },
    replay: {
      summary: 'replay a failed instance: it becomes replayed and a clone <task>#<n+1> is scheduled at once',
      argument: INSTANCE_ARGUMENT,
      options: [...ADDRESS_OPTIONS, { flags: '--params <json>', description: 'the clone\'s inputs, as a JSON object: they replace the inputs entirely', parse: jsonObject }, JSON_OPTION],
      run: (options) => transition(options as WorkflowsOptions, 'replay'),
    },
    skip: {
      summary: 'skip a failed instance: without --cascade its dependants never run; with it they run with --result as its result',
      argument: INSTANCE_ARGUMENT,
      options: [
        ...ADDRESS_OPTIONS,
        { flags: '--cascade', description: 'fire the task\'s result, as if the instance had finished, so that its dependants run' },
        { flags: '--result <json>', description: 'the result to cascade, as a JSON object (default {}); needs --cascade', parse: jsonObject },
        JSON_OPTION,
      ],
      run: (options) => transition(options as WorkflowsOptions, 'skip'),
    },
    requeue: {
      summary: 'point the runners again at every scheduled instance of a session (after a replay or skip failed between its change and its work pointer)',
      argument: { name: 'session', description: 'the session' },
      options: [WORKFLOW_OPTION],
      run: (options) => withOperations(options, async (ops) => {
        const workflow = workflowOf(ops, options as WorkflowsOptions);
        const scheduled = await ops.requeue(workflow, options.name as string);
        process.stdout.write(scheduled.length > 0 ? `${workflow}/${options.name}: pointed the runners at ${scheduled.join(', ')}\n` : `${workflow}/${options.name}: no instance is scheduled; nothing to do\n`);
        return 0;
      }),
    },
  },
};

/** The configuration's workflows on a connected Redis, closed afterwards. */
async function withOperations(options: CommandOptions, use: (ops: WorkflowOperations, config: Config) => Promise<number>): Promise<number> {
  const config = configure(options, NEEDS);
  if ((config.workflows ?? []).length === 0) throw new ConfigError(['workflows: no workflows are configured (add workflows: to the configuration file)']);
  // loadConfig refuses workflows without redis.url/REDIS_URL already.
  const url = config.redis!.url;
  const ops = connectOperations(config.redis!, config.workflows!, { lazyConnect: true, connectTimeout: CONNECT_TIMEOUT_MS, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  const redis = ops.redis;
  // connect() rejects with "Connection is closed"; the cause (ECONNREFUSED, auth) comes as an event.
  let cause: unknown;
  redis.on('error', (err) => (cause ??= err));
  try {
    try {
      await redis.connect();
    } catch (err) {
      throw new Error(`Redis at ${withoutCredentials(url)} (redis.url or REDIS_URL) cannot be reached: ${errorMessage(cause ?? err)}`);
    }
    return await use(ops, config);
  } finally {
    redis.disconnect();
  }
}

/** The one workflow meant: --workflow, or the only one configured. */
function workflowOf(ops: WorkflowOperations, options: WorkflowsOptions): string {
  if (options.workflow !== undefined) return ops.store(options.workflow).workflow.name;
  if (ops.names.length === 1) return ops.names[0];
  return options.usage(`several workflows are configured (${ops.names.join(', ')}): name one with --workflow`);
}

/** INSTANCE as one argument (`<workflow>/<session>/<task>#<n>`), or `<task>#<n>` with --session. */
function addressOf(ops: WorkflowOperations, options: WorkflowsOptions): InstanceAddress {
  const text = options.name as string;
  if (text.includes('/')) {
    if (options.session !== undefined || options.workflow !== undefined) options.usage(`${text} names its workflow and session already: leave out --workflow and --session`);
    try {
      return parseInstanceAddress(text);
    } catch (err) {
      return options.usage(`INSTANCE ${errorMessage(err)}`);
    }
  }
  try {
    checkInstanceName(text);
  } catch (err) {
    return options.usage(`INSTANCE: ${errorMessage(err)}, or <workflow>/<session>/<task>#<n>`);
  }
  if (options.session === undefined) return options.usage(`INSTANCE ${text} needs --session <session> (or give <workflow>/<session>/${text})`);
  return { workflow: workflowOf(ops, options), session: options.session, instance: text };
}

async function list(ops: WorkflowOperations, options: WorkflowsOptions): Promise<number> {
  const listings = await ops.list({ workflow: options.workflow, unresolvedOnly: options.unresolved === true });
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ workflows: listings })}\n`);
    return 0;
  }
  const which = options.unresolved ? 'unresolved sessions' : 'sessions';
  for (const { workflow, sessions } of listings) {
    process.stdout.write(`${workflow}: ${sessions.length} ${which}\n`);
    for (const s of sessions) process.stdout.write(sessionLine(s));
  }
  return 0;
}

function sessionLine(s: WorkflowListing['sessions'][number]): string {
  const statuses = Object.entries(s.statuses).map(([status, n]) => `${status} ${n}`).join(', ') || 'no instance yet';
  const unresolved = s.unresolvedTasks.length > 0 ? `unresolved: ${s.unresolvedTasks.join(', ')}` : 'resolved';
  return `  ${JSON.stringify(s.session)}  ${statuses}  ${unresolved}  updated ${s.updated}\n`;
}

async function show(ops: WorkflowOperations, options: WorkflowsOptions): Promise<number> {
  const view = await ops.show(workflowOf(ops, options), options.name as string);
  if (options.json) {
    // Values as stored: exact numbers keep their digits.
    process.stdout.write(`${stringifyJson(view)}\n`);
    return 0;
  }
  process.stdout.write(sessionText(view));
  return 0;
}

function sessionText(view: SessionView): string {
  const lines = [
    `workflow ${view.workflow}, session ${JSON.stringify(view.session)}: created ${view.created}, updated ${view.updated}`,
    `unresolved tasks: ${view.unresolvedTasks.join(', ') || 'none'}`,
  ];
  for (const i of view.instances) lines.push(...instanceText(i));
  if (view.instances.length === 0) lines.push('no instance yet');
  return `${lines.join('\n')}\n`;
}

function instanceText(i: InstanceView): string[] {
  const lineage = i.depth > 0 ? `, depth ${i.depth}, replay of ${i.parent ?? '?'}` : '';
  const lines = [`${i.name}  ${i.status}${lineage}${i.attempts > 1 ? `, ${i.attempts} attempts` : ''}`, `    inputs: ${stringifyJson(i.inputs)}`];
  if (i.abandonState.length > 0) lines.push(`    unless happened: ${i.abandonState.join(', ')}`);
  if (i.result !== undefined) lines.push(`    result: ${stringifyJson(i.result)}`);
  if (i.error) lines.push(`    error: ${i.error.type}: ${i.error.message}`);
  lines.push(`    ${Object.entries(i.timestamps).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  return lines;
}

async function transition(options: WorkflowsOptions, kind: 'replay' | 'skip'): Promise<number> {
  if (kind === 'skip' && options.result !== undefined && !options.cascade) options.usage('--result goes with --cascade (without it, nothing is fired and the result would be dropped)');
  return withOperations(options, async (ops) => {
    const address = addressOf(ops, options);
    const done: TransitionResult = kind === 'replay'
      ? await ops.replay(address, options.params)
      : await ops.skip(address, { cascade: options.cascade === true, result: options.result });
    if (options.json) {
      process.stdout.write(`${JSON.stringify(done)}\n`);
      return 0;
    }
    const at = `${done.workflow}/${done.session}/${done.instance}`;
    if (kind === 'replay') process.stdout.write(`${at} replayed: ${done.scheduled[0]} is scheduled${options.params ? ' with the given inputs' : ''}\n`);
    else if (!options.cascade) process.stdout.write(`${at} skipped: its dependants will not run\n`);
    else process.stdout.write(`${at} skipped, its result cascaded: ${done.scheduled.length > 0 ? `${done.scheduled.join(', ')} scheduled` : 'nothing became ready'}\n`);
    return 0;
  });
}
