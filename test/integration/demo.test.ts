/**
 * `make run`'s demo (scripts/run-demo.sh) on the embedded database: PGlite in trigger mode, the
 * path a machine without any PostgreSQL server takes. PGCE_DEMO_DB=embedded forces it here, where
 * a server does run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { alive, REPO_ROOT } from './harness/process';
import { closedPort } from './harness/net';

const EVENT_DEADLINE_MS = 120_000;

describe('make run: the demo on the embedded database (PGlite, trigger mode)', function () {
  this.timeout(EVENT_DEADLINE_MS + 60_000);
  let demo: ChildProcess | undefined;
  let dir: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgce-demo-'));
  });

  after(() => {
    if (demo?.pid && demo.exitCode === null) process.kill(-demo.pid, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('prints the demo table\'s changes as CloudEvents, then Ctrl-C stops run and the embedded server', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, PGCE_DEMO_DB: 'embedded', PGCE_DEMO_DATA_DIR: path.join(dir, 'pglite'), PORT: String(await closedPort()), LOG_LEVEL: 'info' };
    for (const name of ['DATABASE_URL', 'K_SINK', 'CLOUDEVENTS_HANDLER', 'PG_CLOUDEVENTS_TABLES', 'PG_CLOUDEVENTS_CONFIG']) delete env[name];
    // Its own process group: Ctrl-C at a terminal reaches the whole group, as this signal does.
    demo = spawn(path.join(REPO_ROOT, 'scripts', 'run-demo.sh'), [], { cwd: REPO_ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    demo.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    demo.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => demo!.once('exit', (code) => resolve(code)));

    const events = (): Record<string, any>[] => stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    const deadline = Date.now() + EVENT_DEADLINE_MS;
    while (!events().some((e) => e.subject?.startsWith('DCE:public.demo_orders/')) && Date.now() < deadline && demo.exitCode === null) {
      await new Promise((r) => setTimeout(r, 200));
    }
    const first = events().find((e) => e.subject?.startsWith('DCE:public.demo_orders/'));
    expect(first, `no demo event within the deadline; stderr:\n${stderr.slice(-3000)}`).to.not.equal(undefined);
    expect(first).to.include({ specversion: '1.0', type: 'orm.post_save' });
    expect(first!.data.data).to.have.keys('id', 'customer', 'total', 'status', 'created_at');
    expect(stderr).to.include('embedded PostgreSQL (PGlite)').and.include('PGCE_DEMO_DB=embedded');

    const server = JSON.parse(fs.readFileSync(path.join(dir, 'pglite.json'), 'utf8').split('\n')[0]) as { url: string };
    expect(server.url).to.match(/^postgres(ql)?:\/\/[^@]*@?127\.0\.0\.1:\d+/);
    const serverPid = Number(fs.readFileSync(path.join(dir, 'pglite.pid'), 'utf8').trim());

    process.kill(-demo.pid!, 'SIGINT');
    const code = await exited;
    expect(stderr, `code ${code}: ${stderr.slice(-2500)}`).to.include('"msg":"stopped"');
    expect(code, stderr.slice(-2000)).to.equal(0);
    expect(alive(serverPid), 'the embedded server stopped with the demo').to.equal(false);
  });
});
