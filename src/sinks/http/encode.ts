import type { CloudEvent } from 'cloudevents';
import { stringifyJson } from '../../events/json-text';
import { canonicalTime, structuredForm, structuredJson } from '../../events/structured';

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

/** The SDK's Content-Type for an event without datacontenttype (CONSTANTS.DEFAULT_CONTENT_TYPE). */
const DEFAULT_CONTENT_TYPE = 'application/json; charset=utf-8';
const STRUCTURED_CONTENT_TYPE = 'application/cloudevents+json; charset=utf-8';

export function needsStructuredMode(event: CloudEvent<unknown>): boolean {
  return binaryHeaders(event) === undefined;
}

/**
 * Binary-mode headers (§3.1.3): `ce-<name>` for every attribute, the data content type as
 * Content-Type, `time` normalised as the SDK does; undefined when a value would need
 * percent-encoding. This is what the SDK's `HTTP.binary` produces (a unit test compares the two
 * on many events), written out because the SDK's version was the costliest step of the hot path
 * (a header map, a parser object and a Date per attribute; `node bench/ab/micro.js` times both).
 */
function binaryHeaders(event: CloudEvent<unknown>): Record<string, string> | undefined {
  const headers: Record<string, string> = { 'content-type': DEFAULT_CONTENT_TYPE };
  const attributes = event as unknown as Record<string, unknown>;
  for (const name in attributes) {
    const value = attributes[name];
    if (value === undefined || name === 'data' || name === 'data_base64') continue;
    if (name === 'datacontenttype') {
      headers['content-type'] = String(value);
      continue;
    }
    const text = name === 'time' ? canonicalTime(value as string) : typeof value === 'string' ? value : String(value);
    if (NEEDS_PERCENT_ENCODING.test(text)) return undefined;
    headers[headerName(name)] = text;
  }
  return headers;
}

const HEADER_NAMES = new Map<string, string>();

/** `ce-<name>`, made once per attribute name rather than once per event. */
function headerName(attribute: string): string {
  let header = HEADER_NAMES.get(attribute);
  if (header === undefined) {
    header = `ce-${attribute}`;
    // Attribute names are few (the formats' and the overrides'); a module handler could invent
    // more, so the cache stops growing at a bound.
    if (HEADER_NAMES.size < 256) HEADER_NAMES.set(attribute, header);
  }
  return header;
}

/** Binary-mode body: the SDK's rule (objects as JSON, binary data and strings as they are), RawJson spliced. */
function binaryBody(data: unknown): string | Uint8Array | undefined {
  if (data === undefined || data === null) return data === null ? 'null' : undefined;
  if (typeof data === 'string' || ArrayBuffer.isView(data)) return data as string | Uint8Array;
  if (typeof data === 'object') return stringifyJson(data);
  return String(data); // a number or boolean: its JSON text
}

/** Headers and body for one event (HTTP binding §3.1 binary, §3.2 structured); `mode` is what was asked for. */
export function encodeEvent(event: CloudEvent<unknown>, mode: 'binary' | 'structured'): EncodedRequest {
  const headers = mode === 'binary' ? binaryHeaders(event) : undefined;
  if (headers) return { mode: 'binary', headers, body: binaryBody(event.data) };
  return { mode: 'structured', headers: { 'content-type': STRUCTURED_CONTENT_TYPE }, body: structuredJson(event) };
}

/**
 * CloudEvents HTTP binding §3.3 (batched content mode) with the JSON Batch Format (JSON format
 * §4): the body is a JSON array of structured-mode events, the media type
 * `application/cloudevents-batch+json` (§3.3.1's example adds `charset=UTF-8`). Receivers built on
 * the SDK (`HTTP.toEvent`) turn it into an array of events.
 */
export const BATCH_CONTENT_TYPE = 'application/cloudevents-batch+json; charset=utf-8';

export function encodeBatch(events: readonly CloudEvent<unknown>[]): { headers: Record<string, string>; body: string } {
  const plain = new Array<Record<string, unknown>>(events.length);
  for (let i = 0; i < events.length; i++) plain[i] = structuredForm(events[i]);
  return { headers: { 'content-type': BATCH_CONTENT_TYPE }, body: stringifyJson(plain) };
}

