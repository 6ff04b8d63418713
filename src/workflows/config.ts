/**
 * The `workflows` and `redis` keys (docs/workflows.md), from their written form to checked
 * WorkflowConfig objects. The file's JSON Schema (config/schema.json) checks shapes; this
 * module checks what a schema cannot: names an input list refers to, cascades that loop, JSONata
 * that does not compile, the ttl. Every problem names its key path.
 */
import { parseDuration } from '../config/duration';
import { validateFileKeys } from '../config/schema';
import { parseTableName, type QualifiedName } from '../config/tables';
import type { TriggerActionConfig } from '../config/types';
import { ConfigError, errorMessage } from '../errors';
import { parseAction, type ActionParseContext } from '../routing/triggers/actions';
import { compileTransform, compileWhen } from '../routing/triggers/expressions';
import { compilePayload } from '../routing/triggers/payload';

/**
 * One named input's selector over the routed changes: a table's rows (`table` with `on`) or an
 * application event's `type` (README "Application events"), never both.
 */
export type WorkflowEventSelector =
  | { table: QualifiedName; on: string[]; type?: undefined; when?: string }
  | { type: string; table?: undefined; on?: undefined; when?: string };

/**
 * What a task runs: a trigger action, checked by the action kinds' own parser (webhook, broker,
 * cloudevent, with payload, timeout, rateLimit, format, type, dynamic values, allow-lists).
 */
export type TaskAction = TriggerActionConfig;

/** The roots a task's payload template reads (README "Workflows"): the run payload, the session, the instance name. */
export const RUN_TEMPLATE_ROOTS = ['inputs', 'session', 'instance'] as const;

export interface WorkflowTaskConfig {
  name: string;
  /** As written, plus `andEvery` (the framework adds it: a task waits for its every-input too). */
  after: string[];
  unless: string[];
  andEvery?: string;
  withParams: Record<string, unknown>;
  run: TaskAction;
  retry: { max: number };
}

export interface WorkflowConfig {
  name: string;
  /** JSONata over the change: the session an input belongs to. */
  session: string;
  ttl: string;
  ttlMs: number;
  events: Record<string, WorkflowEventSelector>;
  /** In the file's order: the order in which an input is applied to tasks. */
  tasks: WorkflowTaskConfig[];
}

export interface WorkflowRedisConfig {
  url: string;
  /** Before every key (no braces: a brace would move the Redis Cluster hash tag). */
  prefix: string;
  /** A run whose runner stopped heartbeating this long is taken over by another runner (XAUTOCLAIM). */
  reclaimAfterMs: number;
  /** How often a runner tells the work stream its runs are alive. */
  heartbeatIntervalMs: number;
}

export interface WorkflowsConfig {
  /** Absent when there are no workflows and no Redis is configured. */
  redis?: WorkflowRedisConfig;
  workflows: WorkflowConfig[];
}

export const WORKFLOW_DEFAULTS = { ttl: 'P7D', retryMax: 0, prefix: '', reclaimAfter: 'PT60S', heartbeatInterval: 'PT10S' } as const;

const EVENT_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const TASK_NAME = /^t_[A-Za-z0-9_]{1,62}$/;

interface FileTask {
  after?: string[];
  unless?: string[];
  andEvery?: string;
  withParams?: Record<string, unknown>;
  run: Record<string, unknown>;
  retry?: { max?: number };
}

interface FileWorkflow {
  name: string;
  session: string;
  ttl?: string;
  events: Record<string, { table?: string; on?: string[]; type?: string; when?: string }>;
  tasks: Record<string, FileTask>;
}

/**
 * Checks and resolves `{ redis, workflows }` (the file's keys); `env.REDIS_URL` stands in for
 * `redis.url`. Throws a ConfigError listing every problem by key path. `actions`: what a task's
 * `run` is checked against (the file's allow-lists, brokers and limits; trusted, as the file is).
 */
export function parseWorkflowsConfig(
  raw: { redis?: unknown; workflows?: unknown },
  env: NodeJS.ProcessEnv = process.env,
  actions: ActionParseContext = { trusted: true },
): WorkflowsConfig {
  const problems: string[] = [];
  const result = resolveWorkflowsConfig(raw, env, problems, actions);
  if (problems.length > 0) throw new ConfigError(problems);
  return result;
}

