/**
 * The CloudEvent of an application event (README "Application events"): the type, subject, data
 * and extensions the application gave pgcloudevents.emit(), with pg-cloudevents' `source`, an
 * `id` from the message's position (commit LSN and ordinal, the same on every redelivery) and the
 * commit time. One shape whatever `events.format`: the formats describe table changes.
 */
import type { CloudEvent } from 'cloudevents';
import { changeSequence, type MessageChange } from '../sources/change';
import { createEvent } from './format';
import { applyOverrides } from './overrides';

/**
 * The ordering key: the subject, so one subject's events keep their order and different subjects
 * go in parallel; without a subject, the type.
 */
export function appEventPartitionKey(change: MessageChange): string {
  return change.event.subject ?? change.event.type;
}

export function buildAppEvent(change: MessageChange, ctx: { source: string; overrides: Record<string, string | number | boolean> }): CloudEvent<unknown> {
  const sequence = changeSequence(change);
  const { type, subject, data, extensions } = change.event;
  const attributes: Record<string, unknown> = {
    specversion: '1.0',
    id: sequence,
    source: ctx.source,
    type,
    ...(subject !== null && { subject }),
    time: change.commitTime.toISOString(),
    datacontenttype: 'application/json',
    sequence,
    partitionkey: appEventPartitionKey(change),
  };
  // The deployment's K_CE_OVERRIDES first; the application's own extensions win over them.
  applyOverrides(attributes, ctx.overrides);
  for (const [name, value] of Object.entries(extensions)) attributes[name] = value;
  attributes.data = data;
  return createEvent(attributes);
}
