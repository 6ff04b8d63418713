/**
 * `events.format: django`: the events django-signals-cloudevents sends, so its consumers keep
 * working. Mirrors `get_cloudevent_from_signal` in
 * github.com/airspot-dev/django-signals-cloudevents, django_signals_cloudevents/__init__.py
 * (commit 8819fda, the release whose types read `django.orm.post_save`):
 *   - type `django.orm.<signal>`, source K_SOURCE else `django-orm`, datacontenttype application/json
 *   - subject `DCE:<app_label>.<model_name>/<instance.id>`, `DCE:<app>.<model>` without an instance
 *   - extensions `djangoapp`, `djangomodel`, and `originid` equal to `id`
 *   - data `{data: {field: str(value)}, signal_kwargs: {...}, db_table}`
 * Deliberate differences, each the closest faithful equivalent:
 *   - `id` is our deterministic change sequence, not a fresh uuid4: redeliveries must keep their id.
 *   - `data` is keyed by column name (`author_id`), not Django field name (`author`), and holds
 *     the row's columns only: the original's str() of related objects, reverse relations and
 *     many-to-many lists needs the ORM.
 *   - `update_fields` is always null, as the original sent it (a non-null frozenset made its
 *     json.dumps fail); `raw` is true for backfill, as Django's loaddata sets it.
 *   - truncate (no Django signal) is `django.orm.post_truncate`, shaped like the original's event
 *     without an instance: no `data` key.
 *   - `unchanged_toast_columns` is added when PostgreSQL did not send some values, so their absence
 *     is not mistaken for a value.
 */
import type { CloudEvent } from 'cloudevents';
import { changeSequence, type TableChange, type RelationInfo, type Row } from '../sources/change';
import { USING } from './default';
import { createEvent, type DjangoEventData, type EventContext, type EventData, type EventFormat, type SignalKwargs } from './format';
import { applyOverrides } from './overrides';
import { pyStr } from './pystr';
import { primaryKeyText, SIGNAL_BY_KIND } from './subject';
import { schemaChangeData } from './schema-change';
import type { RowChange, TruncateChange } from '../sources/change';

/** Column name → type OID, computed once per relation (relations are replaced, never mutated). */
const typeOids = new WeakMap<RelationInfo, Map<string, number>>();

function typeOidsOf(relation: RelationInfo): Map<string, number> {
  let map = typeOids.get(relation);
  if (map === undefined) {
    map = new Map(relation.columns.map((c) => [c.name, c.typeOid]));
    typeOids.set(relation, map);
  }
  return map;
}

function renderRow(row: Row, oids: Map<string, number>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in row) out[name] = pyStr(row[name], oids.get(name));
  return out;
}

function signalKwargs(change: RowChange | TruncateChange, raw: boolean): SignalKwargs {
  switch (change.kind) {
    case 'insert':
    case 'update':
      // Django's post_save kwargs after `signal` and `instance` are popped, in Django's order.
      return { created: change.kind === 'insert', update_fields: null, raw, using: USING };
    case 'delete':
      return { using: USING };
    case 'truncate':
      return { using: USING, cascade: change.cascade, restart_identity: change.restartIdentity };
  }
}

function eventData(change: RowChange | TruncateChange, raw: boolean, oids: Map<string, number>): DjangoEventData {
  const signal_kwargs = signalKwargs(change, raw);
  const db_table = change.relation.table;
  if (change.kind === 'truncate') return { signal_kwargs, db_table };
  // Key order as the original builds the payload: data, signal_kwargs, db_table.
  const data: DjangoEventData = {
    data: renderRow(change.kind === 'delete' ? change.old : change.new, oids),
    signal_kwargs,
    db_table,
  };
  if (change.missingColumns.length > 0) data.unchanged_toast_columns = change.missingColumns;
  return data;
}

export const djangoFormat: EventFormat = Object.freeze({
  name: 'django',
  defaultTypePrefix: 'django.orm',
  defaultSource(): string {
    return 'django-orm';
  },
  build(change: TableChange, ctx: EventContext): CloudEvent<EventData> {
    const id = changeSequence(change);
    const { app, model } = ctx.table;
    const oids = typeOidsOf(change.relation);
    // str(instance.id); a composite key joins each value's str() with `,`.
    const pk = primaryKeyText(change, (value, column) => pyStr(value, oids.get(column)));
    const attributes: Record<string, unknown> = {
      specversion: '1.0',
      id,
      source: ctx.source,
      type: `${ctx.typePrefix}.${SIGNAL_BY_KIND[change.kind]}`,
      subject: pk === undefined ? `DCE:${app}.${model}` : `DCE:${app}.${model}/${pk}`,
      time: change.commitTime.toISOString(),
      datacontenttype: 'application/json',
      djangoapp: app,
      djangomodel: model,
      originid: id,
    };
    applyOverrides(attributes, ctx.overrides);
    // No Django signal: the schema change's own data, as in the default format.
    attributes.data = change.kind === 'schema' ? schemaChangeData(change) : eventData(change, ctx.backfill === true, oids);
    return createEvent(attributes);
  },
});
