/**
 * Starts scripts/pglite-server.js (the demo's embedded PostgreSQL) as a child process.
 */
import * as path from 'node:path';
import { REPO_ROOT, spawnCli, type CliProcess } from './process';

export const EMBEDDED_SERVER_PATH = path.join(REPO_ROOT, 'scripts', 'pglite-server.js');

export interface EmbeddedPostgres {
  url: string;
  port: number;
  process: CliProcess;
  /** SIGTERM and wait for the exit (PGlite closes its data directory). */
  stop(): Promise<void>;
}

/** First start of a data directory runs initdb in WebAssembly: several seconds on 2 cores. */
const START_TIMEOUT_MS = 45_000;

export async function startEmbeddedPostgres(opts: { dataDir?: string } = {}): Promise<EmbeddedPostgres> {
  const args = [EMBEDDED_SERVER_PATH, '--port', '0', ...(opts.dataDir ? ['--data-dir', opts.dataDir] : [])];
  const p = spawnCli(args, {}, { command: process.execPath });
  const line = await p.waitForLine(/^\{"url":/, START_TIMEOUT_MS);
  const { url, port } = JSON.parse(line) as { url: string; port: number };
  return {
    url,
    port,
    process: p,
    stop: async () => {
      p.kill('SIGTERM');
      await p.exit();
    },
  };
}
