import { expect } from 'chai';
import { AckRecorder } from '../../../../src/sources/logical/ack-recorder';
import { loadConfig } from '../../../../src/config/load';
import { Lifecycle } from '../../../../src/lifecycle';
import { knexOn } from '../../../../src/pg/schema/knex';

const config = loadConfig({ env: { DATABASE_URL: 'postgres://app@127.0.0.1:5432/app', PG_CLOUDEVENTS_TABLES: 'public.orders', PG_CLOUDEVENTS_SLOT: 'pg_cloudevents', PG_CLOUDEVENTS_PUBLICATION: 'pg_cloudevents' } });

/**
 * Stands in for a pg Client under knex (unit tests use no database): records each query, answered
 * by the test. knex calls `query({ text, values }, callback)`.
 */
class FakePool {
  readonly calls: { sql: string; params: unknown[]; settle(err?: Error): void }[] = [];
  private waiters: (() => void)[] = [];

  query(config: { text: string; values: unknown[] }, callback: (err: Error | null, response?: unknown) => void): void {
    this.calls.push({
      sql: config.text, params: config.values,
      settle: (err) => (err ? callback(err) : callback(null, { rows: [], rowCount: 1, command: 'UPDATE' })),
    });
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves once `n` queries were made. */
  async made(n: number): Promise<void> {
    while (this.calls.length < n) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}

describe('sources/logical/ack-recorder: the acknowledged position reaches the slot record off the capture path (fake pool)', () => {
  let lifecycle: Lifecycle;
  let pool: FakePool;
  let recorder: AckRecorder;

  beforeEach(() => {
    lifecycle = new Lifecycle();
    pool = new FakePool();
    recorder = new AckRecorder({ knex: knexOn(pool as never), config, lifecycle, intervalMs: 10 });
  });
  afterEach(async () => {
    for (const c of pool.calls) c.settle();
    await recorder.stop();
  });

  it('writes the latest position once per tick, however many acknowledgements came, and never a 0/0', async () => {
    recorder.start();
    lifecycle.emit('capture:acknowledged', { lsn: 0n });
    for (let lsn = 0x100n; lsn <= 0x1000n; lsn += 0x100n) lifecycle.emit('capture:acknowledged', { lsn });
    await pool.made(1);
    expect(pool.calls[0].sql).to.equal(
      'update "pgcloudevents"."capture_slots" set "acknowledged_lsn" = $1::pg_lsn, "acknowledged_at" = $2 where "slot_name" = $3 ' +
      'and ("created_lsn" is null or "created_lsn" <= $4::pg_lsn) and ("acknowledged_lsn" is null or "acknowledged_lsn" < $5::pg_lsn)');
    expect(pool.calls[0].params[0]).to.equal('0/1000');
    expect(pool.calls[0].params[1]).to.be.instanceOf(Date);
    expect(pool.calls[0].params.slice(2)).to.deep.equal(['pg_cloudevents', '0/1000', '0/1000']);
    pool.calls[0].settle();
    lifecycle.emit('capture:acknowledged', { lsn: 0x2000n });
    await pool.made(2);
    expect(pool.calls[1].params[0]).to.equal('0/2000');
  });

  it('while a write hangs, acknowledgements go on and no second write piles up', async () => {
    recorder.start();
    lifecycle.emit('capture:acknowledged', { lsn: 0x100n });
    await pool.made(1);
    // The database does not answer; capture keeps acknowledging, and nothing waits on the write.
    for (let i = 1; i <= 50; i++) lifecycle.emit('capture:acknowledged', { lsn: 0x100n + BigInt(i) });
    expect(recorder.lastAcknowledged?.lsn).to.equal(0x132n);
    void recorder.flush();
    expect(pool.calls).to.have.length(1);
    pool.calls[0].settle();
    await pool.made(2);
    expect(pool.calls[1].params[0]).to.equal('0/132');
  });

  it('a failed write is logged, not thrown, and the position is written at the next tick', async () => {
    recorder.start();
    lifecycle.emit('capture:acknowledged', { lsn: 0x500n });
    await pool.made(1);
    pool.calls[0].settle(new Error('connection refused'));
    await pool.made(2);
    expect(pool.calls[1].params[0]).to.equal('0/500');
  });

  it('stop writes the last position once more', async () => {
    recorder.start();
    lifecycle.emit('capture:acknowledged', { lsn: 0x700n });
    const stopped = recorder.stop();
    await pool.made(1);
    pool.calls[0].settle();
    await stopped;
    expect(pool.calls.map((c) => c.params[0])).to.deep.equal(['0/700']);
    // Unsubscribed: later acknowledgements are not this recorder's any more.
    lifecycle.emit('capture:acknowledged', { lsn: 0x900n });
    expect(recorder.lastAcknowledged?.lsn).to.equal(0x700n);
  });
});
