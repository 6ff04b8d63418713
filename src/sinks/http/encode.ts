import { HTTP, type CloudEvent } from 'cloudevents';

export interface EncodedRequest {
  mode: 'binary' | 'structured';
  headers: Record<string, string>;
  body: string | Uint8Array | undefined;
}

/**
 * CloudEvents HTTP binding §3.1.3.2: a header value MUST percent-encode space, `"`, `%` and every
 * character outside printable ASCII (U+0021–U+007E). The SDK (cloudevents@10 `headersFor`) does
 * not encode, and receivers built on it do not decode, so instead of sending headers that a
 * receiver would read differently (or that Node refuses), such an event goes in structured mode
 * (§3.2), where the attributes travel in the JSON body.
 */
const NEEDS_PERCENT_ENCODING = /[^\x21-\x7E]|["%]/;

// Not sent as ce- headers: data is the body, datacontenttype is the Content-Type (§3.1.1).
const NOT_HEADERS = new Set(['data', 'data_base64', 'datacontenttype']);

export function needsStructuredMode(event: CloudEvent<unknown>): boolean {
  for (const [name, value] of Object.entries(event)) {
    if (value === undefined || NOT_HEADERS.has(name)) continue;
    if (NEEDS_PERCENT_ENCODING.test(String(value))) return true;
  }
  return false;
}

/** Headers and body for one event, by the SDK's binding; `mode` is what was asked for. */
export function encodeEvent(event: CloudEvent<unknown>, mode: 'binary' | 'structured'): EncodedRequest {
  const chosen = mode === 'binary' && !needsStructuredMode(event) ? 'binary' : 'structured';
  const message = chosen === 'binary' ? HTTP.binary(event) : HTTP.structured(event);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.headers)) {
    if (value !== undefined && value !== null) headers[name.toLowerCase()] = String(value);
  }
  const body = message.body as unknown;
  return {
    mode: chosen,
    headers,
    body: body === undefined || body === null ? undefined : typeof body === 'string' ? body : (body as Uint8Array),
  };
}

/**
 * CloudEvents HTTP binding §3.3 (batched content mode) with the JSON Batch Format (JSON format
 * §4): the body is a JSON array of structured-mode events, the media type
 * `application/cloudevents-batch+json` (§3.3.1's example adds `charset=UTF-8`). Receivers built on
 * the SDK (`HTTP.toEvent`) turn it into an array of events.
 */
export const BATCH_CONTENT_TYPE = 'application/cloudevents-batch+json; charset=utf-8';

export function encodeBatch(events: readonly CloudEvent<unknown>[]): { headers: Record<string, string>; body: string } {
  // CloudEvent#toJSON is the structured form (data_base64 instead of data for binary data).
  return { headers: { 'content-type': BATCH_CONTENT_TYPE }, body: JSON.stringify(events) };
}
