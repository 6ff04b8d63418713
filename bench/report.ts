/** Renders a run's results as the generated part of BENCHMARKS.md (between the markers). */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { MAIN_WORKLOAD, type BenchResults, type ScenarioResult } from './run';
import { round } from './stats';

export const START = '<!-- bench:generated:start -->';
export const END = '<!-- bench:generated:end -->';

const fmt = (n: number | null | undefined, digits = 0): string =>
  n === null || n === undefined || Number.isNaN(n) ? '–' : round(n, digits).toLocaleString('en-US');
const ratio = (a: number, b: number | undefined): string => (b ? `${round(a / b, 2)}×` : '–');
const mark = (ok: boolean): string => (ok ? 'met' : '**not met**');
/** Counted at a broker (results before `target` existed were all HTTP). */
const isBroker = (s: ScenarioResult): boolean => s.target === 'broker';

export function targets(r: BenchResults): { target: string; measured: string; met: boolean }[] {
  const main = r.scenarios.filter((s) => s.workload === MAIN_WORKLOAD);
  const get = (id: string): ScenarioResult | undefined => main.find((s) => s.scenario === id);
  const recvMain = r.recvlogical.find((b) => b.workload === MAIN_WORKLOAD)?.eventsPerSecond;
  const out: { target: string; measured: string; met: boolean }[] = [];
  const mif64 = get('http-binary-mif64');
  if (mif64) out.push({ target: 'HTTP binary, maxInFlight 64 ≥ 10,000 events/s', measured: `${fmt(mif64.drain.eventsPerSecond)} events/s`, met: mif64.drain.eventsPerSecond >= 10_000 });
  const batch = get('http-batch');
  if (batch) out.push({ target: 'HTTP batch ≥ 40,000 events/s', measured: `${fmt(batch.drain.eventsPerSecond)} events/s`, met: batch.drain.eventsPerSecond >= 40_000 });
  for (const s of main.filter((x) => isBroker(x))) {
    out.push({ target: `${s.title} ≥ 40,000 events/s`, measured: `${fmt(s.drain.eventsPerSecond)} events/s`, met: s.drain.eventsPerSecond >= 40_000 });
  }
  for (const p of r.pending) out.push({ target: `${p.title} ≥ 40,000 events/s`, measured: `pending: ${p.reason}`, met: false });
  // Fastest scenario on each workload against pg_recvlogical on the same workload.
  for (const b of r.recvlogical) {
    const best = r.scenarios.filter((s) => s.workload === b.workload).sort((x, y) => y.drain.eventsPerSecond - x.drain.eventsPerSecond)[0];
    if (best) out.push({ target: `≥ 50% of pg_recvlogical (${b.workload}, fastest: ${best.scenario})`, measured: `${round((100 * best.drain.eventsPerSecond) / b.eventsPerSecond)}%`, met: best.drain.eventsPerSecond >= 0.5 * b.eventsPerSecond });
  }
  if (r.handwritten && mif64) out.push({ target: '≥ 5× the hand-written script (HTTP binary, maxInFlight 64: one event per request, like the script)', measured: ratio(mif64.drain.eventsPerSecond, r.handwritten.eventsPerSecond), met: mif64.drain.eventsPerSecond >= 5 * r.handwritten.eventsPerSecond });
  for (const s of main) {
    const l = s.live.find((x) => x.targetRate === 1000);
    if (l && l.latencyMs.p99 !== null) out.push({ target: `p99 ≤ 50 ms at 1,000 changes/s (${s.scenario})`, measured: `${fmt(l.latencyMs.p99)} ms`, met: l.latencyMs.p99 <= 50 });
  }
  const peak = Math.max(...r.scenarios.map((s) => s.peakRssMb));
  if (r.scenarios.length) out.push({ target: 'peak RSS ≤ 200 MB at full speed', measured: `${fmt(peak)} MB (highest of all scenarios)`, met: peak <= 200 });
  void recvMain;
  return out;
}