/** As parseWorkflowsConfig, but adds the problems to `problems` (for a caller collecting all of the file's). */
export function resolveWorkflowsConfig(
  raw: { redis?: unknown; workflows?: unknown },
  env: NodeJS.ProcessEnv,
  problems: string[],
  actions: ActionParseContext = { trusted: true },
): WorkflowsConfig {
  const data = { ...(raw.redis !== undefined && { redis: raw.redis }), ...(raw.workflows !== undefined && { workflows: raw.workflows }) };
  const shapeProblems = validateFileKeys(data, ['redis', 'workflows']);
  if (shapeProblems.length > 0) {
    problems.push(...shapeProblems);
    return { workflows: [] };
  }
  const file = data as { redis?: { url?: string; prefix?: string; reclaimAfter?: string; heartbeatInterval?: string }; workflows?: FileWorkflow[] };
  const names = new Map<string, number>();
  const workflows = (file.workflows ?? []).map((wf, i) => {
    const at = `workflows[${i}]`;
    const seen = names.get(wf.name);
    if (seen !== undefined) problems.push(`${at}.name: ${JSON.stringify(wf.name)} is already the name of workflows[${seen}]; names must be unique`);
    else names.set(wf.name, i);
    return resolveWorkflow(wf, at, actions, problems);
  });
  const url = file.redis?.url ?? env.REDIS_URL;
  let redis: WorkflowRedisConfig | undefined;
  if (url !== undefined && url !== '') {
    if (file.redis?.url === undefined && !/^rediss?:\/\//.test(url)) problems.push('REDIS_URL: must be a redis:// or rediss:// URL');
    const reclaimAfterMs = parseDuration(file.redis?.reclaimAfter ?? WORKFLOW_DEFAULTS.reclaimAfter);
    const heartbeatIntervalMs = parseDuration(file.redis?.heartbeatInterval ?? WORKFLOW_DEFAULTS.heartbeatInterval);
    if (heartbeatIntervalMs <= 0) problems.push('redis.heartbeatInterval: must be longer than zero');
    // A run is taken over only after its runner missed a heartbeat or more (docs/workflows.md, "Durable runs").
    if (reclaimAfterMs <= heartbeatIntervalMs) {
      problems.push(`redis.reclaimAfter: must be longer than redis.heartbeatInterval (${heartbeatIntervalMs} ms), or live runs are taken over`);
    }
    redis = { url, prefix: file.redis?.prefix ?? WORKFLOW_DEFAULTS.prefix, reclaimAfterMs, heartbeatIntervalMs };
  } else if (workflows.length > 0) {
    problems.push('redis.url: required when workflows are configured (or set REDIS_URL)');
  }
  return { ...(redis && { redis }), workflows };
}

function resolveWorkflow(wf: FileWorkflow, at: string, actions: ActionParseContext, problems: string[]): WorkflowConfig {
  compileChecked(() => compileTransform(wf.session, `${at}.session`), problems);
  const ttl = wf.ttl ?? WORKFLOW_DEFAULTS.ttl;
  const ttlMs = parseDuration(ttl); // the schema's format already refused anything else
  if (ttlMs <= 0) problems.push(`${at}.ttl: must be longer than zero`);

  const events: Record<string, WorkflowEventSelector> = {};
  for (const [name, selector] of Object.entries(wf.events)) {
    const where = `${at}.events.${name}`;
    if (name.startsWith('t_')) problems.push(`${where}: an event name must not start with t_ (task names do: a finished task is an input of that name)`);
    else if (!EVENT_NAME.test(name)) problems.push(`${where}: an event name is a letter or _, then letters, digits or _ (at most 63)`);
    if (selector.when !== undefined) compileChecked(() => compileWhen(selector.when, `${where}.when`), problems);
    const when = selector.when !== undefined ? { when: selector.when } : {};
    // The schema requires `on` with `table`; which of table and type is checked here.
    if (selector.type !== undefined) {
      if (selector.table !== undefined) problems.push(`${where}: table and type are exclusive (an input is a table's rows or an application event); keep one`);
      else if (selector.on !== undefined) problems.push(`${where}.on: does not apply to application events (type); remove it`);
      events[name] = { type: selector.type, ...when };
      continue;
    }
    // A placeholder table for a selector with problems: the input's name still counts for the tasks.
    let table: QualifiedName = { schema: '', name: '' };
    if (selector.table === undefined) {
      problems.push(`${where}: required: table (with on) for a table's rows, or type for application events`);
    } else {
      try {
        table = parseTableName(selector.table);
      } catch (err) {
        problems.push(`${where}.table: ${errorMessage(err)}`);
      }
    }
    events[name] = { table, on: selector.on ?? [], ...when };
  }

  const taskNames = Object.keys(wf.tasks);
  const inputs = new Set([...Object.keys(events), ...taskNames]);
  const tasks = taskNames.map((name): WorkflowTaskConfig => {
    const task = wf.tasks[name];
    const where = `${at}.tasks.${name}`;
    if (!TASK_NAME.test(name)) problems.push(`${where}: a task name starts with t_ (then letters, digits or _, at most 64 in all), so that it cannot be mistaken for an event`);
    const after = task.after ?? [];
    const unless = task.unless ?? [];
    for (const [key, list] of [['after', after], ['unless', unless]] as const) {
      list.forEach((input, k) => {
        if (!inputs.has(input)) problems.push(`${where}.${key}[${k}]: ${JSON.stringify(input)} is neither an event nor a task of this workflow (${[...inputs].join(', ')})`);
      });
    }
    if (task.andEvery !== undefined && !inputs.has(task.andEvery)) {
      problems.push(`${where}.andEvery: ${JSON.stringify(task.andEvery)} is neither an event nor a task of this workflow (${[...inputs].join(', ')})`);
    }
    if (after.length === 0 && task.andEvery === undefined) problems.push(`${where}.after: required (at least one input) unless andEvery is set`);
    const run = resolveRun(task.run, `${where}.run`, actions, problems);
    return {
      name,
      after: task.andEvery !== undefined && !after.includes(task.andEvery) ? [...after, task.andEvery] : [...after],
      unless: [...unless],
      ...(task.andEvery !== undefined && { andEvery: task.andEvery }),
      withParams: task.withParams ?? {},
      run,
      retry: { max: task.retry?.max ?? WORKFLOW_DEFAULTS.retryMax },
    };
  });
  const cycle = findCascadeCycle(tasks);
  if (cycle) problems.push(`${at}.tasks: the cascade ${cycle.join(' → ')} loops (a task waits, through after or andEvery, for its own result)`);
  return { name: wf.name, session: wf.session, ttl, ttlMs, events, tasks };
}

/**
 * A task's `run`, checked as a trigger action (the kinds' own parser), and its payload template
 * compiled; a placeholder must start with a root a run has (inputs, session, instance).
 */
function resolveRun(raw: Record<string, unknown>, where: string, actions: ActionParseContext, problems: string[]): TaskAction {
  const parsed = parseAction(raw, where, actions, problems);
  if (parsed?.payload !== undefined) {
    try {
      const { placeholders } = compilePayload(parsed.payload, `${where}.payload`);
      for (const p of placeholders) {
        if (!(RUN_TEMPLATE_ROOTS as readonly string[]).includes(p.path[0])) {
          problems.push(`${p.where}: ${p.text}: a task's payload reads ${RUN_TEMPLATE_ROOTS.join(', ')} (e.g. {{ inputs.paid.amount }})`);
        }
      }
    } catch (err) {
      if (err instanceof ConfigError) problems.push(...err.problems);
      else throw err;
    }
  }
  // A placeholder for a run with problems: the rest is still checked, to report everything at once.
  return parsed ?? { cloudevent: {} };
}

function compileChecked(compile: () => unknown, problems: string[]): void {
  try {
    compile();
  } catch (err) {
    if (err instanceof ConfigError) problems.push(...err.problems);
    else throw err;
  }
}

/**
 * A loop in the cascade graph (task → the tasks whose result it waits for), as names ending with
 * the first; undefined when there is none. `unless` does not count: it never makes a task run.
 */
export function findCascadeCycle(tasks: readonly Pick<WorkflowTaskConfig, 'name' | 'after'>[]): string[] | undefined {
  const byName = new Map(tasks.map((t) => [t.name, t]));
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (name: string): string[] | undefined => {
    if (state.get(name) === 'done') return undefined;
    if (state.get(name) === 'visiting') return [...stack.slice(stack.indexOf(name)), name];
    state.set(name, 'visiting');
    stack.push(name);
    for (const input of byName.get(name)?.after ?? []) {
      if (!byName.has(input)) continue;
      const found = visit(input);
      if (found) return found;
    }
    stack.pop();
    state.set(name, 'done');
    return undefined;
  };
  for (const t of tasks) {
    const found = visit(t.name);
    if (found) return found;
  }
  return undefined;
}
