import { expect } from 'chai';
import { createTestDatabase, type TestDatabase } from './harness/postgres';
import { exitWithin, spawnCli, type CliProcess } from './harness/process';
import { startReceiver, type Receiver } from './harness/receiver';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

/**
 * A slot that vanished (or can no longer decode) means changes were committed that will never be
 * delivered. pg-cloudevents remembers the slot it acknowledged (pgcloudevents.capture_slots) and
 * refuses to start on a missing one until `setup --recreate-slot` accepts the gap, naming it.
 */
const GAP_HINT = 'pg-cloudevents setup --recreate-slot';


async function cli(args: string[], env: Record<string, string>, timeoutMs = 30_000) {
  const p = spawnCli(args, { LOG_LEVEL: 'warn', ...env });
  const { code } = await exitWithin(p, timeoutMs);
  return { code, stdout: p.stdout(), stderr: p.stderr(), all: p.stdout() + p.stderr() };
}

function setupEnv(db: TestDatabase, name: string, receiver: Receiver): Record<string, string> {
  return {
    DATABASE_URL: db.url,
    K_SINK: receiver.url,
    PG_CLOUDEVENTS_TABLES: 'public.items',
    PG_CLOUDEVENTS_CONFIG: writeTempFile(`${name}.yaml`, `${FAST_DELIVERY_YAML}
capture: { slot: ${name}, publication: ${name}, statusInterval: PT0.2S, reconnectDelay: PT0.1S, reconnectMax: PT0.5S }
`),
  };
}

/** `run` until `work` is done and its events arrived, then SIGTERM; it must exit 0. */
async function capture(env: Record<string, string>, work: () => Promise<void>): Promise<void> {
  const run = spawnCli(['run'], { ...env, LOG_LEVEL: 'info', PORT: String(await freePort()) });
  try {
    await run.waitForLine(/"msg":"capturing"/, 30_000);
    await work();
    run.kill('SIGTERM');
    expect((await exitWithin(run, 20_000)).code, run.stderr()).to.equal(0);
  } finally {
    run.kill('SIGKILL');
  }
}

const subjects = (r: Receiver) => r.accepted.map((e) => e.subject);

