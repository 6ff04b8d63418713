import { expect } from 'chai';
import { createTestDatabase } from './harness/postgres';
import { spawnCli } from './harness/process';
import { freePort, writeTempFile } from './support';

type Db = Awaited<ReturnType<typeof createTestDatabase>>;

const NAME = 'pgce_h10_sink_required';

async function cli(args: string[], env: Record<string, string>) {
  const p = spawnCli(args, { LOG_LEVEL: 'warn', ...env });
  const { code } = await p.exit();
  return { code, stdout: p.stdout(), stderr: p.stderr(), all: p.stdout() + p.stderr() };
}

/**
 * No sink is not a console: a pod that starts before its SinkBinding injects K_SINK must not
 * acknowledge the changes of that window into stdout. Commands that deliver refuse to start;
 * commands that never deliver do not need a sink.
 */
describe('without a sink: run, check and dead-letters replay refuse (exit 2); the others work (real PostgreSQL)', function () {
  this.timeout(60_000);
  let db: Db;
  let env: Record<string, string>;

  before(async () => {
    db = await createTestDatabase(NAME);
    await db.query('CREATE TABLE items (id int PRIMARY KEY, name text)');
    await db.query('ALTER TABLE items REPLICA IDENTITY FULL');
    // No K_SINK, no CLOUDEVENTS_HANDLER, no sink.url, no handler.
    env = {
      DATABASE_URL: db.url,
      PG_CLOUDEVENTS_TABLES: 'public.items',
      PG_CLOUDEVENTS_CONFIG: writeTempFile('c.yaml', `capture: { slot: ${NAME}, publication: ${NAME} }\n`),
    };
  });
  after(async () => db?.drop());

  const refusals: [string, string[], Record<string, string>][] = [
    ['run', ['run'], {}],
    ['check', ['check'], {}],
    ['dead-letters replay --all', ['dead-letters', 'replay', '--all'], {}],
    ['run with CLOUDEVENTS_HANDLER=http chosen but no K_SINK', ['run'], { CLOUDEVENTS_HANDLER: 'http' }],
  ];
  for (const [what, args, extra] of refusals) {
    it(`${what}: exit 2 naming K_SINK, sink.url and CLOUDEVENTS_HANDLER, before touching the database`, async () => {
      const r = await cli(args, { ...env, ...extra });
      expect(r.code, r.all).to.equal(2);
      for (const name of ['K_SINK', 'sink.url', 'CLOUDEVENTS_HANDLER', 'console']) expect(r.stderr, r.all).to.include(name);
      expect(r.stdout, 'nothing printed as if it were an event').to.equal('');
      const slot = await db.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [NAME]);
      expect(slot.rowCount, 'no slot created').to.equal(0);
    });
  }

  it('setup, status, dead-letters list and purge, tail and teardown need no sink', async () => {
    for (const args of [['setup'], ['status'], ['dead-letters', 'list'], ['dead-letters', 'purge']]) {
      const r = await cli(args, env);
      expect(r.code, `${args.join(' ')}: ${r.all}`).to.equal(0);
    }
    const tail = spawnCli(['tail'], { ...env, LOG_LEVEL: 'warn' });
    await tail.waitForLine(/tailing/, 20_000);
    await db.query(`INSERT INTO items VALUES (1, 'tailed')`);
    await tail.waitForLine(/"subject":"DCE:public\.items\/1"/, 20_000);
    tail.kill('SIGINT');
    expect((await tail.exit()).code).to.equal(0);
    const down = await cli(['teardown'], env);
    expect(down.code, down.all).to.equal(0);
  });

  it('run with CLOUDEVENTS_HANDLER=console chosen prints the events', async () => {
    const run = spawnCli(['run'], { ...env, CLOUDEVENTS_HANDLER: 'console', LOG_LEVEL: 'info', PORT: String(await freePort()) });
    try {
      await run.waitForLine(/"msg":"capturing"/, 30_000);
      await db.query(`INSERT INTO items VALUES (2, 'printed')`);
      const line = await run.waitForLine(/"subject":"DCE:public\.items\/2"/, 20_000);
      expect(run.stdout()).to.include(line);
      run.kill('SIGTERM');
      expect((await run.exit()).code).to.equal(0);
    } finally {
      run.kill('SIGKILL');
    }
    expect((await cli(['teardown'], env)).code).to.equal(0);
  });
});
