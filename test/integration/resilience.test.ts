import { expect } from 'chai';
import type { CloudEvent } from 'cloudevents';
import { createTestDatabase, waitFor } from './harness/postgres';
import { spawnCli } from './harness/process';
import { startReceiver } from './harness/receiver';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

type Data = { data: { id: number } };

describe('resilience: dropped replication connections (real PostgreSQL)', function () {
  this.timeout(120_000);

  it('reconnects after the replication connection is killed and resumes from the slot', async () => {
    const db = await createTestDatabase('pgce_reconnect');
    const receiver = await startReceiver();
    await db.query('CREATE TABLE t (id int PRIMARY KEY)');
    const config = writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: pgce_reconnect, publication: pgce_reconnect, statusInterval: PT0.5S, reconnectDelay: PT0.2S, reconnectMax: PT1S }
tables: [ { table: public.t } ]
`);
    const cli = spawnCli(['run'], { DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(await freePort()) });
    await cli.waitForLine(/capturing/, 30_000);
    await db.query('INSERT INTO t VALUES (1)');
    await waitFor(async () => receiver.accepted.length >= 1, { timeoutMs: 15_000, intervalMs: 50, what: 'first event' });

    const killed = await db.query(
      `SELECT pg_terminate_backend(active_pid) AS ok FROM pg_replication_slots WHERE slot_name = 'pgce_reconnect' AND active`);
    expect(killed.rows[0]?.ok).to.equal(true);
    await db.query('INSERT INTO t VALUES (2)');
    await waitFor(async () => receiver.accepted.some((e: CloudEvent<unknown>) => (e.data as Data).data.id === 2), {
      timeoutMs: 20_000, intervalMs: 50, what: 'the event written while the stream was down',
    });
    await cli.waitForLine(/reconnect/, 5_000);
    cli.kill('SIGTERM');
    expect((await cli.exit()).code).to.equal(0);
    await receiver.close();
    await db.drop();
  });
});
