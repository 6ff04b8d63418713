import type { Client } from 'pg';
import { defaultCaptureName, EARLIER_DEFAULT_NAME, type NameSource } from '../../config/capture-names';
import type { CaptureNames, Config } from '../../config/types';
import { CAPTURE_NAMES_SQL, CURRENT_DATABASE_SQL } from '../../pg/catalog-sql';

/**
 * The per-database default names, chosen once connected: `pg_cloudevents_<current_database()>`.
 * current_database() rather than the URL: it is the database PostgreSQL actually gave us (a URL
 * without one means the user's name, or PGDATABASE; a pooler may rename it), and the slot lives there.
 *
 * Upgrades: an earlier version's default was `pg_cloudevents` for both. When the new default does
 * not exist in this database but `pg_cloudevents` does, that one is kept: a new slot would start
 * from now (the changes the old one still holds would never be delivered) while the old one kept
 * retaining WAL, and replicas of both versions would hold different leader locks. The slot reads
 * through the publication as it was at each change, so the publication is kept the same way.
 * verify() reports either as a warning naming how to pin or move the names.
 */
export async function resolveCaptureNames(client: Pick<Client, 'query'>, config: Config): Promise<Config> {
  const { capture } = config;
  if (capture.slot !== '' && capture.publication !== '') return config;
  const database: string = (await client.query(CURRENT_DATABASE_SQL)).rows[0].database;
  const name = defaultCaptureName(database);
  const found = (await client.query(CAPTURE_NAMES_SQL, [name, EARLIER_DEFAULT_NAME])).rows[0] as {
    default_slot: boolean; earlier_slot: boolean; default_publication: boolean; earlier_publication: boolean;
  };
  const notes: string[] = [];
  const names: CaptureNames = { ...capture.names, notes };
  const pick = (configured: string, exists: boolean, earlierExists: boolean): [string, NameSource | undefined] => {
    if (configured !== '') return [configured, undefined];
    return !exists && earlierExists ? [EARLIER_DEFAULT_NAME, 'earlier'] : [name, 'default'];
  };
  const [slot, slotSource] = pick(capture.slot, found.default_slot, found.earlier_slot);
  const [publication, publicationSource] = pick(capture.publication, found.default_publication, found.earlier_publication);
  if (slotSource) names.slot = slotSource;
  if (publicationSource) names.publication = publicationSource;

  const kept = [slotSource === 'earlier' && `replication slot "${slot}"`, publicationSource === 'earlier' && `publication "${publication}"`]
    .filter(Boolean);
  if (kept.length) {
    notes.push(
      `${kept.join(' and ')} of an earlier version ${kept.length > 1 ? 'are' : 'is'} kept, so nothing is lost; the default ` +
      `name is now "${name}" (per database). To keep ${EARLIER_DEFAULT_NAME} for good set ` +
      `${[slotSource === 'earlier' && `PG_CLOUDEVENTS_SLOT=${EARLIER_DEFAULT_NAME}`, publicationSource === 'earlier' && `PG_CLOUDEVENTS_PUBLICATION=${EARLIER_DEFAULT_NAME}`].filter(Boolean).join(' and ')} ` +
      `(or capture.slot/capture.publication); README "Several databases on one cluster" says how to move to the new name`);
  }
  if (slotSource === 'default' && found.default_slot && found.earlier_slot) {
    notes.push(
      `replication slot "${EARLIER_DEFAULT_NAME}" (an earlier version's default) also exists in database "${database}", ` +
      `but capture reads "${name}": PostgreSQL keeps WAL for it until it is read or dropped. If nothing reads it: ` +
      `SELECT pg_drop_replication_slot('${EARLIER_DEFAULT_NAME}')`);
  }
  const resolved = Object.freeze({ ...capture, slot, publication, names: Object.freeze(names) });
  return Object.freeze({ ...config, capture: resolved });
}
