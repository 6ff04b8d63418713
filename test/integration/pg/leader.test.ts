import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { LeaderElector, type Role } from '../../../src/pg/leader';
import { PgceError } from '../../../src/errors';
import { Lifecycle } from '../../../src/lifecycle';
import { createTestDatabase, waitFor, type TestDatabase } from '../harness/postgres';

/**
 * Leader election against a real PostgreSQL: two electors contend for one slot name through a
 * session advisory lock; stopping or killing the holder's session hands the lock to the other.
 */

const DB = 'pgce_e3_leader';
const POLL_MS = 300;

/** The documented key, computed here from its definition rather than by the module under test. */
function documentedKey(slot: string): { classid: number; objid: number } {
  const digest = createHash('sha256').update(`pg-cloudevents:${slot}`).digest();
  return { classid: digest.readUInt32BE(0), objid: digest.readUInt32BE(4) };
}

const LOCK_HOLDERS_SQL = `
  SELECT l.pid, l.granted, a.application_name
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
   WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 1
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`;
const BACKENDS_SQL = `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`;
/** A session of `slot` other than the holder that has tried the lock and is idle again: it failed. */
const TRIED_SQL = `
  SELECT pid FROM pg_stat_activity
   WHERE application_name = $1 AND datname = current_database() AND pid <> $2
     AND state = 'idle' AND query LIKE 'SELECT pg_try_advisory_lock%'`;

