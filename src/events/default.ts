/**
 * The default event format (README, "The event"): Django-signal shaped `data`
 * with JSON-natural column values, deterministic `id`, and the `app`, `model`, `sequence`,
 * `partitionkey` extensions.
 */
import type { CloudEvent } from 'cloudevents';
import { changeSequence, type TableChange } from '../sources/change';
import { createEvent, type DefaultEventData, type EventContext, type EventData, type EventFormat, type SignalKwargs } from './format';
import { applyOverrides } from './overrides';
import { primaryKeyText, SIGNAL_BY_KIND } from './subject';
import { changedColumns } from './update-fields';
import { schemaChangeData } from './schema-change';
import type { RowChange, TruncateChange } from '../sources/change';

/** Django's database alias; there is one database per source. */
export const USING = 'default';

function signalKwargs(change: RowChange | TruncateChange, raw: boolean): SignalKwargs {
  switch (change.kind) {
    case 'insert':
      return { created: true, update_fields: null, raw, using: USING };
    case 'update': {
      const fullOld = change.old !== undefined && !change.oldIsKeyOnly;
      return {
        created: false,
        update_fields: fullOld ? changedColumns(change.old!, change.new) : null,
        raw,
        using: USING,
      };
    }
    case 'delete':
      return { using: USING };
    case 'truncate':
      // Django has no truncate signal: `using` as for post_delete plus the TRUNCATE options.
      return { using: USING, cascade: change.cascade, restart_identity: change.restartIdentity };
  }
}

function eventData(change: RowChange | TruncateChange, raw: boolean): DefaultEventData {
  const db_table = change.relation.table;
  const signal_kwargs = signalKwargs(change, raw);
  // Truncate concerns no single row: `data` is null rather than absent so consumers can read
  // `data.data` uniformly.
  if (change.kind === 'truncate') return { data: null, signal_kwargs, db_table };
  const data: DefaultEventData = {
    data: change.kind === 'delete' ? change.old : change.new,
    signal_kwargs,
    db_table,
  };
  // `old` for an update whenever PostgreSQL sent it: the whole row (REPLICA IDENTITY FULL) or the
  // previous key when the key changed (update_fields is null then, telling the two apart).
  if (change.kind === 'update' && change.old !== undefined) data.old = change.old;
  if (change.missingColumns.length > 0) data.unchanged_toast_columns = change.missingColumns;
  return data;
}

export const defaultFormat: EventFormat = Object.freeze({
  name: 'default',
  defaultTypePrefix: 'orm',
  defaultSource(databaseName: string): string {
    // `source` is a URI-reference (CloudEvents 1.0 "source"): escape names with spaces etc.
    return `/pg-cloudevents/${encodeURIComponent(databaseName)}`;
  },
  build(change: TableChange, ctx: EventContext): CloudEvent<EventData> {
    const sequence = changeSequence(change);
    const { app, model } = ctx.table;
    const pk = primaryKeyText(change);
    const partitionkey = pk === undefined ? `${app}.${model}` : `${app}.${model}/${pk}`;
    const attributes: Record<string, unknown> = {
      specversion: '1.0',
      id: sequence,
      source: ctx.source,
      type: `${ctx.typePrefix}.${SIGNAL_BY_KIND[change.kind]}`,
      subject: `DCE:${partitionkey}`,
      time: change.commitTime.toISOString(),
      datacontenttype: 'application/json',
      app,
      model,
      sequence,
      partitionkey,
    };
    applyOverrides(attributes, ctx.overrides);
    // A schema change concerns no row: its own data (README "Schema-change events").
    attributes.data = change.kind === 'schema' ? schemaChangeData(change) : eventData(change, ctx.backfill === true);
    return createEvent(attributes);
  },
});
