import { CloudEvent } from 'cloudevents';
import { structuredJson } from '../../events/structured';

/**
 * The dead-letter table keeps an event as the structured-mode JSON text every sink writes
 * (`structuredJson`), byte for byte: `replay` rebuilds the event from it, and the sink writes the
 * very same text again (attributes in the SDK's order, which `new CloudEvent` restores; strings
 * and numbers as first written, which JSON.stringify of JSON.parse reproduces).
 */
export function storedEventText(event: CloudEvent<unknown>): string {
  return structuredJson(event);
}

/** The event stored as `text`; throws when it is not JSON or not a valid CloudEvent. */
export function eventFromStoredText(text: string): CloudEvent<unknown> {
  const attributes = JSON.parse(text) as unknown;
  if (attributes === null || typeof attributes !== 'object' || Array.isArray(attributes)) {
    throw new Error('the stored event is not a JSON object');
  }
  return new CloudEvent<unknown>(attributes as never);
}
