import type { CloudEvent } from 'cloudevents';
import { ConfigError, DeliveryError } from '../errors';

/**
 * Destination templates (`params.topic: "{{ app }}.{{ model }}"`): a topic, channel, stream,
 * subject or routing key computed from the event's attributes, so one source fans tables out.
 * Pure: compiled once at start-up, rendered per event. Any context attribute or extension may be
 * named (`id`, `type`, `source`, `subject`, `app`, `model`, `partitionkey`, overrides, …).
 */
export type Template = (event: CloudEvent<unknown>) => string;

const PLACEHOLDER = /\{\{\s*([a-z0-9]+)\s*\}\}/g;

/**
 * Rendering failed for one event (an attribute it lacks). No retry can fix it, so it is a final
 * delivery failure: the event is dead-lettered and every sink can let it propagate as it is.
 */
export class TemplateError extends DeliveryError {
  constructor(message: string) {
    super(message, { retriable: false });
    this.name = 'TemplateError';
  }
}

/** A malformed template is a configuration error (ConfigError), found before anything connects. */
export function compileTemplate(text: string, where: string): Template {
  const stray = text.replace(PLACEHOLDER, '');
  if (stray.includes('{{') || stray.includes('}}')) {
    throw new ConfigError([`${where}: ${JSON.stringify(text)} has a malformed placeholder; write {{ name }} with a lower-case attribute name`]);
  }
  const parts = text.split(PLACEHOLDER);
  // split() with a capture group alternates literal text and attribute names.
  if (parts.length === 1) return () => text;
  return (event) => {
    let out = parts[0];
    for (let i = 1; i < parts.length; i += 2) {
      const value = (event as unknown as Record<string, unknown>)[parts[i]];
      if (value === undefined || value === null || value === '') {
        throw new TemplateError(`${where}: the event has no ${parts[i]} attribute for ${JSON.stringify(text)}`);
      }
      out += String(value) + parts[i + 1];
    }
    return out;
  };
}

/**
 * The destination of a message that is not a CloudEvent (a trigger action's bare payload,
 * `Sink.sendMessage`): the text as written. A template cannot be rendered, since a bare message
 * has no attributes; no retry can change that, so it is a final failure (TemplateError), and the
 * action should name a fixed destination.
 */
export function fixedDestination(text: string, where: string): string {
  if (text.search(PLACEHOLDER) >= 0) {
    throw new TemplateError(`${where}: ${JSON.stringify(text)} is a template over CloudEvent attributes, which a bare message does not have; give the action a fixed destination`);
  }
  return text;
}
