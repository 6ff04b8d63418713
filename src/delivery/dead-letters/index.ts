/** Dead letters: the table (store, DDL), the handler the delivery engine calls, Knative's extensions. */
export { DeadLetterStore, type DeadLetterRow, type ListOptions } from './store';
export {
  createDeadLetterHandler, DEAD_LETTER_SINK_MAX_RETRIES, type ClosableDeadLetterHandler, type DeadLetterHandlerOptions,
} from './handler';
export {
  DEAD_LETTER_STATE_SQL, deadLetterTeardownWarning, inspectDeadLetterTable, planDeadLetterSetup, planDeadLetterTeardown,
  type DeadLetterTableState,
} from './ddl';
export { KNATIVE_ERROR_DATA_MAX_LENGTH, knativeErrorExtensions, withKnativeError } from './knative';
