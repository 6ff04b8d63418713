import { expect } from 'chai';
import { runBench, SIZES } from '../../bench/run';
import { SCENARIOS } from '../../bench/scenarios';

/**
 * `make bench-smoke` inside `make test`: every benchmark scenario and baseline on a thousand
 * events (real PostgreSQL, the real product process, pg_recvlogical, autocannon, the hand-written
 * script, and Redis, NATS JetStream and the Kafka mock with a counting consumer at each), so the
 * harness cannot rot. It asserts behaviour, not speed (that is `make bench`): every event of every
 * scenario arrives, and every figure is present and sane. A busy machine makes it slower, never
 * red: it fails when the run stops moving (STALL_MS without an event counted or a phase ended),
 * which is also how a scenario that delivers nothing or loses an event fails.
 */

/** A counter that counts nothing new for this long fails its scenario (bench/run.ts waitForEvents). */
const STALL_MS = 60_000;
/** Longer than any phase that reports no progress of its own, and than STALL_MS, which says more. */
const WATCHDOG_MS = 3 * STALL_MS;

/** Rejects once nothing was reported for `ms`; `progress` resets it. */
function watchdog(ms: number): { progress(what: string): void; stalled: Promise<never>; stop(): void } {
  let last = { at: Date.now(), what: 'the start' };
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setInterval(() => {
      if (Date.now() - last.at > ms) reject(new Error(`the bench smoke made no progress for ${ms} ms after: ${last.what}`));
    }, 1000);
  });
  return {
    progress: (what) => (last = { at: Date.now(), what }),
    stalled,
    stop: () => clearInterval(timer),
  };
}

describe('benchmark harness, smoke mode (real PostgreSQL, product, brokers, pg_recvlogical, autocannon)', function () {
  // No overall deadline: the watchdog below fails a run that stopped moving, not one that is slow.
  this.timeout(0);

  it('runs every scenario and baseline, every event arrives, and the figures are sane', async () => {
    const dog = watchdog(WATCHDOG_MS);
    const r = await Promise.race([
      runBench({ smoke: true, receiver: 'child', stallMs: STALL_MS, progress: dog.progress }),
      dog.stalled,
    ]).finally(() => dog.stop());
    const n = SIZES.smoke.events;
    // Nothing measured can take longer than the whole run: a bound on units and clocks, not on speed.
    const runMs = r.seconds * 1000;

    expect(r.failures, JSON.stringify(r.failures, null, 2)).to.deep.equal([]);

    // Every scenario ran, the broker ones included (counted by a consumer at the broker).
    const ran = new Set(r.scenarios.map((s) => s.scenario));
    expect(r.pending, 'pending scenarios').to.deep.equal([]);
    for (const s of SCENARIOS) expect(ran.has(s.id), `${s.id} ran`).to.equal(true);
    expect(SCENARIOS.filter((s) => s.target === 'broker').map((s) => s.id)).to.have.members([
      'redis-stream', 'nats-jetstream', 'kafka-mock', 'redis-stream-batch', 'nats-jetstream-batch', 'kafka-mock-batch',
    ]);
    for (const s of r.scenarios) expect(s.target, `${s.scenario}: counted where its scenario says`).to.equal(SCENARIOS.find((x) => x.id === s.scenario)!.target);

    for (const s of r.scenarios) {
      const what = `${s.scenario} on ${s.workload}`;
      expect(s.drain.unique, `${what}: distinct events counted = generated`).to.equal(n);
      expect(s.drain.received, `${what}: no duplicates in a clean run`).to.equal(n);
      expect(s.drain.seconds, `${what}: drain time`).to.be.greaterThan(0).and.at.most(r.seconds);
      expect(s.drain.eventsPerSecond, `${what}: throughput`).to.be.greaterThan(0);
      expect(s.cpuSecondsPer100k, `${what}: CPU`).to.be.greaterThan(0);
      expect(s.peakRssMb, `${what}: peak RSS`).to.be.greaterThan(10);
      expect(s.exitCode, `${what}: clean exit on SIGTERM`).to.equal(0);
      for (const l of s.live) {
        expect(l.unique, `${what} at ${l.targetRate}/s: events counted = generated`).to.equal(l.events);
        expect(l.events, `${what} at ${l.targetRate}/s: events written`).to.be.greaterThan(0);
        expect(l.achievedRate, `${what} at ${l.targetRate}/s: commit rate`).to.be.greaterThan(0);
        expect(l.latencyMs.count, `${what} at ${l.targetRate}/s: a latency per event`).to.equal(l.events);
        for (const p of [l.latencyMs.p50, l.latencyMs.p95, l.latencyMs.p99]) {
          expect(p, `${what} at ${l.targetRate}/s: latency percentile`).to.be.a('number').and.to.be.at.least(0).and.at.most(runMs);
        }
      }
    }
    // Smoke runs measure latency for every scenario but the variants (full runs measure those too).
    expect(r.scenarios.filter((s) => s.live.length > 0).map((s) => s.scenario)).to.have.members(SCENARIOS.filter((s) => !s.variantOf).map((s) => s.id));

    expect(r.recvlogical.length, 'pg_recvlogical ran on every workload').to.equal(5);
    for (const b of r.recvlogical) expect(b.eventsPerSecond, `pg_recvlogical ${b.workload}`).to.be.greaterThan(0);
    expect(r.handwritten?.eventsPerSecond ?? 0, 'hand-written script').to.be.greaterThan(0);
    expect(r.sinkCapacity.map((c) => c.mode)).to.deep.equal(['binary', 'batch']);
    for (const c of r.sinkCapacity) {
      expect(c.eventsPerSecond, `sink capacity ${c.mode}`).to.be.greaterThan(0);
      expect(c.errors, `sink capacity ${c.mode}: errors`).to.equal(0);
    }
  });
});
