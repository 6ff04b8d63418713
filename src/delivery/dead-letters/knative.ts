import type { CloudEvent } from 'cloudevents';
import { DeliveryError, errorMessage } from '../../errors';
import { scrubSecrets, withoutCredentials } from '../../logger';

/**
 * Knative's dead-letter extensions (knative.dev/eventing `pkg/channel/attributes`):
 * - `knativeerrordest`: the URL the event failed to reach;
 * - `knativeerrorcode`: the last answer's status, an Integer (Go's `AddExtension(key, code int)`);
 * - `knativeerrordata`: the last answer's body, base64, cut to
 *   `KnativeErrorDataExtensionMaxLength` = 1024 characters of base64 (= its first 768 bytes).
 * Without an answer (connection refused, timeout), Knative's dispatcher reports code 500 and the
 * body `dispatch error: <reason>`; we do the same so dead-letter consumers see one shape.
 */
export const KNATIVE_ERROR_DATA_MAX_LENGTH = 1024;

export interface KnativeError {
  knativeerrordest: string;
  knativeerrorcode: number;
  knativeerrordata: string;
}

export function knativeErrorExtensions(destination: string, error: Error, status?: number): KnativeError {
  const body = responseBodyOf(error);
  const answered = status !== undefined;
  const bytes = answered ? body ?? Buffer.alloc(0) : Buffer.from(`dispatch error: ${scrubSecrets(errorMessage(error))}`, 'utf8');
  return {
    knativeerrordest: withoutCredentials(destination),
    knativeerrorcode: answered ? status : 500,
    knativeerrordata: bytes.toString('base64').slice(0, KNATIVE_ERROR_DATA_MAX_LENGTH),
  };
}

/** The event as the dead-letter sink receives it: the original with the three extensions. */
export function withKnativeError(event: CloudEvent<unknown>, ext: KnativeError): CloudEvent<unknown> {
  return event.cloneWith({ ...ext } as Partial<CloudEvent<unknown>>);
}

/** The failed answer's body excerpt, as the HTTP sink records it (`detail.responseBodyBase64`). */
function responseBodyOf(error: Error): Buffer | undefined {
  if (!(error instanceof DeliveryError)) return undefined;
  const b64 = error.detail.responseBodyBase64;
  return typeof b64 === 'string' ? Buffer.from(b64, 'base64') : undefined;
}
