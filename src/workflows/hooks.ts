/**
 * What a workflow reports as it goes, for metrics and logs (the caller decides which). Gauges that
 * describe all sessions (open sessions, instances by status) come from inspect.ts's `stats`,
 * which reads them from Redis: no process sees every transition.
 */

export interface InputAppliedEvent {
  workflow: string;
  session: string;
  input: string;
  /** false: a redelivered event id, not applied again. */
  applied: boolean;
  scheduled: string[];
}

export interface RunStartedEvent {
  workflow: string;
  session: string;
  instance: string;
  task: string;
  /** 1 for the first start; more after a takeover of a dead runner's run. */
  attempt: number;
  /** From the session's first input to this start. */
  sinceFirstInputMs: number;
}

export interface RunEndedEvent {
  workflow: string;
  session: string;
  instance: string;
  task: string;
  /** stale: the run had been taken over by another runner; its outcome was dropped. */
  outcome: 'finished' | 'failed' | 'replayed' | 'stale';
  durationMs: number;
}

export interface WorkflowHooks {
  inputApplied?(event: InputAppliedEvent): void;
  runStarted?(event: RunStartedEvent): void;
  runEnded?(event: RunEndedEvent): void;
}

/** Calls a hook, never letting its failure break the state machine's work. */
export function callHook<E>(hook: ((event: E) => void) | undefined, event: E): void {
  if (!hook) return;
  try {
    hook(event);
  } catch {
    // a metrics callback that throws must not fail a run
  }
}
