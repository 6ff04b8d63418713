/** Dead letters: the table (store, state for teardown, stored event text), the handler the delivery engine calls, Knative's extensions, newer-state tracking. */
export { DeadLetterStore, type DeadLetterRow, type ListOptions } from './store';
export { SupersededTracker } from './superseded';
export { eventFromStoredText, storedEventText } from './event-text';
export {
  createDeadLetterHandler, DEAD_LETTER_SINK_MAX_RETRIES, type ClosableDeadLetterHandler, type DeadLetterHandlerOptions,
} from './handler';
export {
  DEAD_LETTER_STATE_SQL, deadLetterTeardownWarning, inspectDeadLetterTable, planDeadLetterTeardown, type DeadLetterTableState,
} from './table';
export { KNATIVE_ERROR_DATA_MAX_LENGTH, knativeErrorExtensions, withKnativeError } from './knative';
