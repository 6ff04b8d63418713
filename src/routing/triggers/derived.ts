/**
 * The identity of a trigger action's deliveries (README, "Triggers"): its destination name, its
 * deterministic event id, the delivery event the engine carries (and dead-letters), and the
 * derived CloudEvent that `cloudevent` actions (and `format: cloudevent`) send.
 */
import type { CloudEvent } from 'cloudevents';
import { createEvent } from '../../events/format';

/** The destination name of action `index` (0-based) of `rule`: what logs, metrics and dead letters show. */
export function actionDestinationName(rule: string, index: number): string {
  return `trigger:${rule}/${index}`;
}

/**
 * The derived event's id: the change event's id, the rule and the action, so a redelivery of the
 * same change (after a restart) carries the same id and receivers can deduplicate.
 */
export function derivedEventId(eventId: string, rule: string, index: number): string {
  return `${eventId}/trigger/${rule}/${index}`;
}

/**
 * The event an action's delivery carries through the engine: the derived event's identity (its
 * own id, type and `trigger` extension, the change event's source, subject, time and other
 * extensions) with the change event's `data`, not rendered yet. So a dead letter of the action
 * is a row of its own (the dead-letter table keeps one row per event id), named as the action's,
 * and never mistaken for the change's default event.
 */
export function actionEvent(event: CloudEvent<unknown>, rule: string, index: number, type: string): CloudEvent<unknown> {
  const attributes: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(event)) {
    if (name !== 'data_base64' && value !== undefined) attributes[name] = value;
  }
  attributes.id = derivedEventId(event.id, rule, index);
  attributes.type = type;
  attributes.trigger = rule;
  const shell = createEvent(attributes) as CloudEvent<unknown>;
  changeEvents.set(shell, event);
  return shell;
}

/** An action's delivery event → the change's event it came from (what `event.*` reads in templates). */
export const changeEvents = new WeakMap<CloudEvent<unknown>, CloudEvent<unknown>>();

/** What the action sends: its delivery event with `data` the rendered payload (a string as text/plain). */
export function derivedEvent(shell: CloudEvent<unknown>, payload: unknown): CloudEvent<unknown> {
  const attributes: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(shell)) {
    if (name !== 'data' && name !== 'data_base64' && value !== undefined) attributes[name] = value;
  }
  attributes.datacontenttype = typeof payload === 'string' ? 'text/plain' : 'application/json';
  attributes.data = payload;
  return createEvent(attributes) as CloudEvent<unknown>;
}

