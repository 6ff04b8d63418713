/**
 * The benchmark run: workloads × consumers, each in a database, slot and publication of its own
 * (pgce_bench_*), one after another so nothing competes for the two cores but the thing measured.
 *
 * Throughput is a drain: the workload is committed first (flat out), then the consumer starts and
 * the rate is events / (last receive − first receive), so process start-up is not counted.
 * Latency is measured live afterwards, by the same product process, at fixed commit rates.
 * HTTP scenarios are counted by the receiver (K_SINK); broker scenarios by a consumer at a
 * stream/subject/topic of the run's own (bench/brokers/), started before the product.
 */
import * as os from 'node:os';
import { Client } from 'pg';
import { adminUrl } from '../test/integration/harness/postgres';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { sinkCapacity, type SinkCapacity } from './baselines/autocannon';
import { runRecvlogical } from './baselines/recvlogical';
import { peakRssMb, tryCpuSeconds } from './proc';
import { BROKERS, startBrokerCounter } from './brokers';
import type { CounterHandle } from './ipc';
import { startReceiver, type ReceiverHandle, type ReceiverPlacement } from './receiver-handle';
import type { ReceiverStats } from './receiver';
import { renderConfig, SCENARIOS, type Scenario } from './scenarios';
import { startSource } from './source';
import { round, type LatencySummary } from './stats';
import { prepareDatabase, PUBLICATION, WORKLOADS, writeBacklog, writePaced, type BenchDatabase, type Workload } from './workload';

export interface BenchOptions {
  smoke: boolean;
  receiver: ReceiverPlacement;
  /** Scenario ids to run (default all). Baselines always run. */
  only?: string[];
  /** Scenario id whose product process runs under node --cpu-prof (profiles into this dir). */
  profile?: { scenario: string; dir: string };
  log?: (line: string) => void;
  /**
   * Called whenever the run moves on (a phase ends, a counter counts more events): a caller can
   * fail on a run that stopped moving rather than on one that is slow (test/integration/bench-smoke).
   */
  progress?: (what: string) => void;
  /** How long a counter may count nothing new before the scenario fails (default 30 s). */
  stallMs?: number;
}

/** What every wait for events needs: how long nothing may arrive, and whom to tell when something did. */
interface Pace {
  stallMs: number;
  progress(what: string): void;
}

export interface Sizes {
  /** Events per throughput run (each product scenario and pg_recvlogical). */
  events: number;
  /** Events for the hand-written script (it is slow; its rate is what matters). */
  handwrittenEvents: number;
  /** Seconds of each fixed-rate latency phase. */
  liveSeconds: number;
  /** Commit rates for latency phases (the scenario's own list, capped to these). */
  liveRates: number[];
  autocannonSeconds: number;
  /** Workloads other than the main one, run with these scenarios (and pg_recvlogical). */
  variantScenarios: string[];
  /** Latency phases for scenarios that vary another one (`variantOf`) too. */
  variantLatency: boolean;
}

export const SIZES: Record<'full' | 'smoke', Sizes> = {
  full: { events: 100_000, handwrittenEvents: 10_000, liveSeconds: 10, liveRates: [1000, 5000], autocannonSeconds: 5, variantScenarios: ['http-batch'], variantLatency: true },
  smoke: { events: 1_000, handwrittenEvents: 200, liveSeconds: 0.5, liveRates: [1000], autocannonSeconds: 0.5, variantScenarios: ['http-batch'], variantLatency: false },
};

export const MAIN_WORKLOAD = 'insert-1-100B';

export interface DrainResult {
  events: number;
  /** Events received, duplicates included, and distinct ids. */
  received: number;
  unique: number;
  seconds: number;
  eventsPerSecond: number;
}

export interface LiveResult {
  targetRate: number;
  achievedRate: number;
  events: number;
  received: number;
  unique: number;
  latencyMs: LatencySummary;
}

export interface ScenarioResult {
  scenario: string;
  title: string;
  /** Where it was counted: the HTTP receiver or a consumer at the broker. */
  target: Scenario['target'];
  workload: string;
  backlogWriteSeconds: number;
  drain: DrainResult;
  /** Product process: CPU seconds per 100,000 events over the drain; peak RSS (VmHWM) at its end and overall. */
  cpuSecondsPer100k: number;
  walsenderCpuSecondsPer100k: number;
  /** The counting end (receiver or broker consumer) over the drain; the bench process itself with --receiver inproc. */
  counterCpuSecondsPer100k: number;
  peakRssMbDrain: number;
  peakRssMb: number;
  live: LiveResult[];
  exitCode: number | null;
}

