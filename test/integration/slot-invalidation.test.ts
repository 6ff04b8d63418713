import { expect } from 'chai';
import { startPrivatePostgres, type PrivatePostgres } from './harness/private-postgres';
import { exitWithin, spawnCli, type CliProcess } from './harness/process';
import { startReceiver, type Receiver } from './harness/receiver';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

/**
 * max_slot_wal_keep_size invalidates a slot that holds back too much WAL; the changes it had not
 * delivered are gone. These settings must not be changed on the shared server, so this file runs
 * its own cluster: 1 MB WAL segments and max_slot_wal_keep_size = 2MB, where a few MB of WAL and a
 * CHECKPOINT invalidate a slot nobody acknowledges.
 */
const SLOT = 'pgce_inval';
const DB = 'pgce_inval';
const GAP_HINT = 'pg-cloudevents setup --recreate-slot';
const PG_DETAIL = 'This slot has been invalidated because it exceeded the maximum reserved size.';

async function cli(args: string[], env: Record<string, string>, timeoutMs = 30_000) {
  const p = spawnCli(args, { LOG_LEVEL: 'warn', ...env });
  const { code } = await exitWithin(p, timeoutMs);
  return { code, stdout: p.stdout(), stderr: p.stderr(), all: p.stdout() + p.stderr() };
}


