// A/B loop for one build (see BENCHMARKS.md "Before and after"): writes 100,000 single-row
// inserts, then runs this checkout's dist/src/cli/main.js against a counting receiver in a child
// process and prints events/s, CPU s per 100k events (from the first event received) and peak RSS.
//   node bench/ab/drain.js <http-batch|http-binary-mif64|http-binary-mif1|http-structured> [events] [payload bytes] [profile]
// Plain JavaScript on purpose: the same file runs against an older checkout's build.
const path = require('path'); const fs = require('fs'); const os = require('os');
const { fork, spawn } = require('child_process');
const { Client } = require('pg');
const ROOT = path.join(__dirname, '..', '..');
// PostgreSQL as the tests use it: loopback, trust authentication.
const CONFIGS = {
  'http-binary-mif64': 'sink: { mode: binary }\ndelivery: { maxInFlight: 64 }\n',
  'http-binary-mif1': 'sink: { mode: binary }\ndelivery: { maxInFlight: 1 }\n',
  'http-structured': 'sink: { mode: structured }\ndelivery: { maxInFlight: 64 }\n',
  'http-batch': 'sink: { mode: batch, batchSize: 100 }\ndelivery: { maxInFlight: 64 }\n',
};
const stat = (pid) => { const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) / 100; };
const hwm = (pid) => Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
(async () => {
  const [id = 'http-batch', n = '100000', size = '92', prof] = process.argv.slice(2);
  if (!CONFIGS[id]) throw new Error(`unknown scenario ${id}; one of ${Object.keys(CONFIGS).join(', ')}`);
  const events = Number(n); const db = `pgce_quick_${id.replace(/-/g, '_')}`;
  const admin = new Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' }); await admin.connect();
  await admin.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, [db]);
  await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`); await admin.query(`CREATE DATABASE ${db}`);
  const url = `postgres://postgres@127.0.0.1:5432/${db}`;
  const c = new Client({ connectionString: url }); await c.connect();
  await c.query(`CREATE TABLE bench_rows (id bigint PRIMARY KEY, payload text NOT NULL); CREATE PUBLICATION pgce_bench_pub FOR TABLE bench_rows;
    CREATE PROCEDURE work(n bigint, size int) LANGUAGE plpgsql AS $$ DECLARE i bigint; p text := repeat('x', size); BEGIN FOR i IN 1..n LOOP INSERT INTO bench_rows VALUES (i, p); COMMIT; END LOOP; END $$;`);
  await c.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [db]);
  await c.query('SET synchronous_commit = off'); await c.query('CALL work($1, $2)', [events, Number(size)]); await c.end();
  const recv = fork(path.join(__dirname, 'recv.js'), [], { env: { ...process.env, NODE_OPTIONS: '' } });
  const ask = (m) => new Promise((r) => { recv.once('message', r); recv.send(m); });
  const { port } = await new Promise((r) => recv.once('message', r));
  const cfg = path.join(os.tmpdir(), `quick-${process.pid}.yaml`);
  fs.writeFileSync(cfg, `capture: { slot: ${db}, publication: pgce_bench_pub, statusInterval: PT1S }\ntables: [ bench_rows ]\n${CONFIGS[id]}`);
  const args = prof ? ['--cpu-prof', `--cpu-prof-dir=${path.join(ROOT, '.tmp', 'ab-profiles')}`] : [];
  const child = spawn(process.execPath, [...args, path.join(ROOT, 'dist/src/cli/main.js'), 'run'], { env: { ...process.env, DATABASE_URL: url, PG_CLOUDEVENTS_CONFIG: cfg, K_SINK: `http://127.0.0.1:${port}/`, PORT: String(20000 + Math.floor(Math.random() * 20000)), LOG_LEVEL: 'warn', NODE_OPTIONS: process.env.QUICK_NODE_OPTIONS || '--max-old-space-size=128' }, stdio: ['ignore', 'inherit', 'inherit'] });
  const t0 = Date.now(); let cpu0 = null; let st;
  for (;;) { st = await ask('stats'); if (cpu0 === null && st.unique > 0) cpu0 = stat(child.pid); if (st.unique >= events) break; if (Date.now() - t0 > 180000) throw new Error('stalled ' + st.unique); await new Promise((r) => setTimeout(r, 50)); }
  const cpu = stat(child.pid) - cpu0; const secs = (st.last - st.first) / 1000;
  console.log(`${id} ${size}B: ${Math.round(st.unique / secs)} ev/s, ${(cpu / events * 1e5).toFixed(2)} CPU s/100k, peak RSS ${Math.round(hwm(child.pid))} MB`);
  child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)); recv.send('close');
  await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`); await admin.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, [db]).catch(() => {}); await admin.end();
})().catch((e) => { console.error(e); process.exit(1); });
