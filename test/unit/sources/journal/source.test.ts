/**
 * The journal source's acknowledgements, fed rows directly (a fake pool takes the deletes; the
 * reading itself is covered by the integration test against a real database).
 */
import { expect } from 'chai';
import type { Pool } from 'pg';
import type { Config } from '../../../../src/config/types';
import { Lifecycle } from '../../../../src/lifecycle';
import type { RelationInfo } from '../../../../src/sources/change';
import type { ChangeConsumer } from '../../../../src/sources/contract';
import { JournalSource } from '../../../../src/sources/journal/source';

const relation: RelationInfo = {
  id: 16400, schema: 'public', table: 'orders', replicaIdentity: 'default', keyColumns: ['id'],
  columns: [{ name: 'id', typeOid: 23, typeMod: -1, isKey: true }],
};

const config = {
  capture: { slot: 'jrn', mode: 'trigger', pollIntervalMs: 1000, batchSize: 10, reconnectDelayMs: 100, reconnectMaxMs: 1000 },
  deadLetters: { schema: 'pgcloudevents', table: 'dead_letters' },
  tables: [],
} as unknown as Config;

const consumer: ChangeConsumer = {
  change: () => undefined, undecodable: () => undefined, commit: () => undefined, position: () => undefined,
  reset: async () => undefined, stop: async () => undefined,
};

describe('sources/journal: what acknowledging tells the rest of the process', () => {
  it('capture:acknowledged carries the position and `through`, the largest journal id below every row still in flight (ids are not in hand-over order)', async () => {
    const deleted: string[][] = [];
    const pool = { query: async (_sql: string, [ids]: [string[]]) => (deleted.push(ids), { rows: [] }) } as unknown as Pool;
    const lifecycle = new Lifecycle();
    const acks: { lsn: bigint; through?: bigint }[] = [];
    lifecycle.on('capture:acknowledged', (a) => acks.push(a));
    const source = new JournalSource({ config, pool, consumer, lifecycle });
    const internals = source as unknown as { relations: { get(): RelationInfo }; handOver(row: unknown): void };
    internals.relations = { get: () => relation };
    const row = (id: number) => ({ id: String(id), txid: '900', relid: relation.id, op: 'I', old_row: null, new_row: `{"id":${id}}`, written_at: new Date() });
    // A round hands over 10 and 11; the next one 5 (a transaction that committed late) and 12.
    for (const id of [10, 11, 5, 12]) internals.handOver(row(id));

    source.acknowledge(2n, true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(acks).to.deep.equal([{ lsn: 2n, through: 4n }]);
    expect(deleted).to.deep.equal([['10', '11']]);

    source.acknowledge(4n, true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(acks[1]).to.deep.equal({ lsn: 4n, through: 12n });
    expect(deleted[1]).to.deep.equal(['5', '12']);
  });
});
