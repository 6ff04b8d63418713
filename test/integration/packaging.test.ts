/**
 * The published package works on its own: `npm pack` → `npm install` into an empty project →
 * `pg-cloudevents check` against a real database. Catches runtime files left out of package.json
 * `files` (config/schema.json, SQL/Lua assets), a missing shebang or bin entry, and runtime imports
 * of dev-only packages.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { createTestDatabase, type TestDatabase } from './harness/postgres';
import { REPO_ROOT, spawnCli } from './harness/process';
import { writeTempFile } from './support';

const run = promisify(execFile);

const DB_NAME = 'pgce_d_pack';
const INSTALL_TIMEOUT_MS = 300_000;

/** npm's own settings leak into children when the tests run under `npm test`/`npx`: drop them. */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
}

async function npm(args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await run('npm', args, { cwd, env: npmEnv(), maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`npm ${args.join(' ')} failed in ${cwd}: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

/** Files below `dir`, relative to it, with '/' separators. */
function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[])
    .filter((d) => d.isFile())
    .map((d) => path.relative(dir, path.join(d.parentPath, d.name)).split(path.sep).join('/'));
}

/**
 * What the installed program needs at run time, derived from the repository rather than listed
 * by hand: package.json, the bin and main entries, every file in config/, and every non-TypeScript
 * file under src/ (SQL, Lua, JSON), which the code loads from beside its compiled .js in dist/src.
 */
function requiredRuntimeFiles(pkg: { bin?: Record<string, string> | string; main?: string }): string[] {
  const required = new Set<string>(['package.json']);
  const bins = typeof pkg.bin === 'string' ? [pkg.bin] : Object.values(pkg.bin ?? {});
  for (const b of bins) required.add(path.posix.normalize(b));
  if (pkg.main && fs.existsSync(path.join(REPO_ROOT, pkg.main))) required.add(path.posix.normalize(pkg.main));
  for (const f of listFiles(path.join(REPO_ROOT, 'config'))) required.add(`config/${f}`);
  for (const f of listFiles(path.join(REPO_ROOT, 'src'))) {
    if (!f.endsWith('.ts')) required.add(`dist/src/${f}`);
  }
  return [...required].sort();
}

describe('packaging: the npm package installs and runs on its own', function () {
  this.timeout(INSTALL_TIMEOUT_MS);

  let db: TestDatabase;
  let workDir: string;
  let packedFiles: string[];
  let appDir: string;
  let bin: string;
  let failed = false;

  before(async function () {
    this.timeout(INSTALL_TIMEOUT_MS);
    expect(fs.existsSync(path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js')), 'dist/src/cli/main.js: run the build first').to.equal(true);

    db = await createTestDatabase(DB_NAME);
    await db.query('CREATE TABLE public.items (id int PRIMARY KEY)');

    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgce-pack-'));
    const packDir = path.join(workDir, 'pack');
    appDir = path.join(workDir, 'app');
    fs.mkdirSync(packDir);
    fs.mkdirSync(appDir);

    const packJson = await npm(['pack', '--json', '--pack-destination', packDir], REPO_ROOT);
    const [packed] = JSON.parse(packJson.slice(packJson.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
    packedFiles = packed.files.map((f) => f.path);
    const tarball = path.join(packDir, path.basename(packed.filename));

    fs.writeFileSync(
      path.join(appDir, 'package.json'),
      JSON.stringify({ name: 'pgce-pack-consumer', version: '0.0.0', private: true }, null, 2),
    );
    await npm(['install', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', tarball], appDir);
    bin = path.join(appDir, 'node_modules', '.bin', 'pg-cloudevents');
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });

  after(async function () {
    if (failed) {
      // Kept for a look: the tarball, the installed app and the database.
      if (workDir) process.stderr.write(`packaging test failed; kept ${workDir} and database ${DB_NAME}\n`);
      await db?.close();
      return;
    }
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
    await db?.drop();
  });

  it('packs every runtime file (config/, assets beside dist/src, bin, main)', function () {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
    const missing = requiredRuntimeFiles(pkg).filter((f) => !packedFiles.includes(f));
    expect(missing, `npm pack left out runtime files (package.json "files", or the build does not copy them into dist/src)`).to.deep.equal([]);
    expect(packedFiles.some((f) => f.startsWith('dist/test/')), 'tests must not be shipped').to.equal(false);
  });

  it('the installed `pg-cloudevents --version` prints the package\'s version', async function () {
    const { version } = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
    const cli = spawnCli(['--version'], {}, { command: bin, cwd: appDir });
    expect((await cli.exit()).code, cli.stderr()).to.equal(0);
    expect(cli.stdout()).to.equal(`${version}\n`);
  });

  // Slot names are cluster-wide: this test's own, so a slot left by `make run` cannot interfere.
  const isolated = () => ({
    DATABASE_URL: db.url,
    CLOUDEVENTS_HANDLER: 'console',
    LOG_LEVEL: 'info',
    PG_CLOUDEVENTS_CONFIG: writeTempFile('pack.yaml', 'capture: { slot: pgce_d_pack, publication: pgce_d_pack }\n'),
  });

  it('`pg-cloudevents check` passes against a real database and names the table', async function () {
    const cli = spawnCli(
      ['check'],
      { ...isolated(), PG_CLOUDEVENTS_TABLES: 'public.items' },
      { command: bin, cwd: appDir },
    );
    const { code } = await cli.exit();
    const output = cli.stdout() + cli.stderr();
    expect(code, `check failed:\n${output}`).to.equal(0);
    expect(output).to.match(/public\.items\b/);
  });

  it('`pg-cloudevents check` fails naming a table that does not exist', async function () {
    const cli = spawnCli(
      ['check'],
      { ...isolated(), PG_CLOUDEVENTS_TABLES: 'public.no_such_items' },
      { command: bin, cwd: appDir },
    );
    const { code } = await cli.exit();
    const output = cli.stdout() + cli.stderr();
    expect(code, `check should fail for a missing table:\n${output}`).to.be.a('number').and.not.equal(0);
    expect(output).to.match(/no_such_items/);
  });
});
