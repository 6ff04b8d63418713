import { expect } from 'chai';
import { createTestDatabase, waitFor } from './harness/postgres';
import { spawnCli, type CliProcess } from './harness/process';
import { startReceiver } from './harness/receiver';
import { acceptedRowIds, expectEveryRowDelivered, FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

const NAME = 'pgce_e3_failover';
const LEADER_LINE = /became the leader/;
const STANDBY_LINE = /standing by: another replica holds the lock/;
const CAPTURING_LINE = /"msg":"capturing"/;

/**
 * Two replicas of `run` against one database: one holds the advisory lock and captures, the other
 * stands by. kill -9 of the leader while rows are being written: the standby takes over within a
 * few seconds and, because the slot was only acknowledged for what the sink accepted, every
 * inserted row arrives at least once.
 */
describe('leader failover between two replicas (real PostgreSQL, real receiver, kill -9)', function () {
  this.timeout(120_000);

  async function status(port: number): Promise<{ role: string }> {
    const res = await fetch(`http://127.0.0.1:${port}/status`);
    expect(res.status).to.equal(200);
    return (await res.json()) as { role: string };
  }

  /** The first of `expected` or "capturing": capturing first means `run` skipped the election. */
  async function expectBefore(cli: CliProcess, expected: RegExp, who: string): Promise<void> {
    const line = await cli.waitForLine(new RegExp(`${expected.source}|${CAPTURING_LINE.source}`), 30_000);
    if (!expected.test(line)) {
      throw new Error(
        `${who} logged "capturing" without first logging ${expected}: \`run\` does not do leader election yet ` +
          `(it must wait for the advisory lock before capturing). Its output:\n${cli.stderr().split('\n').slice(-15).join('\n')}`,
      );
    }
  }

  it('kill -9 of the leader: the standby takes over within seconds and no inserted row is lost', async () => {
    const db = await createTestDatabase(NAME);
    const receiver = await startReceiver();
    await db.query('CREATE TABLE t (id int PRIMARY KEY, v int)');
    const config = writeTempFile('config.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: ${NAME}, publication: ${NAME}, statusInterval: PT0.5S, reconnectDelay: PT0.2S, reconnectMax: PT1S }
leader: { pollInterval: PT0.5S }
tables: [ { table: public.t } ]
`);
    const [portA, portB] = [await freePort(), await freePort()];
    const env = (port: number) => ({ DATABASE_URL: db.url, K_SINK: receiver.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(port) });

    const a = spawnCli(['run'], env(portA));
    let b: CliProcess | undefined;
    let writing = true;
    const inserted: number[] = [];
    let writer: Promise<void> = Promise.resolve();
    try {
      await expectBefore(a, LEADER_LINE, 'replica A');
      await a.waitForLine(CAPTURING_LINE, 30_000);
      b = spawnCli(['run'], env(portB));
      await expectBefore(b, STANDBY_LINE, 'replica B');
      expect((await status(portA)).role, 'A /status role').to.equal('leader');
      expect((await status(portB)).role, 'B /status role').to.equal('standby');

      // Single-row transactions, one every 10 ms; an id counts once its INSERT committed.
      writer = (async () => {
        for (let id = 1; writing; id++) {
          await db.query('INSERT INTO t VALUES ($1, $2)', [id, id * 10]);
          inserted.push(id);
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      await receiver.waitFor((events) => events.length >= 20, 20_000);

      const killedAfter = inserted.length;
      a.kill('SIGKILL');
      await a.exit();
      const killedAt = Date.now();
      await b.waitForLine(LEADER_LINE, 8_000);
      const takeoverMs = Date.now() - killedAt;
      process.stdout.write(`      takeover after kill -9: ${takeoverMs} ms\n`);
      expect(takeoverMs, 'takeover after kill -9, ms').to.be.below(8_000);

      // Keep writing through the takeover until B has delivered rows committed after it led.
      await b.waitForLine(CAPTURING_LINE, 15_000);
      const afterTakeover = inserted.length + 20;
      await waitFor(async () => acceptedRowIds(receiver.accepted).has(afterTakeover), {
        timeoutMs: 30_000, intervalMs: 50, what: `B to deliver row ${afterTakeover} (written after the takeover)`,
      });
      writing = false;
      await writer;
      expect(inserted.length, 'rows written after the kill').to.be.above(killedAfter);

      await expectEveryRowDelivered(receiver, inserted);
      expect((await status(portB)).role, 'B /status role after the takeover').to.equal('leader');

      b.kill('SIGTERM');
      expect((await b.exit()).code, 'B exit code on SIGTERM').to.equal(0);
    } finally {
      writing = false;
      await writer.catch(() => undefined);
      a.kill('SIGKILL');
      b?.kill('SIGKILL');
      await receiver.close();
    }
    await db.drop();
  });
});

