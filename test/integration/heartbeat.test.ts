import { expect } from 'chai';
import { formatLsn } from '../../src/sources/change';
import { Pool } from 'pg';
import { Heartbeat, HEARTBEAT_PREFIX } from '../../src/sources/logical/heartbeat';
import { Lifecycle } from '../../src/lifecycle';
import { createTestDatabase, slotInfo, waitFor } from './harness/postgres';
import { spawnCli } from './harness/process';
import { startReceiver } from './harness/receiver';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

describe('heartbeats keep the slot moving while captured tables are idle (real PostgreSQL)', function () {
  this.timeout(60_000);

  it('writes a transactional logical message the slot sees', async () => {
    const db = await createTestDatabase('pgce_hb_unit');
    await db.query(`SELECT pg_create_logical_replication_slot('pgce_hb_unit', 'test_decoding')`);
    const pool = new Pool({ connectionString: db.url, max: 1 });
    const seen: bigint[] = [];
    const lifecycle = new Lifecycle().on('capture:heartbeat', ({ lsn }) => seen.push(lsn));
    const lsn = await new Heartbeat(pool, 0, lifecycle).beat();
    const { rows } = await db.query(`SELECT data FROM pg_logical_slot_get_changes('pgce_hb_unit', NULL, NULL)`);
    expect(rows.map((r) => r.data).join('\n')).to.match(new RegExp(`^message: transactional: 1 prefix: ${HEARTBEAT_PREFIX.replace(/\./g, '\\.')}`, 'm'));
    expect(lsn).to.be.a('bigint');
    expect(seen).to.deep.equal([lsn]);
    await pool.end();
    await db.query(`SELECT pg_drop_replication_slot('pgce_hb_unit')`);
    await db.drop();
  });

  for (const enabled of [true, false]) {
    it(`run ${enabled ? 'acknowledges heartbeats it writes' : 'writes none with heartbeatInterval PT0S'}`, async () => {
      const name = enabled ? 'pgce_hb_on' : 'pgce_hb_off';
      const db = await createTestDatabase(name);
      const receiver = await startReceiver();
      await db.query('CREATE TABLE idle (id int PRIMARY KEY)');
      const port = await freePort();
      const config = writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: ${name}, publication: ${name}, statusInterval: PT0.2S, heartbeatInterval: ${enabled ? 'PT0.2S' : 'PT0S'} }
tables: [ idle ]
`);
      const cli = spawnCli(['run'], { DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(port) });
      await cli.waitForLine(/capturing/, 30_000);
      const heartbeats = async () => {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return Number(/^pgce_heartbeats_total (\d+)/m.exec(text)?.[1] ?? 0);
      };
      if (enabled) {
        await waitFor(async () => (await heartbeats()) >= 3, { timeoutMs: 10_000, intervalMs: 100, what: '3 heartbeats' });
        // A heartbeat written now must be acknowledged (its commit comes through the slot).
        const { rows } = await db.query(`SELECT pg_logical_emit_message(true, 'test', 'x')::text AS lsn`);
        await waitFor(async () => {
          const info = await slotInfo(db.url, name);
          const r = await db.query('SELECT $1::pg_lsn > $2::pg_lsn AS past', [formatLsn(info!.confirmedFlushLsn!), rows[0].lsn]);
          return r.rows[0].past === true;
        }, { timeoutMs: 10_000, intervalMs: 100, what: 'the slot to pass a message written after start' });
      } else {
        await new Promise((r) => setTimeout(r, 1000));
        expect(await heartbeats()).to.equal(0);
      }
      expect(receiver.accepted, 'heartbeats are not events').to.have.length(0);
      cli.kill('SIGTERM');
      expect((await cli.exit()).code).to.equal(0);
      await receiver.close();
      await db.drop();
    });
  }
});

