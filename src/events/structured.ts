import type { CloudEvent } from 'cloudevents';
import { types } from 'node:util';
import { stringifyJson } from './json-text';

/** `time` as the SDK writes it (Date#toISOString); formats already produce this form. */
const CANONICAL_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** The SDK's normalisation of `time`, without a Date round trip when it is already canonical. */
export function canonicalTime(time: string): string {
  return CANONICAL_TIME.test(time) ? time : new Date(time).toISOString();
}

/**
 * The structured-mode form of an event (CloudEvents JSON format), as every sink that sends one
 * writes it. It is what CloudEvent#toJSON returns — defined attributes, `time` normalised,
 * data_base64 instead of data for binary data — built without toJSON's spread of every attribute
 * (undefined ones included) and its Date round trip for a time already in canonical form
 * (`node bench/ab/micro.js` times both). The unit tests compare it with JSON.stringify(event).
 */
export function structuredForm(event: CloudEvent<unknown>): Record<string, unknown> {
  const attributes = event as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const name in attributes) {
    const value = attributes[name];
    if (value === undefined || (name === 'data' && event.data_base64)) continue;
    out[name] = name === 'time' ? canonicalTime(value as string) : value;
  }
  return out;
}

/**
 * The event as structured-mode JSON text: `JSON.stringify(event)`, faster, and with the exact
 * digits of every RawJson number in `data` (README, "The event").
 */
export function structuredJson(event: CloudEvent<unknown>): string {
  return stringifyJson(structuredForm(event));
}

/**
 * Binary-mode data as the SDK's bindings serialise it (`HTTP.binary(event).body`): an object as
 * JSON text, RawJson spliced; typed arrays, strings and undefined as they are.
 */
export function binaryData(data: unknown): unknown {
  return typeof data === 'object' && !types.isTypedArray(data) ? stringifyJson(data) : data;
}