describe('LeaderElector (real PostgreSQL advisory locks)', function () {
  this.timeout(60_000);
  let db: TestDatabase;
  let electors: LeaderElector[] = [];
  let failed = false;

  before(async () => {
    db = await createTestDatabase(DB);
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') failed = true;
    await Promise.all(electors.map((e) => e.stop()));
    electors = [];
  });
  after(async () => {
    if (failed) await db.close();
    else await db.drop();
  });

  function elector(slot: string, lifecycle?: Lifecycle): LeaderElector {
    const e = new LeaderElector({ connectionString: db.url, slot, pollIntervalMs: POLL_MS, lifecycle });
    electors.push(e);
    return e;
  }

  async function holders(slot: string): Promise<{ pid: number; granted: boolean; application_name: string }[]> {
    const { classid, objid } = documentedKey(slot);
    return (await db.query(LOCK_HOLDERS_SQL, [classid, objid])).rows;
  }

  /** Waits until the standby of `slot` has tried the held lock at least once (and so failed). */
  async function standbyTried(slot: string): Promise<void> {
    const [holder] = await holders(slot);
    await waitFor(async () => (await db.query(TRIED_SQL, [`pg-cloudevents leader ${slot}`, holder.pid])).rows.length === 1, {
      timeoutMs: 10_000, intervalMs: 20, what: `the standby of ${slot} to try the lock`,
    });
  }

  /** Resolves with whichever of `candidates` becomes leader first. */
  function firstLeader(candidates: LeaderElector[]): Promise<LeaderElector> {
    return Promise.race(candidates.map((c) => c.waitForLeadership().then(() => c)));
  }

  it('two electors on one slot: exactly one leads, the other stands by', async () => {
    const slot = 'pgce_e3_leader_one';
    const roles: Role[][] = [[], []];
    const lifecycles = [new Lifecycle(), new Lifecycle()];
    lifecycles.forEach((l, i) => l.on('leader:role', ({ role }) => roles[i].push(role)));
    const [a, b] = [elector(slot, lifecycles[0]), elector(slot, lifecycles[1])];
    await Promise.all([a.start(), b.start()]);
    const leader = await firstLeader([a, b]);
    const standby = leader === a ? b : a;
    // Several poll rounds later the standby still has not taken a lock that is held.
    await new Promise((r) => setTimeout(r, POLL_MS * 4));
    expect(leader.role).to.equal('leader');
    expect(standby.role).to.equal('standby');
    const li = leader === a ? 0 : 1;
    // Starting until the lock is answered: no standby phase before leading.
    expect(roles[li]).to.deep.equal(['leader']);
    expect(roles[1 - li]).to.deep.equal(['standby']);
    const granted = (await holders(slot)).filter((h) => h.granted);
    expect(granted).to.have.length(1);
  });

  it('the lock shows in pg_locks under the documented key, held by the named session', async () => {
    const slot = 'pgce_e3_leader_key';
    const a = elector(slot);
    await a.start();
    await a.waitForLeadership();
    const rows = await holders(slot);
    expect(rows).to.have.length(1);
    expect(rows[0].granted).to.equal(true);
    expect(rows[0].application_name).to.equal(`pg-cloudevents leader ${slot}`);
  });

  it('stopping the leader releases the lock and the other takes over within 3 poll intervals', async () => {
    const slot = 'pgce_e3_leader_stop';
    const [a, b] = [elector(slot), elector(slot)];
    await Promise.all([a.start(), b.start()]);
    const leader = await firstLeader([a, b]);
    const standby = leader === a ? b : a;
    const lostEvents: Error[] = [];
    leader.on('lost', (err) => lostEvents.push(err));
    await standbyTried(slot);
    expect(standby.role).to.equal('standby');

    await leader.stop();
    const stoppedAt = Date.now();
    expect(leader.role).to.equal('standby');
    await standby.waitForLeadership();
    expect(Date.now() - stoppedAt, 'takeover delay in ms').to.be.below(POLL_MS * 3);
    expect(lostEvents, 'a deliberate stop is not a loss').to.have.length(0);
    const rows = await holders(slot);
    expect(rows.filter((r) => r.granted)).to.have.length(1);
    const { rows: backends } = await db.query(BACKENDS_SQL, [`pg-cloudevents leader ${slot}`]);
    expect(backends, 'the stopped elector closed its session').to.have.length(1);
    expect(backends[0].pid).to.equal(rows[0].pid);
  });

  it("terminating the leader's backend: it emits 'lost', stands by, and the other takes over", async () => {
    const slot = 'pgce_e3_leader_kill';
    const [a, b] = [elector(slot), elector(slot)];
    await Promise.all([a.start(), b.start()]);
    const leader = await firstLeader([a, b]);
    const standby = leader === a ? b : a;
    await standbyTried(slot);
    expect(standby.role).to.equal('standby');
    const [holder] = await holders(slot);
    const lost = new Promise<{ err: Error; at: number }>((resolve) => leader.once('lost', (err) => resolve({ err, at: Date.now() })));

    const killedAt = Date.now();
    const { rows } = await db.query('SELECT pg_terminate_backend($1) AS ok', [holder.pid]);
    expect(rows[0].ok).to.equal(true);

    const { err, at } = await lost;
    expect(at - killedAt, "'lost' comes promptly, from the connection's own events").to.be.below(POLL_MS);
    expect(err).to.be.instanceOf(PgceError);
    expect(err.message).to.match(/lost the leader lock of slot pgce_e3_leader_kill/);
    expect(leader.role).to.equal('standby');
    await standby.waitForLeadership();
    expect(Date.now() - killedAt, 'takeover delay in ms').to.be.below(POLL_MS * 3 + 500);

    // The old leader reconnects and contends again, as a standby this time.
    await waitFor(async () => {
      const { rows: backends } = await db.query(BACKENDS_SQL, [`pg-cloudevents leader ${slot}`]);
      return backends.length === 2;
    }, { timeoutMs: 10_000, intervalMs: 50, what: 'the old leader to reconnect' });
    await new Promise((r) => setTimeout(r, POLL_MS * 2));
    expect(leader.role).to.equal('standby');
    expect(standby.role).to.equal('leader');
    expect((await holders(slot)).filter((h) => h.granted)).to.have.length(1);
  });

  it("a standby's session terminated: it reports the database unreachable, then reachable again once it reconnected", async () => {
    const slot = 'pgce_h10_leader_reach';
    const [a, b] = [elector(slot), elector(slot)];
    await a.start();
    await a.waitForLeadership();
    const events: boolean[] = [];
    b.on('reachable', (reachable) => events.push(reachable));
    await b.start();
    await waitFor(async () => b.role === 'standby', { timeoutMs: 10_000, intervalMs: 20, what: 'b to stand by' });
    expect(b.reachable).to.equal(true);
    await standbyTried(slot);
    const { rows } = await db.query(TRIED_SQL, [`pg-cloudevents leader ${slot}`, (await holders(slot))[0].pid]);
    await db.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
    await waitFor(async () => events.length >= 3, { timeoutMs: 10_000, intervalMs: 20, what: 'b to lose and regain its session' });
    expect(events).to.deep.equal([true, false, true]);
    expect(b.role, 'a standby that lost its session is still a standby').to.equal('standby');
  });

  it('a database that cannot be reached: the role stays starting and reachable is false', async () => {
    const lifecycle = new Lifecycle();
    const seen: { reachable: boolean; error?: Error }[] = [];
    lifecycle.on('leader:database', (e) => seen.push(e));
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    const e = new LeaderElector({ connectionString: 'postgres://postgres@127.0.0.1:1/none', slot: 'pgce_h10_leader_none', pollIntervalMs: POLL_MS, lifecycle });
    electors.push(e);
    await e.start();
    await waitFor(async () => seen.length > 0, { timeoutMs: 10_000, intervalMs: 20, what: 'the first connection attempt to fail' });
    expect(seen[0].reachable).to.equal(false);
    expect(seen[0].error?.message).to.match(/127\.0\.0\.1:1|ECONNREFUSED/);
    expect(e.role).to.equal('starting');
    expect(e.reachable).to.equal(false);
  });

  it('different slot names do not contend', async () => {
    const [a, b] = [elector('pgce_e3_leader_x'), elector('pgce_e3_leader_y')];
    await Promise.all([a.start(), b.start()]);
    await Promise.all([a.waitForLeadership(), b.waitForLeadership()]);
    expect([a.role, b.role]).to.deep.equal(['leader', 'leader']);
  });

  it('waitForLeadership rejects when its signal aborts or the elector stops', async () => {
    const slot = 'pgce_e3_leader_abort';
    const a = elector(slot);
    await a.start();
    await a.waitForLeadership();
    const b = elector(slot);
    await b.start();
    const controller = new AbortController();
    const aborted = b.waitForLeadership(controller.signal).then(() => undefined, (e: Error) => e);
    controller.abort(new Error('shutting down'));
    expect((await aborted)?.message).to.equal('shutting down');

    const stopped = b.waitForLeadership().then(() => undefined, (e: Error) => e);
    await b.stop();
    expect((await stopped)?.name).to.equal('AbortError');
    expect(b.role).to.equal('standby');
  });
});
