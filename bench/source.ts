/**
 * Runs the real product for one scenario: `node dist/src/cli/main.js run` with the image's
 * NODE_OPTIONS (heap cap), a configuration file of the run's own (slot, publication, database),
 * LOG_LEVEL info (debug would log per event), and measures it through /proc.
 */
import { mkdirSync } from 'node:fs';
import { CLI_PATH, spawnCli, SHIPPED_NODE_OPTIONS, type CliProcess } from '../test/integration/harness/process';
import { freePort, writeTempFile } from '../test/integration/support';
import { cpuSeconds, peakRssMb, rssMb } from './proc';
import { PUBLICATION, TABLE } from './workload';

export interface SourceProcess {
  cli: CliProcess;
  pid: number;
  port: number;
  cpuSeconds(): number;
  peakRssMb(): number;
  rssMb(): number;
  /** SIGTERM, and the exit code (the product exits 0 after a clean shutdown). */
  stop(): Promise<number | null>;
}

export interface SourceOptions {
  databaseUrl: string;
  slot: string;
  /** The scenario's configuration lines, rendered (bench/scenarios.ts renderConfig). */
  config: string;
  /** K_SINK, for the http handler; broker scenarios name their handler in `config`. */
  sinkUrl?: string;
  /** Write a V8 CPU profile (node --cpu-prof) into this directory on exit. */
  profileDir?: string;
  /** How long the product may take to log "capturing" (default 30 s). */
  startTimeoutMs?: number;
}

export async function startSource(opts: SourceOptions): Promise<SourceProcess> {
  const config = writeTempFile('bench.yaml', `capture: { slot: ${opts.slot}, publication: ${PUBLICATION}, statusInterval: PT1S }
tables: [ ${TABLE} ]
${opts.config}`);
  const port = await freePort();
  if (opts.profileDir) mkdirSync(opts.profileDir, { recursive: true });
  const env: Record<string, string> = {
    DATABASE_URL: opts.databaseUrl,
    PG_CLOUDEVENTS_CONFIG: config,
    PORT: String(port),
    LOG_LEVEL: 'info',
    NODE_OPTIONS: SHIPPED_NODE_OPTIONS,
  };
  if (opts.sinkUrl) env.K_SINK = opts.sinkUrl;
  // --cpu-prof is not allowed in NODE_OPTIONS: profile by running node with it explicitly.
  const cli = opts.profileDir
    ? spawnCli(['--cpu-prof', `--cpu-prof-dir=${opts.profileDir}`, CLI_PATH, 'run'], env, { command: process.execPath })
    : spawnCli(['run'], env);
  try {
    await cli.waitForLine(/"msg":"capturing"|capturing/, opts.startTimeoutMs ?? 30_000);
  } catch (err) {
    // A product that never started capturing must not compete for the cores with the next run.
    cli.kill('SIGKILL');
    await cli.exit();
    throw err;
  }
  const pid = cli.child.pid!;
  return {
    cli,
    pid,
    port,
    cpuSeconds: () => cpuSeconds(pid),
    peakRssMb: () => peakRssMb(pid),
    rssMb: () => rssMb(pid),
    stop: async () => {
      cli.kill('SIGTERM');
      return (await cli.exit()).code;
    },
  };
}
