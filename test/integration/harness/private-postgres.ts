/**
 * A private PostgreSQL cluster for tests that need server settings the shared one must keep
 * (max_slot_wal_keep_size, 1 MB WAL segments, …): initdb into a temporary directory, started on a
 * free loopback port with its unix socket in that directory, stopped by its postmaster's PID.
 * initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` user (runuser).
 */
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Client, type QueryResult } from 'pg';
import { freePort } from '../support';
import { alive } from './process';

const run = promisify(execFile);

/** PostgreSQL's programs; PGCE_TEST_PG_BIN points elsewhere (another version, another layout). */
export function postgresBin(): string {
  return process.env.PGCE_TEST_PG_BIN || '/usr/lib/postgresql/15/bin';
}

export interface PrivatePostgresOptions {
  /** postgresql.conf settings, as written there (`max_slot_wal_keep_size: '2MB'`). */
  settings?: Record<string, string>;
  /** WAL segment size in MB (initdb --wal-segsize); small segments make WAL limits cheap to reach. */
  walSegmentMb?: number;
}

export interface PrivatePostgres {
  port: number;
  dir: string;
  /** The postmaster's PID. */
  pid: number;
  /** A URL for database `name` (default postgres), user postgres, trust authentication. */
  url(name?: string): string;
  /** One query on a fresh connection to database `name`. */
  query(sql: string, params?: unknown[], name?: string): Promise<QueryResult>;
  /** Fast shutdown by PID, then the directory is removed. Safe to call twice. */
  stop(): Promise<void>;
}

const live = new Set<number>();
let exitHookInstalled = false;

/** Command prefix that runs a PostgreSQL program as `postgres` when we are root. */
function asPostgres(program: string, args: string[]): [string, string[]] {
  const bin = path.join(postgresBin(), program);
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
}

export async function startPrivatePostgres(options: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
  if (!exitHookInstalled) {
    // A test process that ends without stop() must not leave a cluster behind ('exit' is synchronous).
    process.on('exit', () => {
      for (const pid of live) {
        try {
          process.kill(pid, 'SIGQUIT');
        } catch {
          /* already gone */
        }
      }
    });
    exitHookInstalled = true;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgce-pg-'));
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    fs.chownSync(dir, uid, gid);
  }
  const data = path.join(dir, 'data');
  const port = await freePort();
  const removeDir = () => fs.rmSync(dir, { recursive: true, force: true });
  try {
    const [initdb, initArgs] = asPostgres('initdb', [
      '-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync',
      `--wal-segsize=${options.walSegmentMb ?? 1}`,
    ]);
    await run(initdb, initArgs);
    const settings: Record<string, string> = {
      listen_addresses: "'127.0.0.1'",
      port: String(port),
      unix_socket_directories: `'${dir}'`,
      fsync: 'off',
      max_connections: '30',
      ...Object.fromEntries(Object.entries(options.settings ?? {}).map(([k, v]) => [k, /^[\w.-]+$/.test(v) ? v : `'${v}'`])),
    };
    fs.appendFileSync(path.join(data, 'postgresql.conf'), `\n${Object.entries(settings).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`);
    const [pgCtl, ctlArgs] = asPostgres('pg_ctl', ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', 'start']);
    await run(pgCtl, ctlArgs);
  } catch (err) {
    const log = path.join(dir, 'server.log');
    const tail = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').slice(-20).join('\n') : '';
    removeDir();
    throw new Error(`could not start a private PostgreSQL in ${dir}: ${(err as Error).message}\n${tail}`);
  }
  const pid = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  live.add(pid);

  const url = (name = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(name)}`;
  let stopped = false;
  return {
    port,
    dir,
    pid,
    url,
    async query(sql, params, name) {
      const client = new Client({ connectionString: url(name), application_name: 'pgce-test-harness' });
      client.on('error', () => undefined);
      await client.connect();
      try {
        return await client.query(sql, params);
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      // SIGINT: fast shutdown (sessions are ended, nothing waits for clients).
      if (alive(pid)) process.kill(pid, 'SIGINT');
      const deadline = Date.now() + 30_000;
      while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (alive(pid)) process.kill(pid, 'SIGQUIT');
      live.delete(pid);
      removeDir();
    },
  };
}
