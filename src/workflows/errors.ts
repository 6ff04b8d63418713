import { ErrorCodes, PgceError } from '../errors';

/**
 * A transition the workflow state machine refuses (replaying a finished instance, skipping one
 * that did not fail, an instance that does not exist): the operator asked for something the
 * session's state does not allow. Not retriable.
 */
export class WorkflowStateError extends PgceError {
  constructor(message: string) {
    super(ErrorCodes.WORKFLOW_STATE, message, { retriable: false });
    this.name = 'WorkflowStateError';
  }
}

/**
 * The workflow, session or instance asked for does not exist (never did, or the session expired):
 * a refused transition too (same code), told apart so that the admin API answers 404, not 409.
 */
export class WorkflowNotFoundError extends WorkflowStateError {
  constructor(message: string) {
    super(message);
    this.name = 'WorkflowNotFoundError';
  }
}
