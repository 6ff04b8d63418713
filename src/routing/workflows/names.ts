/**
 * Names of workflow deliveries (README "Destination names"): what logs, metrics and dead letters
 * show. A workflow's inputs are one destination, `workflow:<workflow>`; a task's runs are
 * dead-lettered as `workflow:<workflow>/<task>`.
 */

export const WORKFLOW_DESTINATION_PREFIX = 'workflow:';

/** The destination of a workflow's inputs (one lane of the delivery engine per workflow). */
export function inputDestinationName(workflow: string): string {
  return `${WORKFLOW_DESTINATION_PREFIX}${workflow}`;
}

/** Where a task's runs go, as dead letters and logs name it. */
export function taskDestinationName(workflow: string, task: string): string {
  return `${WORKFLOW_DESTINATION_PREFIX}${workflow}/${task}`;
}

/** The id of an input delivery's event: the change event's, the workflow's name after it (its own dead-letter row). */
export function inputEventId(changeEventId: string, workflow: string): string {
  return `${changeEventId}/workflow/${workflow}`;
}

/** The idempotency key of one input: the change event's id and the input's name. */
export function inputKey(changeEventId: string, input: string): string {
  return `${changeEventId}/${input}`;
}

/**
 * `dead-letters replay` does not send a workflow's dead letters (README "Workflows"): a run's is
 * replayed through its instance (`workflows replay`, which keeps the session's state right), an
 * input's by fixing what failed and changing the row again. The refusal, for an event that is one
 * (the `workflow` extension); undefined for any other event.
 */
export function workflowReplayRefusal(event: { id: string; workflow?: unknown; subject?: string }): Error | undefined {
  if (typeof event.workflow !== 'string') return undefined;
  if (event.id.startsWith('workflow:')) {
    return new Error(
      `a workflow run's dead letter is not replayed here: replay its instance with \`pg-cloudevents workflows replay ${event.subject ?? '<workflow>/<session>/<task>#<n>'}\` ` +
        '(which records the new run in its session), then purge the row',
    );
  }
  return new Error(
    `an input to workflow ${event.workflow} is not replayed here: fix what failed (its session or when), then change the row again ` +
      'so that a new input reaches the workflow; purge the row',
  );
}
