import { CloudEvent } from 'cloudevents';
import { parseJsonLossless } from '../../events/json-text';
import { structuredJson } from '../../events/structured';

/**
 * The dead-letter table keeps an event as the structured-mode JSON text every sink writes
 * (`structuredJson`), byte for byte: `replay` rebuilds the event from it, and the sink writes the
 * very same text again. That text is JSON.stringify's (members in JavaScript's order, strings
 * escaped its way) with exact numbers spliced in; `parseJsonLossless` keeps those numbers as
 * RawJson, JSON.stringify of the rest reproduces it, and `new CloudEvent` restores the
 * attributes' order.
 */
export function storedEventText(event: CloudEvent<unknown>): string {
  return structuredJson(event);
}

/** The event stored as `text`; throws when it is not JSON or not a valid CloudEvent. */
export function eventFromStoredText(text: string): CloudEvent<unknown> {
  const attributes = parseJsonLossless(text);
  if (attributes === null || typeof attributes !== 'object' || Array.isArray(attributes)) {
    throw new Error('the stored event is not a JSON object');
  }
  return new CloudEvent<unknown>(attributes as never);
}
