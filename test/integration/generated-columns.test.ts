import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from './harness/postgres';
import { spawnCli } from './harness/process';
import { freePort, writeTempFile } from './support';

/**
 * Generated columns never reach events (pgoutput does not publish them before PostgreSQL 18, nor
 * without publish_generated_columns from 18 on): check and setup say so, naming table and
 * columns, instead of letting the columns vanish silently (README, "The event").
 */
describe('generated columns (real PostgreSQL): check and setup warn, naming table and columns', function () {
  this.timeout(60_000);

  const suffix = randomBytes(3).toString('hex');
  const table = `priced_${suffix}`;
  const slot = `pgce_gen_${suffix}`;
  let db: TestDatabase;
  let env: Record<string, string>;

  before(async () => {
    db = await createTestDatabase(`pgce_gen_${suffix}`);
    await db.query(`CREATE TABLE public.${table} (
      id int PRIMARY KEY, price numeric NOT NULL, qty int NOT NULL,
      total numeric GENERATED ALWAYS AS (price * qty) STORED,
      label text GENERATED ALWAYS AS ('#' || id) STORED)`);
    await db.query('CREATE TABLE public.plain (id int PRIMARY KEY)');
    env = {
      DATABASE_URL: db.url,
      CLOUDEVENTS_HANDLER: 'console',
      LOG_LEVEL: 'info',
      PG_CLOUDEVENTS_TABLES: `public.${table},public.plain`,
      PG_CLOUDEVENTS_CONFIG: writeTempFile('gen.yaml', `capture: { slot: ${slot}, publication: ${slot}, statusInterval: PT0.2S }\n`),
    };
  });

  after(async () => {
    await db?.drop();
  });

  const warning = new RegExp(`public\\.${table} has generated columns \\(total, label\\): logical replication does not publish`);

  it('check prints a warning naming the table and its generated columns, and none for a table without', async () => {
    const cli = spawnCli(['check'], env);
    const { code } = await cli.exit();
    expect(code, cli.stdout() + cli.stderr()).to.equal(0);
    expect(cli.stderr()).to.match(new RegExp(`^warning: ${warning.source}`, 'm'));
    expect(cli.stdout() + cli.stderr()).to.not.match(/public\.plain has generated/);
  });

  it('setup warns the same way, and the events of that table indeed lack the generated columns', async () => {
    const setup = spawnCli(['setup'], env);
    const { code } = await setup.exit();
    expect(code, setup.stdout() + setup.stderr()).to.equal(0);
    expect(setup.stderr()).to.match(warning);

    // What the warning promises: the columns are absent from the event's row, the others present.
    const run = spawnCli(['run'], { ...env, PORT: String(await freePort()) });
    await run.waitForLine(/capturing/, 30_000);
    await db.query(`INSERT INTO public.${table} (id, price, qty) VALUES (1, 2.5, 4)`);
    const line = await run.waitForLine(new RegExp(`"subject":"DCE:public\\.${table}/1"`), 20_000);
    const event = JSON.parse(line);
    expect(event.data.data).to.deep.equal({ id: 1, price: '2.5', qty: 4 });
    run.kill('SIGTERM');
    expect((await run.exit()).code).to.equal(0);
  });
});
