/**
 * What a session's state looks like to TypeScript (the scripts keep it in the session hash's
 * `meta` field; lua/lib.lua says how), and the identity of a run.
 */

export const INSTANCE_STATUSES = ['unstarted', 'scheduled', 'running', 'finished', 'failed', 'replayed', 'skipped', 'abandoned'] as const;
export type InstanceStatus = (typeof INSTANCE_STATUSES)[number];

/** An instance in one of these will never change again. `failed` is not: it waits for replay or skip. */
export const RESOLVED_STATUSES: readonly InstanceStatus[] = ['abandoned', 'finished', 'skipped', 'replayed'];

export function isResolved(status: InstanceStatus): boolean {
  return RESOLVED_STATUSES.includes(status);
}

/** One instance as the scripts store it (`meta.inst[name]`); refs point at `v:<ref>` fields. */
export interface StoredInstance {
  task: string;
  n: number;
  status: InstanceStatus;
  /** input name → value ref */
  inputs: Record<string, string>;
  /** unless-inputs that have happened (a set: name → true) */
  abandon: Record<string, true>;
  depth: number;
  parent?: string;
  attempts?: number;
  claim?: { entry: string; consumer: string };
  result?: string;
  error?: { type: string; message: string };
  /** Instances this one's last transition scheduled (pointers to write again after a crash). */
  next?: string[] | Record<string, never>;
  /** Milliseconds since the epoch: created, lastModified, firstRun and one per status reached. */
  ts: Record<string, number>;
}

export interface StoredMeta {
  created: number;
  updated: number;
  /** When the session's first input was applied. */
  first?: number;
  latest: Record<string, string>;
  counts: Record<string, number>;
  inst: Record<string, StoredInstance>;
}

/** One instance, read for people and tools: values parsed, refs gone. */
export interface InstanceView {
  name: string;
  task: string;
  status: InstanceStatus;
  inputs: Record<string, unknown>;
  abandonState: string[];
  depth: number;
  parent?: string;
  attempts: number;
  result?: unknown;
  error?: { type: string; message: string };
  timestamps: Record<string, string>;
}

export interface SessionView {
  workflow: string;
  session: string;
  created: string;
  updated: string;
  firstInput?: string;
  instances: InstanceView[];
  /** Tasks with no instance yet, or with an instance that is not resolved. */
  unresolvedTasks: string[];
  /** Latest value of each input that happened. */
  latest: Record<string, unknown>;
}

/** Sorts `t_x#2` before `t_x#10`: by task name, then number. */
export function compareInstanceNames(a: string, b: string): number {
  const [ta, na] = splitInstance(a);
  const [tb, nb] = splitInstance(b);
  return ta === tb ? na - nb : ta < tb ? -1 : 1;
}

export function splitInstance(name: string): [string, number] {
  const hash = name.lastIndexOf('#');
  return [name.slice(0, hash), Number(name.slice(hash + 1))];
}

/**
 * A run's identity for the derived CloudEvent: the subject names the instance, the id is the same
 * on every attempt of that instance (the delivery engine's retries, a takeover after a runner
 * died) and differs for any other instance, including the same name in a later incarnation of the
 * session (after it expired: `created` differs).
 */
export function runIdentity(workflow: string, session: string, instance: string, sessionCreated: string): { id: string; subject: string } {
  const subject = `${workflow}/${session}/${instance}`;
  return { subject, id: `workflow:${subject}@${sessionCreated}` };
}
