import { expect } from 'chai';
import { ErrorCodes } from '../../../../src/errors';
import type { RelationMessage } from '../../../../src/sources/logical/pgoutput';
import { relationFromMessage, tupleToRow } from '../../../../src/sources/logical/rows';
import { TypeRegistry } from '../../../../src/pg/types-registry';

const message: RelationMessage = {
  tag: 'relation',
  id: 16400,
  schema: 'shop',
  table: 'order_lines',
  replicaIdentity: 'default',
  columns: [
    { name: 'note', typeOid: 25, typeMod: -1, isKey: false, flags: 0 },
    { name: 'line', typeOid: 21, typeMod: -1, isKey: true, flags: 1 },
    { name: 'order_id', typeOid: 20, typeMod: -1, isKey: true, flags: 1 },
    { name: 'tags', typeOid: 1009, typeMod: -1, isKey: false, flags: 0 },
    { name: 'blob', typeOid: 17, typeMod: -1, isKey: false, flags: 0 },
  ],
};

describe('sources/logical/rows', () => {
  const registry = new TypeRegistry();

  it('relationFromMessage keeps column order and lists key columns in it', () => {
    const rel = relationFromMessage(message);
    expect(rel).to.deep.equal({
      id: 16400,
      schema: 'shop',
      table: 'order_lines',
      replicaIdentity: 'default',
      columns: [
        { name: 'note', typeOid: 25, typeMod: -1, isKey: false },
        { name: 'line', typeOid: 21, typeMod: -1, isKey: true },
        { name: 'order_id', typeOid: 20, typeMod: -1, isKey: true },
        { name: 'tags', typeOid: 1009, typeMod: -1, isKey: false },
        { name: 'blob', typeOid: 17, typeMod: -1, isKey: false },
      ],
      keyColumns: ['line', 'order_id'],
    });
  });

  it('tupleToRow decodes text by type, nulls as null, binary as base64, and omits unchanged TOAST', () => {
    const rel = relationFromMessage(message);
    const { row, missingColumns } = tupleToRow(rel, [
      { kind: 'u' },
      { kind: 't', value: '3' },
      { kind: 't', value: '9223372036854775807' },
      { kind: 'n' },
      { kind: 'b', value: Buffer.from('hi') },
    ], registry);
    expect(row).to.deep.equal({ line: 3, order_id: '9223372036854775807', tags: null, blob: Buffer.from('hi').toString('base64') });
    expect(row).to.not.have.property('note');
    expect(missingColumns).to.deep.equal(['note']);
  });

  it('refuses a tuple whose width does not match its relation', () => {
    const rel = relationFromMessage(message);
    expect(() => tupleToRow(rel, [{ kind: 'n' }], registry)).to.throw(/1 columns.*announced 5/).with.property('code', ErrorCodes.PROTOCOL);
  });
});