export interface BaselineRun {
  workload: string;
  events: number;
  seconds: number;
  eventsPerSecond: number;
  cpuSecondsPer100k?: number;
  peakRssMb?: number;
}

export interface BenchResults {
  date: string;
  mode: 'full' | 'smoke';
  sizes: Sizes;
  receiver: ReceiverPlacement;
  machine: Record<string, string | number>;
  sinkCapacity: SinkCapacity[];
  recvlogical: BaselineRun[];
  handwritten: BaselineRun | null;
  scenarios: ScenarioResult[];
  pending: { scenario: string; title: string; reason: string }[];
  failures: { what: string; error: string }[];
  seconds: number;
}

const POLL_MS = 50;

async function machine(): Promise<Record<string, string | number>> {
  const client = new Client({ connectionString: adminUrl() });
  await client.connect();
  const pg = (await client.query('SHOW server_version')).rows[0].server_version as string;
  await client.end();
  return {
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres: pg,
    loadAverageAtStart: os.loadavg().map((l) => round(l, 2)).join(' '),
  };
}

/**
 * Polls the counter until `n` distinct events arrived; fails when nothing new came for
 * `pace.stallMs`, so a slow machine only makes it take longer and a lost event makes it fail.
 */
async function waitForEvents(receiver: CounterHandle, n: number, what: string, pace: Pace): Promise<ReceiverStats> {
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const s = await receiver.counts();
    if (s.unique >= n) return receiver.stats();
    if (s.unique !== last) {
      last = s.unique;
      lastChange = Date.now();
      pace.progress(`${what}: ${s.unique} of ${n} events`);
    } else if (Date.now() - lastChange > pace.stallMs) {
      throw new Error(`${what}: stalled at ${s.unique} of ${n} events for ${pace.stallMs} ms`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function drainOf(s: ReceiverStats, events: number): DrainResult {
  const seconds = Math.max(0.001, (s.lastAt - s.firstAt) / 1000);
  return { events, received: s.events, unique: s.unique, seconds: round(seconds, 3), eventsPerSecond: round((s.unique - 1) / seconds) };
}

function dbName(consumer: string, w: Workload): string {
  return `pgce_bench_${consumer}_${w.id}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
}

async function slotPid(db: BenchDatabase, slot: string): Promise<number | null> {
  const { rows } = await db.query('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  return (rows[0]?.active_pid as number | null) ?? null;
}

export async function runBench(opts: BenchOptions): Promise<BenchResults> {
  const progress = opts.progress ?? (() => undefined);
  const log = (line: string): void => {
    opts.log?.(line);
    progress(line);
  };
  const pace: Pace = { stallMs: opts.stallMs ?? 30_000, progress };
  const mode = opts.smoke ? 'smoke' : 'full';
  const sizes = SIZES[mode];
  const started = Date.now();
  const results: BenchResults = {
    date: new Date().toISOString(),
    mode,
    sizes,
    receiver: opts.receiver,
    machine: await machine(),
    sinkCapacity: [],
    recvlogical: [],
    handwritten: null,
    scenarios: [],
    pending: [],
    failures: [],
    seconds: 0,
  };
  const receiver = await startReceiver(opts.receiver);
  const attempt = async (what: string, fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      const error = (err as Error).stack ?? String(err);
      log(`  FAILED ${what}: ${error}`);
      results.failures.push({ what, error: (err as Error).message ?? String(err) });
    }
  };

  try {
    // Baseline 2: what the receiver itself accepts.
    for (const m of ['binary', 'batch'] as const) {
      await attempt(`autocannon ${m}`, async () => {
        const cap = await sinkCapacity(receiver, m, sizes.autocannonSeconds);
        log(`sink capacity (${m}, autocannon, ${cap.connections} connections): ${round(cap.eventsPerSecond)} events/s`);
        results.sinkCapacity.push(cap);
      });
    }

    const selected = SCENARIOS.filter((s) => !opts.only || opts.only.includes(s.id));
    for (const s of selected) {
      const reason = s.pending();
      if (reason) results.pending.push({ scenario: s.id, title: s.title, reason });
    }
    const runnable = selected.filter((s) => !s.pending());

    const workloads: [Workload, Scenario[], boolean][] = [[WORKLOADS[MAIN_WORKLOAD], runnable, true]];
    for (const w of Object.values(WORKLOADS)) {
      if (w.id === MAIN_WORKLOAD) continue;
      workloads.push([w, runnable.filter((s) => sizes.variantScenarios.includes(s.id)), false]);
    }

    for (const [w, scenarios, main] of workloads) {
      log(`workload ${w.id}: ${w.title}`);
      await attempt(`pg_recvlogical ${w.id}`, async () => {
        const r = await recvlogicalRun(w, sizes.events);
        log(`  pg_recvlogical: ${r.eventsPerSecond} events/s`);
        results.recvlogical.push(r);
      });
      if (main) {
        await attempt(`hand-written script ${w.id}`, async () => {
          results.handwritten = await handwrittenRun(w, sizes.handwrittenEvents, receiver, pace);
          log(`  hand-written script: ${results.handwritten.eventsPerSecond} events/s`);
        });
      }
      for (const s of scenarios) {
        await attempt(`${s.id} ${w.id}`, async () => {
          const r = await productRun(s, w, main, sizes, receiver, opts.receiver, opts.profile?.scenario === s.id ? opts.profile.dir : undefined, log, pace);
          results.scenarios.push(r);
        });
      }
    }
  } finally {
    await receiver.close();
  }
  results.seconds = round((Date.now() - started) / 1000, 1);
  // Other work on the machine skews every figure: the load averages before and after say how much.
  results.machine.loadAverageAtEnd = os.loadavg().map((l) => round(l, 2)).join(' ');
  return results;
}

async function recvlogicalRun(w: Workload, events: number): Promise<BaselineRun> {
  const name = dbName('recv', w);
  const db = await prepareDatabase(name, w, events, [name]);
  try {
    const backlog = await writeBacklog(db, events);
    const r = await runRecvlogical(name, name, backlog.endLsn);
    return { workload: w.id, events, seconds: round(r.seconds, 3), eventsPerSecond: round(events / r.seconds) };
  } finally {
    await db.drop();
  }
}

async function handwrittenRun(w: Workload, events: number, receiver: ReceiverHandle, pace: Pace): Promise<BaselineRun> {
  const name = dbName('hand', w);
  const db = await prepareDatabase(name, w, events, [name]);
  try {
    await writeBacklog(db, events);
    await receiver.reset();
    const child = spawn(process.execPath, [path.join(__dirname, 'baselines', 'handwritten.js')], {
      env: { ...process.env, DATABASE_URL: db.url, SLOT: name, PUBLICATION, K_SINK: receiver.url, NODE_OPTIONS: '' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const killer = () => child.kill('SIGKILL');
    process.on('exit', killer);
    try {
      const s = await waitForEvents(receiver, events, 'hand-written script', pace);
      const cpu = tryCpuSeconds(child.pid);
      const rss = peakRssMb(child.pid!);
      const d = drainOf(s, events);
      return { workload: w.id, events, seconds: d.seconds, eventsPerSecond: d.eventsPerSecond, cpuSecondsPer100k: round((cpu / events) * 1e5, 2), peakRssMb: round(rss) };
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      process.off('exit', killer);
    }
  } finally {
    await db.drop();
  }
}

/** Where a scenario's events are counted, and the configuration that sends them there. */
interface Target {
  counter: CounterHandle;
  config: string;
  sinkUrl?: string;
  close(): Promise<void>;
}

/**
 * HTTP: the shared receiver, reset. Broker: a destination of this run's own (so no run sees
 * another's events) and a counting consumer positioned at its start before the product starts,
 * so the first arrival is the product's first delivery, not a backlog read late.
 */
async function openTarget(s: Scenario, name: string, receiver: ReceiverHandle, placement: ReceiverPlacement): Promise<Target> {
  if (s.target === 'http') {
    await receiver.reset();
    return { counter: receiver, config: s.config, sinkUrl: receiver.url, close: async () => undefined };
  }
  if (!s.broker) throw new Error(`scenario ${s.id}: target broker names no broker`);
  const destination = await BROKERS[s.broker].prepare(`${name}_${process.pid}_${Date.now().toString(36)}`);
  try {
    const config = renderConfig(s.config, destination.vars);
    const counter = await startBrokerCounter(destination.spec, placement);
    return {
      counter,
      config,
      close: async () => {
        try {
          await counter.close();
        } finally {
          await destination.cleanup();
        }
      },
    };
  } catch (err) {
    await destination.cleanup().catch(() => undefined);
    throw err;
  }
}

async function productRun(
  s: Scenario, w: Workload, main: boolean, sizes: Sizes, receiver: ReceiverHandle, placement: ReceiverPlacement, profileDir: string | undefined,
  log: (l: string) => void, pace: Pace,
): Promise<ScenarioResult> {
  const name = dbName(s.id, w);
  const events = sizes.events;
  const db = await prepareDatabase(name, w, events, [name]);
  try {
    const backlog = await writeBacklog(db, events);
    const target = await openTarget(s, name, receiver, placement);
    try {
      return await measure(s, w, main, sizes, db, name, backlog.seconds, target, profileDir, log, pace);
    } finally {
      await target.close();
    }
  } finally {
    await db.drop();
  }
}

async function measure(
  s: Scenario, w: Workload, main: boolean, sizes: Sizes, db: BenchDatabase, name: string, backlogSeconds: number, target: Target,
  profileDir: string | undefined, log: (l: string) => void, pace: Pace,
): Promise<ScenarioResult> {
  const events = sizes.events;
  const counter = target.counter;
  const source = await startSource({ databaseUrl: db.url, slot: name, config: target.config, sinkUrl: target.sinkUrl, profileDir, startTimeoutMs: pace.stallMs });
  pace.progress(`${s.id} ${w.id}: capturing`);
  try {
    const cpu0 = source.cpuSeconds();
    const walsender = await slotPid(db, name);
    const wal0 = tryCpuSeconds(walsender);
    const counter0 = tryCpuSeconds(counter.pid);
    const drainStats = await waitForEvents(counter, events, `${s.id} ${w.id}`, pace);
    const cpu = source.cpuSeconds() - cpu0;
    const walCpu = tryCpuSeconds(walsender) - wal0;
    const counterCpu = tryCpuSeconds(counter.pid) - counter0;
    const peakDrain = source.peakRssMb();
    const drain = drainOf(drainStats, events);
    log(`  ${s.id}: ${drain.eventsPerSecond} events/s, ${round((cpu / events) * 1e5, 2)} CPU s/100k, peak RSS ${round(peakDrain)} MB ` +
      `(${counter.placement === 'child' ? 'counter' : 'bench process with counter'} ${round((counterCpu / events) * 1e5, 2)} CPU s/100k)`);

    const live: LiveResult[] = [];
    if (main) {
      let nextId = events + 1;
      const rates = sizes.variantLatency || !s.variantOf ? s.latencyRates.filter((r) => sizes.liveRates.includes(r)) : [];
      for (const rate of rates) {
        await counter.reset();
        const paced = await writePaced(db, { rate, seconds: sizes.liveSeconds, firstId: nextId });
        nextId += paced.events;
        const st = await waitForEvents(counter, paced.events, `${s.id} at ${rate}/s`, pace);
        live.push({ targetRate: rate, achievedRate: round(paced.rate), events: paced.events, received: st.events, unique: st.unique, latencyMs: st.latency });
        log(`  ${s.id} at ${rate}/s (achieved ${round(paced.rate)}): p50 ${st.latency.p50} ms, p95 ${st.latency.p95} ms, p99 ${st.latency.p99} ms`);
      }
    }
    const peak = source.peakRssMb();
    const exitCode = await source.stop();
    return {
      scenario: s.id,
      title: s.title,
      target: s.target,
      workload: w.id,
      backlogWriteSeconds: round(backlogSeconds, 2),
      drain,
      cpuSecondsPer100k: round((cpu / events) * 1e5, 2),
      walsenderCpuSecondsPer100k: round((walCpu / events) * 1e5, 2),
      counterCpuSecondsPer100k: round((counterCpu / events) * 1e5, 2),
      peakRssMbDrain: round(peakDrain),
      peakRssMb: round(peak),
      live,
      exitCode,
    };
  } finally {
    await source.stop().catch(() => undefined);
  }
}
