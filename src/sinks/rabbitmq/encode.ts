import { CONSTANTS, MQTT, type CloudEvent } from 'cloudevents';
import type { Options } from 'amqplib';
import { stringifyJson } from '../../events/json-text';
import { binaryData, structuredJson } from '../../events/structured';
import type { PlainMessage } from '../types';

/**
 * CloudEvents AMQP protocol binding (cloudevents/spec bindings/amqp-protocol-binding.md), carried
 * over RabbitMQ's AMQP 0-9-1, whose `headers` table plays the part of AMQP 1.0's
 * application-properties.
 *
 * - §3.1.3.1: in binary mode every attribute except `datacontenttype` is an application property
 *   named `cloudEvents:<attribute>` (`cloudEvents:id`, `cloudEvents:source`, …).
 * - §3.1.3.2: values go as their canonical string form, which the binding allows for outgoing
 *   messages and every receiver must accept; 0-9-1's native timestamp has whole seconds only,
 *   so `time` could not go natively without losing its fraction.
 * - §3.1.1: `datacontenttype` is the message's `content-type` property; §3.1.2: the data bytes
 *   are the body (JSON data as UTF-8 JSON text).
 * - §3.2: structured mode: content-type `application/cloudevents+json; charset=utf-8`, the body
 *   the JSON event format.
 */
export const AMQP_ATTRIBUTE_PREFIX = 'cloudEvents:';
export const STRUCTURED_CONTENT_TYPE = CONSTANTS.DEFAULT_CE_CONTENT_TYPE;

export type ContentMode = 'binary' | 'structured';

export interface AmqpMessage {
  content: Buffer;
  options: Options.Publish;
}

export function encodeAmqp(event: CloudEvent<unknown>, mode: ContentMode, persistent: boolean): AmqpMessage {
  const common: Options.Publish = {
    persistent,
    // AMQP's own message-id is the event id too: consumers deduplicate on it, and the sink
    // matches a basic.return to its publish by it.
    messageId: event.id,
    mandatory: true,
  };
  if (mode === 'structured') {
    return {
      content: Buffer.from(structuredJson(event), 'utf8'),
      options: { ...common, contentType: STRUCTURED_CONTENT_TYPE },
    };
  }
  const headers: Record<string, string> = {};
  // The SDK's MQTT binding lists the attributes and extensions without data/data_base64.
  for (const [name, value] of Object.entries(MQTT.binary(event).headers)) {
    if (value === undefined || value === null || name === 'datacontenttype') continue;
    headers[`${AMQP_ATTRIBUTE_PREFIX}${name}`] = String(value);
  }
  return {
    content: dataBytes(event),
    options: { ...common, headers, ...(event.datacontenttype ? { contentType: event.datacontenttype } : {}) },
  };
}

/**
 * A bare payload (a trigger action's, no CloudEvent): the body exactly, its `content-type`
 * property, `message-id` = the message id (consumers deduplicate on it, and the sink matches a
 * basic.return by it), persistent as configured; no `cloudEvents:` headers.
 */
export function encodePlainAmqp(message: PlainMessage, persistent: boolean): AmqpMessage {
  return { content: message.body, options: { persistent, messageId: message.id, mandatory: true, contentType: message.contentType } };
}

/** The event's data as bytes, serialised as the SDK's HTTP binding does (JSON text for JSON data). */
export function dataBytes(event: CloudEvent<unknown>): Buffer {
  const body = binaryData(event.data);
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return Buffer.from(stringifyJson(body), 'utf8');
}
