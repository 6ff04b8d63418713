import { expect } from 'chai';
import type { Config } from '../../../../src/config/types';
import { tablesJoining } from '../../../../src/sources/backfill';
import type { JournalState } from '../../../../src/sources/journal/setup';

const table = (name: string, backfill?: string) => ({ table: `public.${name}`, schema: 'public', name, app: 'public', model: name, backfill });
const config = (mode: string) => ({
  capture: { mode, slot: 'cap', publication: 'cap' }, deadLetters: { schema: 'pgcloudevents', table: 'dead_letters' },
  tables: [table('a', 'onAdd'), table('b', 'onAdd'), table('c')],
}) as unknown as Config;
const journal = (triggered: string[]): JournalState => ({
  tableExists: true, functionExists: true, functionCurrent: true, otherFunctions: 0, ownRows: 0, otherRows: 0,
  tables: [{ schema: 'public', name: 'a', relid: 1 }, { schema: 'public', name: 'b', relid: 2 }, { schema: 'public', name: 'c', relid: 3 }],
  triggers: triggered.map((name, i) => ({ trigger: name === 'b' ? 'other_journal' : 'cap_journal', relid: { a: 1, b: 2, c: 3 }[name]!, schema: 'public', name: `${name}${i}` })),
});
const noPublication = { exists: false, allTables: false, tables: [] };

describe('sources/backfill: tables[].backfill onAdd — which tables join capture', () => {
  it('logical mode: the tables the publication does not list yet (all when it is created)', () => {
    expect(tablesJoining(config('logical'), { publication: noPublication }).map((t) => t.name)).to.deep.equal(['a', 'b']);
    expect(tablesJoining(config('logical'), { publication: { exists: true, allTables: false, tables: ['public.a'] } }).map((t) => t.name)).to.deep.equal(['b']);
    expect(tablesJoining(config('logical'), { publication: { exists: true, allTables: true, tables: [] } })).to.deep.equal([]);
  });

  it('trigger mode: the existing tables that lack this capture\'s journal trigger (all at the first set-up)', () => {
    expect(tablesJoining(config('trigger'), { publication: noPublication, journal: journal([]) }).map((t) => t.name)).to.deep.equal(['a', 'b']);
    // b's trigger belongs to another capture: b still joins this one; c is not onAdd.
    expect(tablesJoining(config('trigger'), { publication: noPublication, journal: journal(['a', 'b', 'c']) }).map((t) => t.name)).to.deep.equal(['b']);
    expect(tablesJoining(config('trigger'), { publication: noPublication })).to.deep.equal([]);
  });
});
