import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { quoteIdent } from '../../../src/pg/catalog-sql';

/**
 * The SQL of the version before knex's migrator, verbatim (test/integration/fixtures/pre-knex-schema/:
 * 000001.sql and 000002.sql made the dead-letter table, slot-record.sql the slot record), with
 * its placeholders filled in as that version did: quoted identifiers only, comment lines dropped.
 * Tests make old installs with it and check that the migrations adopt them.
 */
export function preKnexSql(file: '000001.sql' | '000002.sql' | 'slot-record.sql', schema: string, table: string): string {
  // Compiled tests run from dist/test/integration/harness: the fixtures stay in the source tree.
  const text = readFileSync(join(__dirname, '..', '..', '..', '..', 'test', 'integration', 'fixtures', 'pre-knex-schema', file), 'utf8');
  const ids: Record<string, string> = {
    schema: quoteIdent(schema), table: quoteIdent(table),
    created_at_index: quoteIdent(`${table}_created_at_idx`), event_id_index: quoteIdent(`${table}_event_id_key`),
    partition_key_index: quoteIdent(`${table}_partition_key_idx`), event_check: quoteIdent(`${table}_event_or_raw_change`),
  };
  return text.split('\n').filter((l) => !l.trimStart().startsWith('--')).join('\n')
    .replace(/(?<![:\w]):([a-z_]+)\b/g, (_m, name: string) => ids[name]);
}
