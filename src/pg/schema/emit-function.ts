/**
 * pgcloudevents.emit(type, subject, data, extensions) (README "Application events"): the SQL an
 * application calls in its own transaction. A thin wrapper over pg_logical_emit_message(true,
 * <prefix>, <json>) that refuses bad input itself, so the application gets the error in its
 * transaction. Created by `setup` with the configured `events.messagePrefix` baked in (CREATE OR
 * REPLACE whenever its text differs: changing the prefix takes `setup` again); dropped by
 * `teardown`. Not a migration: its text depends on the configuration, not only on the version.
 */
import type { Knex } from 'knex';
import type { Config } from '../../config/types';
import { RESERVED_ATTRIBUTES } from '../../events/overrides';
import { messagePrefix } from '../../sources/app-event';
import type { SetupStep } from '../../sources/logical/setup';
import { quoteIdent, quoteLiteral } from '../catalog-sql';

export const EMIT_FUNCTION = 'emit';
const SIGNATURE = '(text, text, jsonb, jsonb)';

export interface EmitFunctionState {
  /** PostgreSQL's major version: application events need 14+. */
  serverMajor: number;
  exists: boolean;
  /** Its body, as pg_proc keeps it; null when it does not exist. */
  body: string | null;
}

/** The function's name, quoted and schema-qualified. */
export function emitFunctionName(config: Pick<Config, 'deadLetters'>): string {
  return `${quoteIdent(config.deadLetters.schema)}.${quoteIdent(EMIT_FUNCTION)}`;
}

/**
 * The plpgsql body: checks as parseAppEvent (src/sources/app-event.ts) does on the capture side;
 * the prefix and the reserved names are literals of this file and the configuration, quoted.
 */
export function emitFunctionBody(prefix: string): string {
  const reserved = `ARRAY[${[...RESERVED_ATTRIBUTES].map(quoteLiteral).join(', ')}]`;
  return `
DECLARE
  ext record;
BEGIN
  IF $1 IS NULL OR $1 = '' THEN
    RAISE EXCEPTION 'pgcloudevents.emit: type must be a non-empty text' USING ERRCODE = '22023';
  END IF;
  IF $4 IS NOT NULL THEN
    IF jsonb_typeof($4) <> 'object' THEN
      RAISE EXCEPTION 'pgcloudevents.emit: extensions must be a JSON object, got %', jsonb_typeof($4) USING ERRCODE = '22023';
    END IF;
    FOR ext IN SELECT key, value FROM jsonb_each($4) LOOP
      IF ext.key !~ '^[a-z0-9]{1,20}$' THEN
        RAISE EXCEPTION 'pgcloudevents.emit: extension name "%" must be 1 to 20 lower-case letters or digits', ext.key USING ERRCODE = '22023';
      END IF;
      IF ext.key = ANY (${reserved}) THEN
        RAISE EXCEPTION 'pgcloudevents.emit: extension name "%" is an attribute pg-cloudevents sets', ext.key USING ERRCODE = '22023';
      END IF;
      IF jsonb_typeof(ext.value) NOT IN ('string', 'boolean')
         AND NOT (jsonb_typeof(ext.value) = 'number' AND ext.value::text ~ '^-?[0-9]+$'
                  AND ext.value::numeric BETWEEN -2147483648 AND 2147483647) THEN
        RAISE EXCEPTION 'pgcloudevents.emit: extension "%" must be a string, a boolean or a 32-bit integer', ext.key USING ERRCODE = '22023';
      END IF;
    END LOOP;
  END IF;
  RETURN pg_logical_emit_message(true, ${quoteLiteral(prefix)}, jsonb_build_object(
    'specversion', '1.0', 'type', $1, 'subject', $2, 'data', $3, 'extensions', coalesce($4, '{}'::jsonb))::text);
END
`;
}

export function createEmitFunctionSql(config: Pick<Config, 'deadLetters' | 'events'>): string {
  return `CREATE OR REPLACE FUNCTION ${emitFunctionName(config)}(type text, subject text, data jsonb, extensions jsonb DEFAULT NULL)
RETURNS pg_lsn LANGUAGE plpgsql VOLATILE AS $pgce_emit$${emitFunctionBody(messagePrefix(config))}$pgce_emit$`;
}

/** ? ?: the schema and the function's name. */
const EMIT_FUNCTION_STATE_SQL = `SELECT current_setting('server_version_num')::int / 10000 AS server_major,
  (SELECT p.prosrc FROM pg_proc p WHERE p.oid = to_regprocedure(format('%I.%I${SIGNATURE}', ?::text, ?::text))) AS body`;

export async function inspectEmitFunction(knex: Knex, config: Pick<Config, 'deadLetters'>): Promise<EmitFunctionState> {
  const { rows } = await knex.raw(EMIT_FUNCTION_STATE_SQL, [config.deadLetters.schema, EMIT_FUNCTION]);
  const body: string | null = rows[0].body ?? null;
  return { serverMajor: rows[0].server_major, exists: body !== null, body };
}

/** Creates the function, or replaces it when its text is not this version's with this prefix. */
export function planEmitFunctionSetup(state: EmitFunctionState, config: Pick<Config, 'deadLetters' | 'events'>): SetupStep[] {
  if (state.body === emitFunctionBody(messagePrefix(config))) return [];
  return [{
    description: `${state.exists ? 'replace' : 'create'} function ${config.deadLetters.schema}.${EMIT_FUNCTION}() (application events, prefix ${messagePrefix(config)})`,
    sql: createEmitFunctionSql(config),
  }];
}

export function planEmitFunctionTeardown(state: EmitFunctionState, config: Pick<Config, 'deadLetters'>): SetupStep[] {
  if (!state.exists) return [];
  return [{
    description: `drop function ${config.deadLetters.schema}.${EMIT_FUNCTION}()`,
    sql: `DROP FUNCTION IF EXISTS ${emitFunctionName(config)}${SIGNATURE}`,
  }];
}

/** What `check` says on PostgreSQL 13: capture works, application events do not arrive. */
export function emitFunctionWarning(state: EmitFunctionState): string | undefined {
  if (state.serverMajor >= 14) return undefined;
  return `PostgreSQL ${state.serverMajor} does not stream logical messages to pgoutput (14+ does): application events ` +
    '(pgcloudevents.emit) are not delivered; row changes are';
}
