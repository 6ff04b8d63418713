import { expect } from 'chai';
import { RawJson } from '../../../../src/events/json-text';
import { TypeRegistry } from '../../../../src/pg/types-registry';
import { decodeValue } from '../../../../src/pg/values';
import { fromJournalValue, journalRow, parseJournalRow } from '../../../../src/sources/journal/rows';
import type { RelationInfo } from '../../../../src/sources/change';

/**
 * row_to_json's forms → the values logical mode decodes from the text output of the same values
 * (the integration test compares both modes' events on a real database; these pin each rule).
 */
describe('sources/journal: journal rows (row_to_json) → the values logical mode decodes', () => {
  const registry = new TypeRegistry();
  const same = (json: string, typeOid: number, text: string) =>
    expect(fromJournalValue(parseJournalRow(`{"v":${json}}`).v, typeOid, registry), `${json} as ${typeOid}`).to.deep.equal(decodeValue(text, typeOid, registry));

  it('timestamps: XSD back to ISO, the zone as DateStyle ISO prints it', () => {
    same('"2020-12-01T09:43:00.5+00:00"', 1184, '2020-12-01 09:43:00.5+00');
    same('"2020-12-01T09:43:00+05:30"', 1184, '2020-12-01 09:43:00+05:30');
    same('"0044-03-15T09:00:00+00:00 BC"', 1184, '0044-03-15 09:00:00+00 BC');
    same('"2020-12-01T09:43:00.123456"', 1114, '2020-12-01 09:43:00.123456');
    same('"infinity"', 1184, 'infinity');
  });

  it('numbers keep their digits: the token is the text output', () => {
    same('9007199254740993', 20, '9007199254740993');
    same('0.10000000000000001', 701, '0.10000000000000001');
    same('1.50', 1700, '1.50');
    same('"NaN"', 701, 'NaN');
    expect(fromJournalValue(parseJournalRow('{"v":12345678901234567890}').v, 1700, registry)).to.equal('12345678901234567890');
  });

  it('bool, bytea, arrays element by element; json as parsed, exact numbers kept', () => {
    same('true', 16, 't');
    same('"\\\\x00ff"', 17, '\\x00ff');
    same('[["2020-01-01T00:00:00+00:00",null]]', 1185, '{{"2020-01-01 00:00:00+00",NULL}}');
    same('[1,null,3]', 1007, '{1,NULL,3}');
    const json = fromJournalValue(parseJournalRow('{"v":{"b":2,"a":[1.50]}}').v, 114, registry) as { a: unknown[] };
    expect(Object.keys(json)).to.deep.equal(['b', 'a']);
    expect(json.a[0]).to.be.instanceOf(RawJson);
  });

  it('a row takes the relation\'s columns in column order; members the relation lacks are left out', () => {
    const relation = {
      id: 1, schema: 'public', table: 't', replicaIdentity: 'default', keyColumns: ['id'],
      columns: [{ name: 'id', typeOid: 23, typeMod: -1, isKey: true }, { name: 'at', typeOid: 1184, typeMod: -1, isKey: false }],
    } as RelationInfo;
    const row = journalRow(relation, parseJournalRow('{"gen":4,"at":"2020-01-01T00:00:00+00:00","id":1}'), registry);
    expect(row).to.deep.equal({ id: 1, at: '2020-01-01T00:00:00Z' });
    expect(Object.keys(row)).to.deep.equal(['id', 'at']);
  });
});
