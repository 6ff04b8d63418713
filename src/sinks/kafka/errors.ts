import { DeliveryError, ErrorCodes, errorMessage } from '../../errors';
import { scrubSecrets } from '../../logger';

/**
 * kafkajs errors → DeliveryError. kafkajs gives every error a `retriable` flag from Kafka's own
 * error table (kafkajs src/protocol/error.js); we ask the error, as its retry loop does. Our engine
 * owns retries (kafkajs runs with `retries: 0`), so kafkajs wraps the real failure in
 * KafkaJSNonRetriableError / KafkaJSNumberOfRetriesExceeded (both `retriable: false`, whatever the
 * cause): the verdict comes from the innermost `cause`.
 *
 * Decisions beyond kafkajs' flags:
 * - Connection failures, request timeouts and missing metadata/brokers are retriable (the broker
 *   is down or moving); kafkajs marks its KafkaJSTimeout non-retriable, we do not.
 * - UNKNOWN_TOPIC_OR_PARTITION stays retriable, as Kafka classifies it: with auto-creation off it
 *   means "not there yet" (a topic being created, metadata propagating), Knative's 404 (retried).
 *   An operator can create the topic and nothing is lost; a `delivery.retry` limit dead-letters.
 * - Refused for good → final (dead letter): TOPIC_AUTHORIZATION_FAILED, MESSAGE_TOO_LARGE,
 *   RECORD_LIST_TOO_LARGE, INVALID_TOPIC_EXCEPTION, SASL authentication failures (Knative's
 *   400/401/403), an API the broker does not support.
 */
const RETRIABLE_NAMES = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSBrokerNotFound',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSTimeout',
  'KafkaJSLockTimeout',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTopicMetadataNotLoaded',
  'KafkaJSStaleTopicMetadataAssignment',
]);

/** Names meaning "no broker could be reached": code PGCE_ERR_SINK_UNREACHABLE. */
const UNREACHABLE_NAMES = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSBrokerNotFound',
  'KafkaJSNoBrokerAvailableError',
]);

const WRAPPERS = new Set(['KafkaJSNonRetriableError', 'KafkaJSNumberOfRetriesExceeded']);

interface KafkaJSErrorLike {
  name?: string;
  message?: string;
  retriable?: boolean;
  type?: string;
  cause?: unknown;
}

/** The failure kafkajs' retry wrappers hide. */
export function rootCause(err: unknown): unknown {
  let e = err as KafkaJSErrorLike | undefined;
  for (let depth = 0; depth < 10 && e && WRAPPERS.has(e.name ?? '') && e.cause; depth++) e = e.cause as KafkaJSErrorLike;
  return e;
}

export function classifyKafkaError(err: unknown, where: string): DeliveryError {
  if (err instanceof DeliveryError) return err;
  const root = (rootCause(err) ?? err) as KafkaJSErrorLike;
  const name = root?.name ?? '';
  const kafkaError = root?.type ?? name;
  let retriable: boolean;
  if (RETRIABLE_NAMES.has(name)) retriable = true;
  else if (typeof root?.retriable === 'boolean') retriable = root.retriable;
  else retriable = true; // an unknown failure inside the client: assume transient, like a network error
  const unreachable = UNREACHABLE_NAMES.has(name);
  const what = root?.type && !errorMessage(root).includes(root.type) ? `${root.type}: ${errorMessage(root)}` : errorMessage(root);
  return new DeliveryError(scrubSecrets(`kafka ${where} ${unreachable ? 'unreachable' : 'failed'}: ${what}`), {
    retriable,
    code: unreachable ? ErrorCodes.SINK_UNREACHABLE : undefined,
    cause: err,
    detail: { kafkaError },
  });
}
