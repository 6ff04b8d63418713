/**
 * The workload generator: one table `bench_rows (id bigint primary key, payload text)` in a
 * database of the run's own, and a procedure that commits as it goes, so PostgreSQL itself writes
 * the changes (a client round trip per transaction would make the generator the thing measured).
 *
 * - backlog (flat-out): all changes written before the consumer starts, with
 *   synchronous_commit off; the consumer then drains them as fast as it can.
 * - paced (fixed rate, e.g. 1,000 or 5,000 changes/s): single-row insert transactions spread over
 *   a few connections, synchronous_commit on (a logical walsender only sends flushed WAL, so
 *   asynchronous commit would add up to wal_writer_delay to every latency).
 */
import { Client } from 'pg';
import { createTestDatabase, type TestDatabase } from '../test/integration/harness/postgres';

export interface Workload {
  id: string;
  title: string;
  op: 'insert' | 'update' | 'delete';
  /** Changes per transaction. */
  perTx: number;
  /** Approximate row size: an 8-byte id and a text payload of rowBytes − 8 characters. */
  rowBytes: number;
}

export const WORKLOADS: Record<string, Workload> = {
  'insert-1-100B': { id: 'insert-1-100B', title: 'inserts, single-row transactions, ~100 B rows', op: 'insert', perTx: 1, rowBytes: 100 },
  'insert-1000-100B': { id: 'insert-1000-100B', title: 'inserts, 1,000-row transactions, ~100 B rows', op: 'insert', perTx: 1000, rowBytes: 100 },
  'insert-1000-1KB': { id: 'insert-1000-1KB', title: 'inserts, 1,000-row transactions, ~1 KB rows', op: 'insert', perTx: 1000, rowBytes: 1000 },
  'update-1-100B': { id: 'update-1-100B', title: 'updates, single-row transactions, ~100 B rows', op: 'update', perTx: 1, rowBytes: 100 },
  'delete-1000-100B': { id: 'delete-1000-100B', title: 'deletes, 1,000-row transactions, ~100 B rows', op: 'delete', perTx: 1000, rowBytes: 100 },
};

export const TABLE = 'bench_rows';
export const PUBLICATION = 'pgce_bench_pub';

const SCHEMA_SQL = `
CREATE TABLE ${TABLE} (id bigint PRIMARY KEY, payload text NOT NULL);
-- Changes rows first .. first + n - 1, committing every per_tx of them (and at the end).
CREATE PROCEDURE pgce_bench_work(op text, first bigint, n bigint, per_tx int, size int, fill text)
LANGUAGE plpgsql AS $$
DECLARE
  i bigint;
  p text := repeat(fill, size);
BEGIN
  FOR i IN first .. first + n - 1 LOOP
    IF op = 'insert' THEN
      INSERT INTO ${TABLE} VALUES (i, p);
    ELSIF op = 'update' THEN
      UPDATE ${TABLE} SET payload = p WHERE id = i;
    ELSE
      DELETE FROM ${TABLE} WHERE id = i;
    END IF;
    IF (i - first + 1) % per_tx = 0 THEN
      COMMIT;
    END IF;
  END LOOP;
  COMMIT;
END $$;`;

export interface BenchDatabase extends TestDatabase {
  workload: Workload;
}

/**
 * A fresh database for one run: table, procedure, the rows updates/deletes need (written before
 * any slot exists, so they are not part of what is measured), the publication, and `slots`
 * (pgoutput) created last so they see exactly what follows.
 */
export async function prepareDatabase(name: string, workload: Workload, events: number, slots: string[]): Promise<BenchDatabase> {
  const db = await createTestDatabase(name);
  await db.query(SCHEMA_SQL);
  if (workload.op !== 'insert') {
    await db.query(`INSERT INTO ${TABLE} SELECT g, repeat('x', $2) FROM generate_series(1, $1::bigint) g`, [events, payloadChars(workload)]);
  }
  await db.query(`CREATE PUBLICATION ${PUBLICATION} FOR TABLE ${TABLE}`);
  for (const slot of slots) await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  return Object.assign(db, { workload });
}

function payloadChars(w: Workload): number {
  return Math.max(1, w.rowBytes - 8);
}

export interface BacklogResult {
  events: number;
  seconds: number;
  /** pg_current_wal_lsn() after the last commit. */
  endLsn: string;
}

/** Writes the whole workload flat out, before the consumer starts. */
export async function writeBacklog(db: BenchDatabase, events: number): Promise<BacklogResult> {
  const w = db.workload;
  const client = new Client({ connectionString: db.url, application_name: 'pgce-bench-workload' });
  await client.connect();
  try {
    await client.query('SET synchronous_commit = off');
    const started = process.hrtime.bigint();
    await client.query('CALL pgce_bench_work($1, 1, $2, $3, $4, $5)', [w.op, events, w.perTx, payloadChars(w), w.op === 'update' ? 'y' : 'x']);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    // Asynchronously committed WAL is flushed by the WAL writer within wal_writer_delay.
    const { rows } = await client.query(`SELECT pg_current_wal_lsn()::text AS lsn`);
    return { events, seconds, endLsn: rows[0].lsn as string };
  } finally {
    await client.end();
  }
}

export interface PacedResult {
  events: number;
  seconds: number;
  /** Achieved commit rate (changes/s). */
  rate: number;
}

/**
 * Inserts `rate × seconds` rows from id `firstId` on, one row per transaction, at a fixed rate:
 * each connection repeatedly takes what is due (at most 5 ms' worth) and commits it row by row.
 */
export async function writePaced(db: BenchDatabase, opts: { rate: number; seconds: number; firstId: number; connections?: number }): Promise<PacedResult> {
  const total = Math.round(opts.rate * opts.seconds);
  const chunkMax = Math.max(1, Math.ceil(opts.rate / 200));
  const clients: Client[] = [];
  for (let i = 0; i < (opts.connections ?? 4); i++) {
    const c = new Client({ connectionString: db.url, application_name: 'pgce-bench-workload' });
    await c.connect();
    clients.push(c);
  }
  let issued = 0;
  const started = Date.now();
  const loop = async (client: Client): Promise<void> => {
    while (issued < total) {
      const due = Math.min(total, Math.floor(((Date.now() - started) / 1000) * opts.rate)) - issued;
      if (due <= 0) {
        await new Promise((r) => setTimeout(r, Math.max(1, Math.floor(1000 / opts.rate))));
        continue;
      }
      const n = Math.min(due, chunkMax);
      const first = opts.firstId + issued;
      issued += n;
      await client.query('CALL pgce_bench_work($1, $2, $3, 1, $4, $5)', ['insert', first, n, payloadChars(db.workload), 'x']);
    }
  };
  try {
    await Promise.all(clients.map(loop));
  } finally {
    await Promise.all(clients.map((c) => c.end()));
  }
  const seconds = (Date.now() - started) / 1000;
  return { events: total, seconds, rate: total / seconds };
}
