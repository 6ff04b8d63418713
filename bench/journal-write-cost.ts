/**
 * The write cost of capture.mode: trigger against logical mode (README "Capture modes"), on the
 * local PostgreSQL: the same workload of single-row transactions (INSERT, then UPDATE of each row)
 * against a table captured by neither, by logical mode (publication and slot: logical decoding
 * reads the WAL already written, so the write path is the plain one), and by trigger mode (the
 * journal's triggers), plus, for trigger mode, the reader's DELETE of the delivered journal rows
 * (in batches, as the source does). Reports transactions per second and latency from concurrent
 * clients, and the WAL each change writes: EXPLAIN (ANALYZE, WAL) of the same statements, which
 * counts this backend's WAL only, AFTER triggers included (the server's WAL position would count
 * whatever else the server does meanwhile). Set-up and teardown go through the CLI.
 *
 * Run: `make build && node dist/bench/journal-write-cost.js [rows] [clients]` (defaults 10000, 4;
 * PGCE_BENCH_DATABASE_URL names the server, default postgres://postgres@127.0.0.1:5432/postgres).
 * Uses its own database pgce_jrn_bench, dropped at the end.
 */
import { Client, Pool } from 'pg';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';

const DB = 'pgce_jrn_bench';
const CLI = join(__dirname, '..', 'src', 'cli', 'main.js');
const TABLE = `CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL, amount numeric(12,2) NOT NULL,
  status text NOT NULL, note text, created_at timestamptz NOT NULL DEFAULT now())`;
/**
 * Each change through a function: EXPLAIN (ANALYZE, WAL) counts the WAL of the plan's nodes, and
 * AFTER triggers fire after them, at the end of the statement; inside a function they fire at the
 * end of the inner statement, while the outer node runs, so they are counted.
 */
const FUNCTIONS = [
  `CREATE OR REPLACE FUNCTION bench_insert(i bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN INSERT INTO orders (id, customer, amount, status, note) VALUES (i, i % 997, (i % 10000) / 100.0, 'new', 'order ' || i); END $$`,
  `CREATE OR REPLACE FUNCTION bench_update(i bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN UPDATE orders SET status = 'paid', amount = amount + 1 WHERE id = i; END $$`,
];

type Mode = 'none' | 'logical' | 'trigger';

interface Phase { tps: number; meanMs: number; p99Ms: number; walPerTx: number; recordsPerTx: number }

