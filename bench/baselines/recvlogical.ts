/**
 * Baseline 1: PostgreSQL's own decoding rate. pg_recvlogical reads the same slot type (pgoutput,
 * protocol 1, the product's publication) and writes to /dev/null without fsync, stopping by itself
 * at the LSN the workload ended at. Its time is the time PostgreSQL takes to decode and send the
 * workload over the replication protocol: no consumer of pgoutput can go faster on this machine.
 */
import { spawn } from 'node:child_process';
import { databaseUrl } from '../../test/integration/harness/postgres';
import { PUBLICATION } from '../workload';

export const PG_RECVLOGICAL = process.env.PG_RECVLOGICAL ?? '/usr/bin/pg_recvlogical';

export interface RecvlogicalResult {
  seconds: number;
}

export function runRecvlogical(database: string, slot: string, endLsn: string, timeoutMs = 300_000): Promise<RecvlogicalResult> {
  const args = [
    '-d', databaseUrl(database), '--slot', slot, '--start', '--no-loop',
    '-o', 'proto_version=1', '-o', `publication_names=${PUBLICATION}`,
    '--endpos', endLsn, '-F', '0', '-f', '/dev/null',
  ];
  const started = process.hrtime.bigint();
  const child = spawn(PG_RECVLOGICAL, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code === 0) resolve({ seconds });
      else reject(new Error(`pg_recvlogical exited ${signal ?? code}: ${stderr.trim()}`));
    });
  });
}
