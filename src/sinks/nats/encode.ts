import { CloudEvent, HTTP } from 'cloudevents';
import { stringifyJson } from '../../events/json-text';
import { structuredJson } from '../../events/structured';
import type { PlainMessage } from '../types';

/**
 * CloudEvents NATS protocol binding. The released binding (v1.0.2, §1.3 and §3) defines only the
 * structured mode: the payload is the JSON event format. The next revision (1.0.3-wip) adds
 * binary mode on NATS ≥ 2.2 headers and tells receivers apart by the `Content-Type` header: a
 * value starting with `application/cloudevents` means structured, anything else binary (§3).
 * So the default is structured with that header, which every consumer of either revision reads;
 * `mode: binary` puts each attribute in a `ce-` header (§3.1.3.1), percent-encoded (§3.1.3.2),
 * and the data alone in the payload.
 */
export type NatsMode = 'structured' | 'binary';

export interface NatsMessage {
  headers: Record<string, string>;
  data: Uint8Array;
}

export const STRUCTURED_CONTENT_TYPE = 'application/cloudevents+json; charset=utf-8';

export function encodeNats(event: CloudEvent<unknown>, mode: NatsMode): NatsMessage {
  if (mode === 'structured') {
    return { headers: { 'Content-Type': STRUCTURED_CONTENT_TYPE }, data: Buffer.from(structuredJson(event), 'utf8') };
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.toJSON() as Record<string, unknown>)) {
    if (name === 'data' || name === 'data_base64' || value === undefined || value === null) continue;
    headers[`ce-${name}`] = percentEncode(String(value));
  }
  return { headers, data: dataBytes(event) };
}

/**
 * A bare payload (a trigger action's, no CloudEvent): the body exactly, header `Content-Type`.
 * The sink sends the id as `Nats-Msg-Id` (JetStream deduplicates on it), as for events.
 */
export function encodePlainNats(message: PlainMessage): NatsMessage {
  return { headers: { 'Content-Type': message.contentType }, data: message.body };
}

function dataBytes(event: CloudEvent<unknown>): Uint8Array {
  if (event.data_base64) return Buffer.from(event.data_base64, 'base64');
  const data = event.data;
  if (data === undefined || data === null) return new Uint8Array(0);
  if (data instanceof Uint8Array) return data;
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  return Buffer.from(stringifyJson(data), 'utf8');
}

/**
 * §3.1.3.2: space, double-quote, percent and anything outside printable ASCII (U+0021–U+007E)
 * become `%XY` per UTF-8 byte, upper-case; a surrogate pair is one character.
 */
export function percentEncode(value: string): string {
  let out = '';
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    if (c >= 0x21 && c <= 0x7e && c !== 0x22 && c !== 0x25) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** §3.1.3.2 decoding: unquote a double-quoted value, then one round of percent-decoding (invalid UTF-8 throws). */
export function percentDecode(value: string): string {
  let text = value.trim();
  if (text.length >= 2 && text.startsWith('"') && text.endsWith('"')) text = text.slice(1, -1).replace(/\\(.)/g, '$1');
  return decodeURIComponent(text);
}

/** What a consumer has: the message's headers (case-insensitive names) and payload. */
export interface ReceivedNatsMessage {
  headers?: { keys(): string[]; get(name: string): string };
  data: Uint8Array;
}

/**
 * The consumer side: rebuilds and validates the CloudEvent from a NATS message in either mode.
 * Structured when `Content-Type` starts with `application/cloudevents`, or when there are no
 * `ce-` headers at all (messages from servers older than 2.2 carry no headers).
 */
export function decodeNats(msg: ReceivedNatsMessage): CloudEvent<unknown> {
  const headers: Record<string, string> = {};
  for (const key of msg.headers?.keys() ?? []) headers[key.toLowerCase()] = msg.headers!.get(key);
  const body = Buffer.from(msg.data);
  const contentType = headers['content-type'] ?? '';
  if (/^application\/cloudevents/i.test(contentType) || headers['ce-specversion'] === undefined) {
    return HTTP.toEvent({ headers: { 'content-type': 'application/cloudevents+json' }, body: body.toString('utf8') }) as CloudEvent<unknown>;
  }
  const attributes: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith('ce-')) attributes[name.slice(3)] = percentDecode(value);
  }
  const type = String(attributes.datacontenttype ?? 'application/json');
  if (body.length > 0) {
    if (/[/+]json(;|$)/i.test(type.replace(/\s/g, ''))) attributes.data = JSON.parse(body.toString('utf8'));
    else if (/^text\//i.test(type)) attributes.data = body.toString('utf8');
    else attributes.data = new Uint8Array(body);
  }
  return new CloudEvent<unknown>(attributes as ConstructorParameters<typeof CloudEvent<unknown>>[0]);
}