export function renderGenerated(r: BenchResults, command: string, resultsFile: string): string {
  const m = r.machine;
  const recv = (w: string) => r.recvlogical.find((b) => b.workload === w)?.eventsPerSecond;
  const cap = (mode: string) => r.sinkCapacity.find((c) => c.mode === mode)?.eventsPerSecond;
  const lines: string[] = [];
  lines.push(`Run of ${r.date.slice(0, 16).replace('T', ' ')} UTC, ${r.seconds} s in all: \`${command}\` (results: \`${resultsFile}\`).`);
  lines.push('');
  lines.push(`Machine: ${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB memory, PostgreSQL ${m.postgres}, Node ${m.node}, ${m.os}. ` +
    `PostgreSQL, the source, the receiver and the broker consumers (${r.receiver === 'child' ? 'each a process of its own' : 'inside the bench process'}), ` +
    'the brokers (Redis, NATS, the Kafka mock) and the load generator share the machine; ' +
    `load average (1/5/15 min) ${m.loadAverageAtStart ?? '?'} at the start and ${m.loadAverageAtEnd ?? '?'} at the end (other work on the machine skews the figures).`);
  lines.push('');
  lines.push('### Targets');
  lines.push('');
  lines.push('| target | measured | |');
  lines.push('|---|---|---|');
  for (const t of targets(r)) lines.push(`| ${t.target} | ${t.measured} | ${mark(t.met)} |`);
  lines.push('');
  lines.push(`### Throughput and footprint: ${r.sizes.events.toLocaleString('en-US')}-event drains`);
  lines.push('');
  lines.push('| workload | scenario | events/s | vs pg_recvlogical | vs sink capacity | vs hand-written | CPU s / 100k events (source) | CPU s / 100k (walsender) | peak RSS MB |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const b of r.recvlogical) {
    lines.push(`| ${b.workload} | pg_recvlogical (baseline 1) | ${fmt(b.eventsPerSecond)} | 1× | | | | | |`);
    for (const s of r.scenarios.filter((x) => x.workload === b.workload)) {
      // Sink capacity is the HTTP receiver's: it says nothing about a broker.
      const c = isBroker(s) ? undefined : cap(s.scenario === 'http-batch' ? 'batch' : 'binary');
      const hw = s.workload === MAIN_WORKLOAD ? r.handwritten?.eventsPerSecond : undefined;
      lines.push(`| ${s.workload} | ${s.title} | ${fmt(s.drain.eventsPerSecond)} | ${ratio(s.drain.eventsPerSecond, recv(b.workload))} | ${ratio(s.drain.eventsPerSecond, c)} | ${ratio(s.drain.eventsPerSecond, hw)} | ${fmt(s.cpuSecondsPer100k, 1)} | ${fmt(s.walsenderCpuSecondsPer100k, 1)} | ${fmt(s.peakRssMb)} |`);
    }
    if (b.workload === MAIN_WORKLOAD && r.handwritten) {
      const h = r.handwritten;
      lines.push(`| ${h.workload} | hand-written script (baseline 3; ${h.events.toLocaleString('en-US')} events) | ${fmt(h.eventsPerSecond)} | ${ratio(h.eventsPerSecond, recv(b.workload))} | ${ratio(h.eventsPerSecond, cap('binary'))} | 1× | ${fmt(h.cpuSecondsPer100k, 1)} | | ${fmt(h.peakRssMb)} |`);
    }
  }
  for (const p of r.pending) lines.push(`| | ${p.title} | pending: ${p.reason} | | | | | | |`);
  lines.push('');
  lines.push('Sink capacity (baseline 2, autocannon against the same receiver, 64 connections): ' +
    r.sinkCapacity.map((c) => `${c.mode} ${fmt(c.eventsPerSecond)} events/s (${fmt(c.requestsPerSecond)} requests/s)`).join('; ') + '.');
  lines.push('');
  lines.push(`### Commit → delivery latency (${MAIN_WORKLOAD}, fixed commit rates, ${r.sizes.liveSeconds} s each)`);
  lines.push('');
  lines.push('| scenario | target rate | achieved commit rate | events | p50 ms | p95 ms | p99 ms | max ms |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const s of r.scenarios) {
    for (const l of s.live) {
      lines.push(`| ${s.title} | ${fmt(l.targetRate)} | ${fmt(l.achievedRate)} | ${fmt(l.unique)} | ${fmt(l.latencyMs.p50)} | ${fmt(l.latencyMs.p95)} | ${fmt(l.latencyMs.p99)} | ${fmt(l.latencyMs.max)} |`);
    }
  }
  if (r.failures.length) {
    lines.push('');
    lines.push('### Failures in this run');
    lines.push('');
    for (const f of r.failures) lines.push(`- ${f.what}: ${f.error.split('\n')[0]}`);
  }
  return lines.join('\n');
}

export function updateBenchmarksMd(file: string, r: BenchResults, command: string, resultsFile: string): void {
  const generated = `${START}\n${renderGenerated(r, command, resultsFile)}\n${END}`;
  const text = existsSync(file) ? readFileSync(file, 'utf8') : `# Benchmarks\n\n${START}\n${END}\n`;
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b < 0) throw new Error(`${file} lacks the ${START} … ${END} markers`);
  writeFileSync(file, text.slice(0, a) + generated + text.slice(b + END.length));
}
