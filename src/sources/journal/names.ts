import type { Config } from '../../config/types';
import { derivedName, schemaNames, type SchemaNames } from '../../pg/schema/names';

/**
 * A journal capture's names, all made from capture.slot (the capture's name in either mode:
 * per database by default, src/config/capture-names.ts), so two configurations capturing in one
 * database never share a function, a trigger or a NOTIFY channel:
 *   function  <schema>.<capture>_journal()     writes the journal row and sends the wake-up
 *   trigger   <capture>_journal                 AFTER INSERT OR UPDATE OR DELETE … FOR EACH ROW
 *             <capture>_journal_truncate        AFTER TRUNCATE … FOR EACH STATEMENT
 *   channel   <capture>_journal                 LISTEN/NOTIFY, no payload (a wake-up only)
 */
export interface JournalNames {
  capture: string;
  schema: SchemaNames;
  function: string;
  rowTrigger: string;
  truncateTrigger: string;
  channel: string;
}

export function journalNames(config: Pick<Config, 'capture' | 'deadLetters'>): JournalNames {
  const capture = config.capture.slot;
  return {
    capture,
    schema: schemaNames(config),
    function: derivedName(capture, '_journal'),
    rowTrigger: derivedName(capture, '_journal'),
    truncateTrigger: derivedName(capture, '_journal_truncate'),
    channel: derivedName(capture, '_journal'),
  };
}
