import { CONSTANTS, CloudEvent, Kafka } from 'cloudevents';
import type { Message } from 'kafkajs';
import { stringifyJson } from '../../events/json-text';
import { structuredJson } from '../../events/structured';
import type { PlainMessage } from '../types';

export type KafkaMode = 'binary' | 'structured';

/**
 * One CloudEvent as Kafka records, by the SDK's Kafka binding (CloudEvents Kafka Protocol Binding
 * v1.0): binary mode puts the attributes in `ce_` headers and the JSON data in the value (§3.2),
 * structured mode the whole event as application/cloudevents+json in the value (§3.3).
 *
 * Key (§3.1, Key Mapping): the `partitionkey` extension (`<app>.<model>/<primary key>`), so every
 * change of a row lands in one partition, in order. The django-compatible format has no
 * `partitionkey`: its `subject` (`DCE:<app>.<model>/<pk>`) identifies the row just as well.
 *
 * With `tombstone`, a delete is followed by a record with the same key and a null value, so log
 * compaction eventually drops the row's key (Debezium's habit). Both records go in one produce
 * request, to one partition, acknowledged together.
 */
export function encodeKafkaMessages(event: CloudEvent<unknown>, mode: KafkaMode, tombstone: boolean): Message[] {
  const key = keyOf(event);
  // Structured mode is written here rather than by Kafka.structured, whose value is
  // JSON.stringify(event): it would round the numbers a RawJson keeps exact.
  const message: Message =
    mode === 'structured'
      ? { key, value: structuredJson(event), headers: { [CONSTANTS.HEADER_CONTENT_TYPE]: CONSTANTS.DEFAULT_CE_CONTENT_TYPE } }
      : { key, value: dataValue(event), headers: headersOf(Kafka.binary(event).headers) };
  // The record's timestamp is the event's time (the commit time), in ms, as the SDK computes it.
  if (event.time) message.timestamp = String(Date.parse(event.time));
  const messages = [message];
  if (tombstone && key !== null && isDelete(event)) messages.push({ key, value: null, timestamp: message.timestamp });
  return messages;
}

/**
 * A bare payload (a trigger action's, no CloudEvent) as one record: the value is the body exactly,
 * headers `content-type` and `id` (consumers dedupe on it), the key is the row's partition key so
 * a row's messages stay in one partition, in order. No `ce_` headers; the timestamp is the
 * producer's (there is no event time).
 */
export function encodePlainKafkaMessage(message: PlainMessage): Message {
  return {
    key: message.key ?? null,
    value: message.body,
    headers: { [CONSTANTS.HEADER_CONTENT_TYPE]: message.contentType, id: message.id },
  };
}

function keyOf(event: CloudEvent<unknown>): string | null {
  const attrs = event as unknown as Record<string, unknown>;
  for (const name of ['partitionkey', 'subject']) {
    const v = attrs[name];
    if (v !== undefined && v !== null && v !== '') return String(v);
  }
  return null;
}

/** Binary mode value: the data as JSON (datacontenttype application/json), or null without data. */
function dataValue(event: CloudEvent<unknown>): string | null {
  if (event.data === undefined) return null;
  if (typeof event.data === 'string' && !/json/.test(event.datacontenttype ?? '')) return event.data;
  return stringifyJson(event.data);
}

/**
 * Kafka header values must be strings or bytes: attributes that are undefined are left out, numbers
 * and booleans become their text (§3.2.3 Metadata Headers). `ce_datacontenttype` is dropped: in
 * binary mode the content type travels as `content-type` (§3.2.1), which the SDK also sets.
 */
function headersOf(headers: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || value === null || name === 'ce_datacontenttype') continue;
    out[name] = typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
  return out;
}

/** `orm.post_delete`, `django.orm.post_delete`: the type prefix is configurable, the suffix is not. */
function isDelete(event: CloudEvent<unknown>): boolean {
  return event.type.endsWith('.post_delete');
}