describe('a lost slot is a named gap, not a silent one (real PostgreSQL)', function () {
  this.timeout(180_000);
  let receiver: Receiver;
  beforeEach(async () => (receiver = await startReceiver()));
  afterEach(async () => receiver?.close());

  it('a dropped slot: run, check, status and setup refuse, naming the position; setup --recreate-slot accepts the gap', async () => {
    const name = 'pgce_slotloss';
    const db = await createTestDatabase(name);
    await db.query('CREATE TABLE items (id int PRIMARY KEY, name text)');
    const env = setupEnv(db, name, receiver);
    const record = async () =>
      (await db.query(`SELECT created_lsn::text AS created, acknowledged_lsn::text AS acked, acknowledged_at
        FROM pgcloudevents.capture_slots WHERE slot_name = $1`, [name])).rows[0];

    // The very first run creates the slot, as before, and records it.
    await capture(env, async () => {
      await db.query(`INSERT INTO items VALUES (1, 'delivered')`);
      await receiver.waitFor(1, 20_000);
    });
    const confirmed = (await db.query(`SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1`, [name])).rows[0].lsn;

    await db.query(`SELECT pg_drop_replication_slot($1)`, [name]);
    await db.query(`INSERT INTO items VALUES (2, 'the gap')`);

    const run = await cli(['run'], { ...env, PORT: String(await freePort()) });
    expect(run.code, run.all).to.equal(1);
    expect((await db.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [name])).rowCount, 'no slot quietly created').to.equal(0);
    // What run remembered: where the slot began, and (written off the capture path, last at exit) what it acknowledged.
    const { created, acked, acknowledged_at: ackedAt } = await record();
    expect(created).to.match(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(acked, 'the record holds what the slot confirmed').to.equal(confirmed);
    expect(run.stderr).to.include(`replication slot "${name}" is gone (pg-cloudevents created it at LSN ${created}`);
    expect(run.stderr).to.include(`The changes committed after LSN ${acked} (last acknowledged at ${new Date(ackedAt).toISOString()}) were never delivered`);
    expect(run.stderr).to.include(GAP_HINT);
    expect(run.stderr).to.include('[PGCE_ERR_SLOT_LOST]');

    for (const command of [['check'], ['setup']]) {
      const r = await cli(command, env);
      expect(r.code, `${command}: ${r.all}`).to.equal(1);
      expect(r.stderr).to.include(`replication slot "${name}" is gone`);
      expect(r.stderr).to.include('[PGCE_ERR_SLOT_LOST]');
    }
    const status = await cli(['status', '--json'], env);
    expect(status.code, status.all).to.equal(1);
    const report = JSON.parse(status.stdout);
    expect(report.slot.exists).to.equal(false);
    expect(report.recorded.acknowledgedLsn).to.equal(acked);
    expect(report.problems[0].code).to.equal('PGCE_ERR_SLOT_LOST');

    const recreate = await cli(['setup', '--recreate-slot'], env);
    expect(recreate.code, recreate.all).to.equal(0);
    const after = await record();
    expect(recreate.stdout).to.include(
      `accepted the gap: the changes committed after LSN ${acked} (last acknowledged at ${new Date(ackedAt).toISOString()}) ` +
      `and before LSN ${after.created}, where the new slot begins, will not be delivered`);
    expect(after.acked, 'nothing acknowledged on the new slot yet').to.equal(null);

    await capture(env, async () => {
      await db.query(`INSERT INTO items VALUES (3, 'after the gap')`);
      await receiver.waitFor((events) => events.some((e) => e.subject?.endsWith('/3')), 20_000);
    });
    expect(subjects(receiver)).to.deep.equal(['DCE:public.items/1', 'DCE:public.items/3']);
    await db.drop();
  });

  it('a publication dropped and re-created: run stops naming it and the recovery instead of retrying', async () => {
    const name = 'pgce_pubgap';
    const db = await createTestDatabase(name);
    await db.query('CREATE TABLE items (id int PRIMARY KEY, name text)');
    const env = setupEnv(db, name, receiver);
    await capture(env, async () => {
      await db.query(`INSERT INTO items VALUES (1, 'delivered')`);
      await receiver.waitFor(1, 20_000);
    });
    await db.query(`DROP PUBLICATION ${name}`);
    await db.query(`INSERT INTO items VALUES (2, 'while the publication was gone')`);
    await db.query(`CREATE PUBLICATION ${name} FOR TABLE items`);
    await db.query(`INSERT INTO items VALUES (3, 'after')`);

    const run = spawnCli(['run'], { ...env, LOG_LEVEL: 'info', PORT: String(await freePort()) });
    try {
      const line = await run.waitForLine(/pg-cloudevents run: .*PGCE_ERR_SLOT_LOST/, 30_000);
      expect(line).to.match(new RegExp(`cannot decode the change at LSN [0-9A-F]+/[0-9A-F]+: publication "${name}" did not exist there`));
      expect(line).to.include(`Publication "${name}" exists now: it was dropped and re-created`);
      expect(line).to.include(`PostgreSQL: publication "${name}" does not exist`);
      expect(line).to.match(/The changes committed after LSN [0-9A-F]+\/[0-9A-F]+ /);
      expect(line).to.include(GAP_HINT);
      const attempts = run.stderr().split('\n').filter((l) => /"msg":"replication stream ended"/.test(l));
      expect(attempts, 'one attempt, no retrying').to.have.length(1);
      // A final error ends the process by itself, promptly, with code 1 (no zombie holding a walsender).
      expect((await exitWithin(run, 15_000)).code, run.stderr()).to.equal(1);
    } finally {
      run.kill('SIGKILL');
      await run.exit();
    }

    const recreate = await cli(['setup', '--recreate-slot'], env);
    expect(recreate.code, recreate.all).to.equal(0);
    expect(recreate.stdout).to.include(`done: drop replication slot ${name}`);
    await capture(env, async () => {
      await db.query(`INSERT INTO items VALUES (4, 'captured again')`);
      await receiver.waitFor((events) => events.some((e) => e.subject?.endsWith('/4')), 20_000);
    });
    expect(subjects(receiver)).to.deep.equal(['DCE:public.items/1', 'DCE:public.items/4']);
    await db.drop();
  });
});
