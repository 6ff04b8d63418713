import type { CloudEvent } from 'cloudevents';
import type { Change } from '../sources/change';
import { databaseName } from '../pg/db';
import type { Config, TableConfig } from '../config/types';
import { getEventFormat, resolveSource } from '.';
import { buildAppEvent } from './app-event';

/** The events' `source` (K_SOURCE, `source`, else the format's default for the database): derived events share it. */
export function eventSource(config: Config, env: NodeJS.ProcessEnv, database?: string): string {
  return resolveSource({
    // Trimmed as loadConfig trimmed it when it checked it.
    kSource: env.K_SOURCE?.trim() || undefined,
    configured: config.events.source,
    format: getEventFormat(config.events.format),
    databaseName: database ?? databaseName(config.databaseUrl) ?? 'postgres',
  });
}

/** Change → CloudEvent with the configured format, source, type prefix and overrides. */
export function eventBuilder(config: Config, env: NodeJS.ProcessEnv, database?: string): (change: Change) => CloudEvent<unknown> {
  const format = getEventFormat(config.events.format);
  const source = eventSource(config, env, database);
  const tables = new Map<string, TableConfig>(config.tables.map((t) => [`${t.schema}.${t.name}`, t]));
  const contexts = new Map<string, Parameters<typeof format.build>[1]>();
  const backfillContexts = new Map<string, Parameters<typeof format.build>[1]>();
  const appContext = { source, overrides: config.events.overrides };
  return (change) => {
    if (change.kind === 'message') return buildAppEvent(change, appContext);
    const key = `${change.relation.schema}.${change.relation.table}`;
    let ctx = contexts.get(key);
    if (!ctx) {
      const table = tables.get(key) ?? {
        table: key, schema: change.relation.schema, name: change.relation.table,
        app: change.relation.schema, model: change.relation.table,
      };
      ctx = { source, typePrefix: config.events.typePrefix, overrides: config.events.overrides, table };
      contexts.set(key, ctx);
    }
    if (change.kind === 'insert' && change.backfill) {
      // A row that already existed: Django's `raw: true`, as loaddata sets it.
      let backfillCtx = backfillContexts.get(key);
      if (!backfillCtx) backfillContexts.set(key, backfillCtx = { ...ctx, backfill: true });
      return format.build(change, backfillCtx);
    }
    return format.build(change, ctx);
  };
}
