import { CloudEvent, Kafka } from 'cloudevents';
import type { Message } from 'kafkajs';

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
  const encoded = mode === 'structured' ? Kafka.structured(event) : Kafka.binary(event);
  const message: Message = {
    key,
    value: mode === 'structured' ? String(encoded.value) : dataValue(event),
    headers: headersOf(encoded.headers),
  };
  // The record's timestamp is the event's time (the commit time), in ms, as the SDK computes it.
  if (encoded.timestamp) message.timestamp = encoded.timestamp;
  const messages = [message];
  if (tombstone && key !== null && isDelete(event)) messages.push({ key, value: null, timestamp: message.timestamp });
  return messages;
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
  return JSON.stringify(event.data);
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
