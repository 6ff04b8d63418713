import { createHash } from 'node:crypto';
import type { CloudEvent } from 'cloudevents';
import { stringifyJson } from '../../events/json-text';
import { structuredJson } from '../../events/structured';
import type { PlainMessage } from '../types';

/**
 * CloudEvents Google Cloud Pub/Sub Protocol Binding 1.0 (cloudevents/spec
 * pubsub-protocol-binding.md), as cloudevents/sdk-go's pubsub protocol implements it:
 * - 3.1 binary mode: data is the message payload as-is (our events: UTF-8 JSON); §3.1.1 the
 *   `datacontenttype` travels as the `Content-Type` attribute; §3.1.3.1 every other attribute and
 *   extension as a `ce-<name>` attribute; §3.1.3.2 values in their canonical string form.
 * - 3.2 structured mode: §3.2.1 `Content-Type: application/cloudevents+json; charset=UTF-8`, §3.2.2
 *   the JSON event format as the payload.
 * Receivers tell the modes apart by `Content-Type` starting with `application/cloudevents` (§3).
 */
export type PubSubMode = 'binary' | 'structured';

export const CONTENT_TYPE_ATTRIBUTE = 'Content-Type';
export const STRUCTURED_CONTENT_TYPE = 'application/cloudevents+json; charset=UTF-8';
const PREFIX = 'ce-';

/**
 * Limits the service enforces (cloud.google.com/pubsub/quotas#resource_limits). A publish request
 * over them is refused with INVALID_ARGUMENT for the whole batch, so we check before batching: an
 * event whose attributes do not fit goes structured, and one that cannot fit at all fails alone.
 */
export const LIMITS = {
  attributes: 100,
  attributeKeyBytes: 256,
  attributeValueBytes: 1024,
  orderingKeyBytes: 1024,
  messageBytes: 10_000_000,
} as const;

/** What is published: the data and attributes (the ordering key is the sink's). */
export interface PubSubPayload {
  data: Buffer;
  attributes: Record<string, string>;
  /** data plus attribute keys and values, as the service counts a message's size. */
  bytes: number;
}

export interface EncodedMessage extends PubSubPayload {
  mode: PubSubMode;
}

/** Attribute names of a bare payload (`sendMessage`). */
export const PLAIN_ATTRIBUTES = { contentType: 'content-type', id: 'id' } as const;

/**
 * A bare payload (a trigger action's, no CloudEvent): data = the body exactly, attributes
 * `content-type` and `id` only (no `ce-` attributes). The sink sets the ordering key.
 */
export function encodePlainMessage(message: PlainMessage): PubSubPayload {
  return sized(message.body, { [PLAIN_ATTRIBUTES.contentType]: message.contentType, [PLAIN_ATTRIBUTES.id]: message.id });
}

export function encodeMessage(event: CloudEvent<unknown>, mode: PubSubMode): EncodedMessage {
  if (mode === 'binary') {
    const attributes = binaryAttributes(event);
    if (fitsAsAttributes(attributes)) return { mode: 'binary', ...sized(dataBytes(event), attributes) };
  }
  // CloudEvent#toJSON is the JSON format's shape (data_base64 for binary data).
  return { mode: 'structured', ...sized(Buffer.from(structuredJson(event)), { [CONTENT_TYPE_ATTRIBUTE]: STRUCTURED_CONTENT_TYPE }) };
}

function binaryAttributes(event: CloudEvent<unknown>): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const [name, value] of Object.entries(event)) {
    if (value === undefined || value === null || name === 'data' || name === 'data_base64') continue;
    if (name === 'datacontenttype') attributes[CONTENT_TYPE_ATTRIBUTE] = String(value);
    else attributes[PREFIX + name] = canonical(value);
  }
  return attributes;
}

/** Spec "Type System": Boolean true/false, Integer decimal, Timestamp RFC 3339, others as text. */
function canonical(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  return String(value);
}

function dataBytes(event: CloudEvent<unknown>): Buffer {
  const data = event.data as unknown;
  if (data === undefined || data === null) {
    return event.data_base64 ? Buffer.from(event.data_base64, 'base64') : Buffer.alloc(0);
  }
  if (data instanceof Uint8Array) return Buffer.from(data);
  if (typeof data === 'string' && !isJson(event.datacontenttype)) return Buffer.from(data);
  return Buffer.from(stringifyJson(data));
}

function isJson(contentType: string | undefined): boolean {
  return contentType === undefined || /[/+]json(\s*;|$)/i.test(contentType);
}

function fitsAsAttributes(attributes: Record<string, string>): boolean {
  const entries = Object.entries(attributes);
  if (entries.length > LIMITS.attributes) return false;
  return entries.every(([k, v]) => Buffer.byteLength(k) <= LIMITS.attributeKeyBytes && Buffer.byteLength(v) <= LIMITS.attributeValueBytes);
}

function sized(data: Buffer, attributes: Record<string, string>): PubSubPayload {
  let bytes = data.length;
  for (const [k, v] of Object.entries(attributes)) bytes += Buffer.byteLength(k) + Buffer.byteLength(v);
  return { data, attributes, bytes };
}

/**
 * The ordering key for a partition key. Keys over the service's 1024-byte limit are replaced by
 * a digest: still one key per row, so per-row order holds.
 */
export function orderingKeyFor(partitionKey: string): string {
  if (Buffer.byteLength(partitionKey) <= LIMITS.orderingKeyBytes) return partitionKey;
  return `sha256:${createHash('sha256').update(partitionKey).digest('hex')}`;
}

// Topic ids: 3–255 characters, a letter first, then letters, digits and - _ . ~ + %, not "goog…".
const TOPIC_ID = /^(?!goog)[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$/;
const TOPIC_NAME = /^projects\/[^/]+\/topics\/([^/]+)$/;

/** Why a topic id (or full `projects/<p>/topics/<id>` name) would be refused; undefined if valid. */
export function topicProblem(topic: string): string | undefined {
  const id = TOPIC_NAME.exec(topic)?.[1] ?? topic;
  if (TOPIC_ID.test(id)) return undefined;
  return `${JSON.stringify(topic)} is not a valid Pub/Sub topic id (3–255 characters, a letter first, then letters, digits, - _ . ~ + %; not starting with "goog")`;
}
