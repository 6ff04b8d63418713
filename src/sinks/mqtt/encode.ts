import { CONSTANTS, MQTT, type CloudEvent } from 'cloudevents';
import { stringifyJson } from '../../events/json-text';
import { binaryData, structuredJson } from '../../events/structured';
import type { PlainMessage } from '../types';

/**
 * CloudEvents MQTT protocol binding (cloudevents/spec bindings/mqtt-protocol-binding.md), MQTT 5.
 * The SDK's `MQTT.binary`/`MQTT.structured` give the attributes and the content type; they are
 * put into the shape the `mqtt` package sends:
 * - §3.1.1: binary mode's PUBLISH `Content Type` is `datacontenttype`;
 * - §3.1.2: the payload is the data bytes (JSON data as UTF-8 JSON text, serialised as the SDK's
 *   HTTP binding does — `MQTT.binary` leaves the data as an object);
 * - §3.1.3: every other attribute and extension is a User Property named as the attribute
 *   (§3.1.3.1), valued by its canonical string form (§3.1.3.2). Like the spec's example (§3.1.4)
 *   and the SDK, `datacontenttype` is also a User Property, so `MQTT.toEvent` rebuilds it;
 * - §3.2: structured mode: `Content Type: application/cloudevents+json; charset=utf-8`, the
 *   JSON event format as payload.
 */
export type ContentMode = 'binary' | 'structured';

export interface MqttMessage {
  payload: Buffer;
  contentType?: string;
  userProperties: Record<string, string>;
}

export function encodeMqtt(event: CloudEvent<unknown>, mode: ContentMode): MqttMessage {
  if (mode === 'structured') {
    // MQTT.structured's content type, and the event as the JSON format with exact RawJson digits.
    return { payload: Buffer.from(structuredJson(event), 'utf8'), contentType: CONSTANTS.DEFAULT_CE_CONTENT_TYPE, userProperties: {} };
  }
  const message = MQTT.binary(event);
  const userProperties: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.headers)) {
    if (value !== undefined && value !== null) userProperties[name] = String(value);
  }
  return { payload: dataBytes(event), contentType: message.PUBLISH?.['Content Type'], userProperties };
}

/**
 * A bare payload (a trigger action's, no CloudEvent): the body exactly, MQTT 5 `Content Type`,
 * and the id as the User Property `id`. The sink speaks MQTT 5 only; a subscriber on MQTT 3.1.1
 * gets the payload alone, since the broker drops properties that 3.1.1 cannot carry.
 */
export function encodePlainMqtt(message: PlainMessage): MqttMessage {
  return { payload: message.body, contentType: message.contentType, userProperties: { id: message.id } };
}

function dataBytes(event: CloudEvent<unknown>): Buffer {
  const body = binaryData(event.data);
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return Buffer.from(stringifyJson(body), 'utf8');
}

/** MQTT 5 §4.7.3: a topic name is non-empty, and has no wildcards (`+`, `#`) or U+0000. */
export function topicProblem(topic: string): string | undefined {
  if (topic.length === 0) return 'is empty';
  if (/[+#\u0000]/.test(topic)) return 'contains a wildcard (+ or #) or NUL, which a topic name may not';
  if (Buffer.byteLength(topic, 'utf8') > 65535) return 'is longer than 65535 bytes';
  return undefined;
}