describe('an invalidated slot is reported and is a fatal, named gap (private PostgreSQL cluster, max_slot_wal_keep_size = 2MB)', function () {
  this.timeout(240_000);
  let pg: PrivatePostgres;
  let env: Record<string, string>;
  let receiver: Receiver;

  const slotRow = async () =>
    (await pg.query(`SELECT wal_status, confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1`, [SLOT], DB)).rows[0];
  // ~1.1 kB of WAL a row; no CHECKPOINT, so the slot is not invalidated yet.
  const writeWal = (rows: number) => pg.query(`INSERT INTO filler SELECT g, repeat('x', 1000) FROM generate_series(1, $1) g`, [rows], DB);

  before(async () => {
    pg = await startPrivatePostgres({
      walSegmentMb: 1,
      // max_wal_size well above what the tests write: only their CHECKPOINT removes WAL.
      settings: { wal_level: 'logical', max_slot_wal_keep_size: '2MB', wal_keep_size: '0', min_wal_size: '2MB', max_wal_size: '256MB' },
    });
    await pg.query(`CREATE DATABASE ${DB}`);
    await pg.query('CREATE TABLE items (id int PRIMARY KEY, name text)', [], DB);
    await pg.query('CREATE TABLE filler (id int, pad text)', [], DB);
    receiver = await startReceiver();
    env = {
      DATABASE_URL: pg.url(DB),
      K_SINK: receiver.url,
      PG_CLOUDEVENTS_TABLES: 'public.items',
      PG_CLOUDEVENTS_CONFIG: writeTempFile('inval.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: ${SLOT}, publication: ${SLOT}, statusInterval: PT0.2S, reconnectDelay: PT0.1S, reconnectMax: PT0.5S }
`),
    };
  });
  after(async () => {
    await receiver?.close();
    await pg?.stop();
  });

  it('check and status warn when the slot holds more than retainedWalWarnFraction of max_slot_wal_keep_size', async () => {
    const setup = await cli(['setup'], env);
    expect(setup.code, setup.all).to.equal(0);
    await writeWal(1300);
    const check = await cli(['check'], env);
    expect(check.code, check.all).to.equal(0);
    expect(check.stdout).to.match(new RegExp(`ok   replication slot ${SLOT} \\(wal_status reserved, retains .* before max_slot_wal_keep_size invalidates it\\)`));
    expect(check.stderr).to.match(/^warning: replication slot "pgce_inval" retains .*% of max_slot_wal_keep_size = 2\.0 MiB .* PostgreSQL invalidates it/m);

    const status = await cli(['status', '--json'], env);
    expect(status.code, status.all).to.equal(0);
    const report = JSON.parse(status.stdout);
    expect(report.slot.walStatus).to.equal('reserved');
    expect(report.slot.maxSlotWalKeepBytes).to.equal(2 * 1024 * 1024);
    expect(report.slot.safeWalSizeBytes).to.be.a('number').within(1, 2 * 1024 * 1024);
    expect(report.warnings.join('\n')).to.include('of max_slot_wal_keep_size');
  });

  it('check, status and run name the invalidated slot and the gap; setup --recreate-slot accepts it', async () => {
    await writeWal(4000);
    await pg.query('CHECKPOINT', [], DB);
    expect((await slotRow()).wal_status, 'PostgreSQL invalidated the slot').to.equal('lost');

    const check = await cli(['check'], env);
    expect(check.code, check.all).to.equal(1);
    expect(check.stdout).not.to.include('ok   replication slot');
    expect(check.stderr).to.include(`replication slot "${SLOT}" was invalidated (wal_status lost)`);
    // Nothing was acknowledged: the gap starts where setup created the slot.
    const createdAt = (await pg.query(`SELECT created_lsn::text AS lsn FROM pgcloudevents.capture_slots WHERE slot_name = $1`, [SLOT], DB)).rows[0].lsn;
    expect(check.stderr).to.include('max_slot_wal_keep_size = 2.0 MiB');
    expect(check.stderr).to.include(`The changes committed after LSN ${createdAt} (where the slot began on `);
    expect(check.stderr).to.include(GAP_HINT);
    expect(check.stderr).to.include('[PGCE_ERR_SLOT_LOST]');

    const status = await cli(['status', '--json'], env);
    expect(status.code, status.all).to.equal(1);
    const report = JSON.parse(status.stdout);
    expect(report.slot.walStatus).to.equal('lost');
    expect(report.slot.retainedWalBytes).to.equal(null);
    expect(report.problems.map((p: { code: string }) => p.code)).to.deep.equal(['PGCE_ERR_SLOT_LOST']);
    const text = await cli(['status'], env);
    expect(text.stdout).to.match(/wal status: +lost/);
    expect(text.stdout).not.to.include('null bytes');
    expect(text.stdout).to.match(/problem: .*was invalidated/);

    const run = await cli(['run'], { ...env, PORT: String(await freePort()) });
    expect(run.code, run.all).to.equal(1);
    expect(run.stderr).to.match(/pg-cloudevents run: replication slot "pgce_inval" was invalidated .*--recreate-slot \[PGCE_ERR_SLOT_LOST\]/);

    const recreate = await cli(['setup', '--recreate-slot'], env);
    expect(recreate.code, recreate.all).to.equal(0);
    expect(recreate.stdout).to.include(`done: drop replication slot ${SLOT}`);
    expect(recreate.stdout).to.match(new RegExp(`accepted the gap: the changes committed after LSN ${createdAt.replace('/', '\\/')} .* and before LSN [0-9A-F]+/[0-9A-F]+, where the new slot begins, will not be delivered`));
    expect((await slotRow()).wal_status).to.equal('reserved');
    expect((await cli(['check'], env)).code).to.equal(0);
  });

  it('run reports wal_status and safe_wal_size in /status and as metrics', async () => {
    const port = await freePort();
    const run = spawnCli(['run'], { ...env, LOG_LEVEL: 'info', PORT: String(port) });
    try {
      await run.waitForLine(/"msg":"capturing"/, 30_000);
      const status = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as { slot: Record<string, unknown> };
      expect(status.slot).to.include({ name: SLOT, walStatus: 'reserved', maxSlotWalKeepBytes: 2 * 1024 * 1024 });
      expect(status.slot.safeWalSizeBytes).to.be.a('number');
      // /status read the slot just now, and set the gauges with it.
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).to.match(/^pgce_slot_wal_status\{status="reserved"\} 1$/m);
      expect(metrics).to.match(/^pgce_slot_wal_status\{status="lost"\} 0$/m);
      expect(metrics).to.match(/^pgce_slot_safe_wal_size_bytes \d+$/m);
      run.kill('SIGTERM');
      expect((await exitWithin(run, 20_000)).code).to.equal(0);
    } finally {
      run.kill('SIGKILL');
    }
  });

  it('run stops with PGCE_ERR_SLOT_LOST and PostgreSQL\'s detail when the slot is invalidated while it captures (sink down)', async () => {
    receiver.respondWith(() => ({ status: 503 }));
    const run = spawnCli(['run'], { ...env, LOG_LEVEL: 'info', PORT: String(await freePort()) });
    try {
      await run.waitForLine(/"msg":"capturing"/, 30_000);
      await pg.query(`INSERT INTO items VALUES (1, 'never acknowledged')`, [], DB);
      // The sink refuses it: the position stays unacknowledged and the slot holds the WAL back.
      await receiver.waitFor(1, 20_000);
      await writeWal(4000);
      await pg.query('CHECKPOINT', [], DB);
      const line = await run.waitForLine(/pg-cloudevents run: .*PGCE_ERR_SLOT_LOST/, 30_000);
      expect(line).to.include(`replication slot "${SLOT}" was invalidated and can no longer be read`);
      expect(line).to.include(PG_DETAIL);
      expect(line).to.match(/The changes committed after LSN [0-9A-F]+\/[0-9A-F]+ \(/);
      expect(line).to.include(GAP_HINT);
      // No retrying: the first attempt that met the invalidated slot ended capture. (PostgreSQL may
      // first terminate the walsender of a slot it invalidates: that one reconnect is expected.)
      const retried = run.stderr().split('\n').filter((l) => l.includes('reconnecting') && l.includes('cannot read from logical replication slot'));
      expect(retried, run.stderr()).to.deep.equal([]);
      // A final error ends the process by itself, promptly, with code 1 (no zombie holding a walsender).
      expect((await exitWithin(run, 15_000)).code, run.stderr()).to.equal(1);
    } finally {
      run.kill('SIGKILL');
      await run.exit();
      receiver.respondWith(undefined);
    }
  });
});
