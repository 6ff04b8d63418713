/**
 * What webhook and broker actions send by default: the bare rendered payload, as
 * django-action-triggers sends it (README, "Triggers", "What is sent"). A payload that is not a
 * string is JSON; a string is sent as it is, as JSON when it is JSON text (`'{"a":1}'`, `'42'`),
 * else as UTF-8 text.
 */
import type { CloudEvent } from 'cloudevents';
import { stringifyJson } from '../../../events/json-text';
import type { PlainMessage } from '../../../sinks/types';

export const JSON_CONTENT_TYPE = 'application/json';
export const TEXT_CONTENT_TYPE = 'text/plain; charset=utf-8';

export interface EncodedPayload {
  body: Buffer;
  contentType: string;
}

export function encodePayload(payload: unknown): EncodedPayload {
  if (typeof payload === 'string') {
    return { body: Buffer.from(payload, 'utf8'), contentType: isJsonText(payload) ? JSON_CONTENT_TYPE : TEXT_CONTENT_TYPE };
  }
  // undefined (no data at all) is JSON's null: a receiver always gets a body it can parse.
  return { body: Buffer.from(payload === undefined ? 'null' : stringifyJson(payload), 'utf8'), contentType: JSON_CONTENT_TYPE };
}

function isJsonText(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * The broker message of a payload: `id` the action's delivery event id (deterministic per change,
 * rule and action, so consumers can deduplicate a redelivery), `key` the row's partition key.
 */
export function plainMessage(payload: unknown, delivery: CloudEvent<unknown>): PlainMessage {
  const { body, contentType } = encodePayload(payload);
  const key = delivery.partitionkey;
  return { body, contentType, id: delivery.id, ...(typeof key === 'string' && key !== '' && { key }) };
}
