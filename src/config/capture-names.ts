import { createHash } from 'node:crypto';

/**
 * Names of the replication slot and the publication. A slot name is cluster-wide, so the default
 * is per database: `pg_cloudevents_<database>` (README "Several databases on one cluster"). The
 * database is the one connected to (current_database()), so the name is chosen once connected:
 * see src/sources/logical/names.ts.
 */

/** PostgreSQL's rule for slot names (ReplicationSlotValidateName; NAMEDATALEN - 1 = 63 bytes). */
export const SLOT_NAME = /^[a-z0-9_]{1,63}$/;
export const SLOT_NAME_RULE = 'must be 1 to 63 characters of a-z, 0-9 and _';
const MAX_NAME_BYTES = 63;
const PREFIX = 'pg_cloudevents_';
/** 8 hex digits of SHA-256: 32 bits, against collisions between the few databases of one cluster. */
const HASH_LENGTH = 8;

/** The default of slot and publication before names were per database; kept by installs that have it. */
export const EARLIER_DEFAULT_NAME = 'pg_cloudevents';

/** Where a name came from; `earlier`: the default had no database in it (EARLIER_DEFAULT_NAME), kept. */
export type NameSource = 'environment' | 'file' | 'default' | 'earlier';

/**
 * `pg_cloudevents_<database>`. A database name that is already a valid slot name and fits is used
 * as it is. Any other (upper case, `-`, non-ASCII, too long) has its other characters replaced
 * by `_`, is cut to fit, and gets `_` and a hash of the full name: that rewriting can make two
 * names equal (`My-Db`, `my_db`), the hash keeps them apart.
 */
export function defaultCaptureName(database: string): string {
  const plain = `${PREFIX}${database}`;
  if (SLOT_NAME.test(plain)) return plain;
  const hash = createHash('sha256').update(database, 'utf8').digest('hex').slice(0, HASH_LENGTH);
  const room = MAX_NAME_BYTES - PREFIX.length - 1 - HASH_LENGTH;
  const sanitised = database.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, room);
  return `${PREFIX}${sanitised}_${hash}`;
}

export interface ConfiguredNames {
  slot?: { name: string; source: NameSource };
  publication?: { name: string; source: NameSource };
}

/**
 * PG_CLOUDEVENTS_SLOT and PG_CLOUDEVENTS_PUBLICATION win over the file's capture.slot and
 * capture.publication (which the JSON Schema has checked by the same rule). Blank = unset.
 */
export function configuredNames(
  env: NodeJS.ProcessEnv, file: { slot?: string; publication?: string } | undefined, problems: string[],
): ConfiguredNames {
  const out: ConfiguredNames = {};
  for (const [key, variable] of [['slot', 'PG_CLOUDEVENTS_SLOT'], ['publication', 'PG_CLOUDEVENTS_PUBLICATION']] as const) {
    const value = env[variable]?.trim();
    if (value) {
      if (SLOT_NAME.test(value)) out[key] = { name: value, source: 'environment' };
      else problems.push(`${variable}: ${SLOT_NAME_RULE}${key === 'slot' ? ' (PostgreSQL\'s rule for slot names)' : ''} (got ${JSON.stringify(value)})`);
    } else if (typeof file?.[key] === 'string') {
      out[key] = { name: file[key] as string, source: 'file' };
    }
  }
  return out;
}
