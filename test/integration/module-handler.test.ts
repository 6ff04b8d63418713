import { expect } from 'chai';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, waitFor } from './harness/postgres';
import { REPO_ROOT, spawnCli } from './harness/process';
import { FAST_DELIVERY_YAML, freePort, writeTempFile } from './support';

/**
 * CLOUDEVENTS_HANDLER=path/to/file.js#export: the user's function gets each CloudEvent; a throw is
 * a failed delivery and is retried.
 */
describe('a user-module handler (real PostgreSQL, the handler runs in the source process)', function () {
  this.timeout(60_000);

  it('receives every event, and one that throws is retried until it succeeds', async () => {
    const db = await createTestDatabase('pgce_module');
    await db.query('CREATE TABLE t (id int PRIMARY KEY)');
    const dir = mkdtempSync(join(tmpdir(), 'pgce-module-'));
    const out = join(dir, 'events.jsonl');
    // Fails the first two attempts for row 2, then accepts it: the engine must retry.
    writeFileSync(join(dir, 'handler.js'), `
      const fs = require('node:fs');
      let failures = 0;
      exports.send = async (event) => {
        if (event.subject === 'DCE:public.t/2' && failures < 2) { failures++; throw new Error('not yet ' + failures); }
        fs.appendFileSync(${JSON.stringify(out)}, JSON.stringify({ id: event.id, subject: event.subject, valid: event.validate() }) + '\\n');
      };`);
    const config = writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: pgce_module, publication: pgce_module, statusInterval: PT0.2S }
tables: [ t ]
`);
    const cli = spawnCli(['run'], {
      DATABASE_URL: db.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(await freePort()),
      CLOUDEVENTS_HANDLER: 'handler.js#send',
    }, { cwd: dir });
    await cli.waitForLine(/capturing/, 30_000);
    for (let id = 1; id <= 3; id++) await db.query('INSERT INTO t VALUES ($1)', [id]);
    const lines = () => (existsSync(out) ? readFileSync(out, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
    await waitFor(async () => lines().length >= 3, { timeoutMs: 20_000, intervalMs: 100, what: 'three handled events' });
    expect(lines().map((l) => l.subject).sort()).to.deep.equal(['DCE:public.t/1', 'DCE:public.t/2', 'DCE:public.t/3']);
    expect(lines().every((l) => l.valid)).to.equal(true);
    expect(cli.stderr()).to.match(/not yet 1/);
    expect(cli.stderr()).to.match(/not yet 2/);
    cli.kill('SIGTERM');
    expect((await cli.exit()).code).to.equal(0);
    await db.drop();
  });

  it('a handler that requires the package: FinalError (or any retriable: false) is dead-lettered at once, RetriableError is retried', async () => {
    const db = await createTestDatabase('pgce_module_errors');
    await db.query('CREATE TABLE t (id int PRIMARY KEY)');
    const dir = mkdtempSync(join(tmpdir(), 'pgce-module-'));
    // `require('pg-cloudevents')` resolves as in a project that installed the package: package.json main.
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(REPO_ROOT, join(dir, 'node_modules', 'pg-cloudevents'), 'dir');
    const out = join(dir, 'events.jsonl');
    // Row 2: FinalError. Row 3: RetriableError twice, then accepted. Row 4: a plain error with
    // `retriable: false`, as a FinalError from another copy of the package looks to this one.
    writeFileSync(join(dir, 'handler.js'), `
      const fs = require('node:fs');
      const { FinalError, RetriableError } = require('pg-cloudevents');
      let retries = 0;
      exports.send = async (event) => {
        const id = event.data.data.id;
        if (id === 2) throw new FinalError('row 2 is refused for good');
        if (id === 3 && retries < 2) { retries++; throw new RetriableError('row 3 not yet ' + retries); }
        if (id === 4) throw Object.assign(new Error('row 4 is refused by a foreign copy'), { retriable: false });
        fs.appendFileSync(${JSON.stringify(out)}, JSON.stringify({ subject: event.subject }) + '\\n');
      };`);
    const config = writeTempFile('c.yaml', `${FAST_DELIVERY_YAML}
capture: { slot: pgce_module_errors, publication: pgce_module_errors, statusInterval: PT0.2S }
tables: [ t ]
`);
    const cli = spawnCli(['run'], {
      DATABASE_URL: db.url, PG_CLOUDEVENTS_CONFIG: config, PORT: String(await freePort()),
      CLOUDEVENTS_HANDLER: 'handler.js#send',
    }, { cwd: dir });
    await cli.waitForLine(/capturing/, 30_000);
    for (let id = 1; id <= 5; id++) await db.query('INSERT INTO t VALUES ($1)', [id]);
    const delivered = () => (existsSync(out) ? readFileSync(out, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l).subject).sort() : []);
    const deadLetters = async () =>
      (await db.query(`SELECT subject, attempts, error FROM pgcloudevents.dead_letters ORDER BY subject`).catch(() => ({ rows: [] }))).rows;
    await waitFor(async () => delivered().length >= 3 && (await deadLetters()).length >= 2, {
      timeoutMs: 20_000, intervalMs: 100, what: 'three delivered events and two dead letters',
    });
    expect(delivered()).to.deep.equal(['DCE:public.t/1', 'DCE:public.t/3', 'DCE:public.t/5']);
    // Retries are unbounded here (no delivery.retry): a dead letter means the error was final, after one attempt.
    const dead = await deadLetters();
    expect(dead.map((r) => [r.subject, r.attempts])).to.deep.equal([['DCE:public.t/2', 1], ['DCE:public.t/4', 1]]);
    expect(dead[0].error).to.match(/row 2 is refused for good/);
    expect(dead[1].error).to.match(/row 4 is refused by a foreign copy/);
    expect(cli.stderr()).to.match(/row 3 not yet 1/);
    expect(cli.stderr()).to.match(/row 3 not yet 2/);
    cli.kill('SIGTERM');
    expect((await cli.exit()).code).to.equal(0);
    await db.drop();
  });

  it('a missing file or export stops check and run with a message naming it', async () => {
    const db = await createTestDatabase('pgce_module_bad');
    await db.query('CREATE TABLE t (id int PRIMARY KEY)');
    const dir = mkdtempSync(join(tmpdir(), 'pgce-module-'));
    writeFileSync(join(dir, 'handler.js'), 'exports.other = async () => {};');
    const config = writeTempFile('c.yaml', 'capture: { slot: pgce_module_bad, publication: pgce_module_bad }\ntables: [ t ]\n');
    const env = { DATABASE_URL: db.url, PG_CLOUDEVENTS_CONFIG: config, LOG_LEVEL: 'warn' };
    for (const command of ['check', 'run']) {
      const noExport = spawnCli([command], { ...env, CLOUDEVENTS_HANDLER: 'handler.js#send' }, { cwd: dir });
      expect((await noExport.exit()).code).to.equal(1);
      expect(noExport.stderr()).to.match(/no function export "send" \(it exports other\)/);
      const noFile = spawnCli([command], { ...env, CLOUDEVENTS_HANDLER: 'missing.js#send' }, { cwd: dir });
      expect((await noFile.exit()).code).to.equal(1);
      expect(noFile.stderr()).to.match(/CLOUDEVENTS_HANDLER missing\.js#send: no file .*missing\.js/);
    }
    await db.drop();
  });
});