function serverUrl(database: string): string {
  const url = new URL(process.env.PGCE_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  url.pathname = `/${database}`;
  return url.toString();
}

async function admin(sql: string): Promise<void> {
  const c = new Client({ connectionString: serverUrl('postgres') });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

function cli(args: string[], mode: Exclude<Mode, 'none'>): void {
  const dir = mkdtempSync(join(tmpdir(), 'pgce-jrn-bench-'));
  const config = join(dir, 'config.yaml');
  writeFileSync(config, `capture: { mode: ${mode}, slot: pgce_jrn_bench, publication: pgce_jrn_bench }\ntables: [orders]\n`);
  const run = spawnSync(process.execPath, [CLI, ...args], {
    env: { ...process.env, DATABASE_URL: serverUrl(DB), PG_CLOUDEVENTS_CONFIG: config, K_SINK: 'http://127.0.0.1:9' }, encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`${args.join(' ')} (${mode}) failed: ${run.stderr}`);
}

/** WAL written by one statement (its AFTER triggers included), from EXPLAIN (ANALYZE, WAL). */
async function explainWal(client: { query: Pool['query'] }, text: string, params: unknown[]): Promise<{ bytes: number; records: number }> {
  const plan = (await client.query(`EXPLAIN (ANALYZE, WAL, FORMAT JSON) ${text}`, params)).rows[0]['QUERY PLAN'][0];
  const walOf = (node: Record<string, unknown>): { bytes: number; records: number } => ({ bytes: Number(node['WAL Bytes'] ?? 0), records: Number(node['WAL Records'] ?? 0) });
  // The top node's figures include its children's (and, through a function, the triggers').
  return walOf(plan.Plan);
}

/**
 * `rows` single-row transactions from `clients` connections at once (`sql(i)` is transaction i's
 * statement), timed; then `sample` more, one at a time under EXPLAIN (ANALYZE, WAL), for their WAL.
 */
async function phase(pool: Pool, rows: number, clients: number, sample: number, sql: (i: number) => [string, unknown[]]): Promise<Phase> {
  const latencies: number[] = [];
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: clients }, async () => {
    const client = await pool.connect();
    try {
      for (let i = next++; i < rows; i = next++) {
        const t = process.hrtime.bigint();
        const [text, params] = sql(i);
        await client.query(text, params);
        latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    } finally {
      client.release();
    }
  }));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  let bytes = 0;
  let records = 0;
  for (let i = rows; i < rows + sample; i++) {
    const [text, params] = sql(i);
    const wal = await explainWal(pool, text, params);
    bytes += wal.bytes;
    records += wal.records;
  }
  latencies.sort((a, b) => a - b);
  return {
    tps: rows / seconds,
    meanMs: latencies.reduce((a, b) => a + b, 0) / latencies.length,
    p99Ms: latencies[Math.floor(latencies.length * 0.99)],
    walPerTx: bytes / sample,
    recordsPerTx: records / sample,
  };
}

async function measure(mode: Mode, rows: number, clients: number): Promise<{ insert: Phase; update: Phase; deleteWalPerRow?: number }> {
  const pool = new Pool({ connectionString: serverUrl(DB), max: clients + 1 });
  try {
    await pool.query('DROP TABLE IF EXISTS orders');
    await pool.query(TABLE);
    for (const sql of FUNCTIONS) await pool.query(sql);
    if (mode !== 'none') cli(['setup'], mode);
    const sample = 1000;
    const insert = await phase(pool, rows, clients, sample, (i) => ['SELECT bench_insert($1)', [i]]);
    const update = await phase(pool, rows, clients, sample, (i) => ['SELECT bench_update($1)', [i]]);
    let deleteWalPerRow: number | undefined;
    if (mode === 'trigger') {
      // The reader deletes delivered rows by id, in batches (JournalSource.flushDeletes).
      const ids = (await pool.query('SELECT id::text FROM pgcloudevents.journal ORDER BY id')).rows.map((r) => r.id);
      let bytes = 0;
      for (let i = 0; i < ids.length; i += 500) bytes += (await explainWal(pool, 'DELETE FROM pgcloudevents.journal WHERE id = ANY($1::bigint[])', [ids.slice(i, i + 500)])).bytes;
      deleteWalPerRow = bytes / ids.length;
    }
    if (mode !== 'none') cli(['teardown'], mode);
    return { insert, update, deleteWalPerRow };
  } finally {
    await pool.end();
  }
}

async function main(): Promise<void> {
  const rows = Number(process.argv[2] ?? 10_000);
  const clients = Number(process.argv[3] ?? 4);
  await admin(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin(`CREATE DATABASE ${DB}`);
  try {
    const version = await (async () => {
      const c = new Client({ connectionString: serverUrl(DB) });
      await c.connect();
      try {
        return (await c.query("SELECT current_setting('server_version') AS v, current_setting('synchronous_commit') AS s")).rows[0];
      } finally {
        await c.end();
      }
    })();
    process.stdout.write(`PostgreSQL ${version.v} (synchronous_commit ${version.s}), ${cpus().length} cores; ${rows} single-row transactions per phase from ${clients} connections\n`);
    process.stdout.write('mode      phase    tx/s    mean ms  p99 ms   WAL B/change  WAL records/change\n');
    const results: Partial<Record<Mode, Awaited<ReturnType<typeof measure>>>> = {};
    for (const mode of ['none', 'logical', 'trigger'] as Mode[]) {
      const r = await measure(mode, rows, clients);
      results[mode] = r;
      for (const [name, p] of [['insert', r.insert], ['update', r.update]] as const) {
        process.stdout.write(`${mode.padEnd(9)} ${name.padEnd(7)} ${p.tps.toFixed(0).padStart(6)}  ${p.meanMs.toFixed(3).padStart(7)}  ${p.p99Ms.toFixed(3).padStart(6)}  ${p.walPerTx.toFixed(0).padStart(12)}  ${p.recordsPerTx.toFixed(1).padStart(18)}\n`);
      }
      if (r.deleteWalPerRow !== undefined) process.stdout.write(`${mode.padEnd(9)} reader's DELETE of the delivered rows: ${r.deleteWalPerRow.toFixed(0)} WAL B/row\n`);
    }
    const l = results.logical!;
    const t = results.trigger!;
    const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
    process.stdout.write(`trigger vs logical: insert tx/s ${ratio(t.insert.tps, l.insert.tps)}, update tx/s ${ratio(t.update.tps, l.update.tps)}; ` +
      `WAL per change (insert + reader's delete) ${ratio(t.insert.walPerTx + t.deleteWalPerRow!, l.insert.walPerTx)}, ` +
      `(update + delete) ${ratio(t.update.walPerTx + t.deleteWalPerRow!, l.update.walPerTx)}\n`);
  } finally {
    await admin(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
