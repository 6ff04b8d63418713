import { expect } from 'chai';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, waitFor } from './harness/postgres';
import { spawnCli } from './harness/process';
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
