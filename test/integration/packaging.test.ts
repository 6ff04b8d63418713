/**
 * The published package works on its own: `npm pack` → `npm install` into an empty project →
 * `pg-cloudevents check` against a real database, `require('pg-cloudevents')`, and a TypeScript
 * handler module type-checked against the installed types. Catches runtime files left out of
 * package.json `files` (config/schema.json, SQL/Lua assets), a missing shebang, bin, main or types
 * entry, and runtime imports of dev-only packages.
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
/** What `require('pg-cloudevents')` exports at run time (README, "Writing a handler module"). */
const RUNTIME_EXPORTS = ['DeliveryError', 'ErrorCodes', 'FinalError', 'PgceError', 'RetriableError'];
/** The type-only exports a handler author uses; each must resolve from the installed types. */
const TYPE_EXPORTS = ['Handler', 'DefaultCloudEvent', 'DjangoCloudEvent', 'PgCloudEvent', 'DefaultEventData', 'DjangoEventData', 'SignalKwargs', 'Row'];
const TSC = path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

/**
 * A handler as the README shows it, plus uses of every documented type. Compiled with the
 * consumer's own strict settings against node_modules/pg-cloudevents, then loaded by `check`.
 */
const TYPED_HANDLER = `import { FinalError, RetriableError, ErrorCodes } from 'pg-cloudevents';
import type { Handler, DefaultCloudEvent, DjangoCloudEvent, PgCloudEvent, DefaultEventData, DjangoEventData, SignalKwargs, Row } from 'pg-cloudevents';

export const send: Handler = async (event: DefaultCloudEvent) => {
  const data: DefaultEventData | undefined = event.data;
  if (data === undefined) throw new FinalError('an event without data');
  const kwargs: SignalKwargs = data.signal_kwargs;
  const row: Row | null = data.data;
  const key: string = event.partitionkey + event.app + event.model + event.sequence;
  if (kwargs.created === true && row !== null && key.length === 0) {
    throw new RetriableError('try again', { cause: new Error('busy') });
  }
};

export const django: Handler<DjangoCloudEvent> = (event) => {
  const data: DjangoEventData | undefined = event.data;
  const id: string | undefined = data?.data?.id;
  return id ?? event.djangoapp + event.djangomodel + event.originid;
};

export const either = (event: PgCloudEvent): string => event.type;
export const code: string = ErrorCodes.SINK_FINAL;
export default send;
`;

/** Must not compile: proves the types are real, not \`any\`. */
const MISTYPED_HANDLER = `import type { Handler } from 'pg-cloudevents';
export const send: Handler = (event) => { const app: number = event.app; return app; };
`;
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
function requiredRuntimeFiles(pkg: { bin?: Record<string, string> | string; main?: string; types?: string; exports?: unknown }): string[] {
  const required = new Set<string>(['package.json']);
  const bins = typeof pkg.bin === 'string' ? [pkg.bin] : Object.values(pkg.bin ?? {});
  for (const b of bins) required.add(path.posix.normalize(b));
  // main, types and every `exports` target must exist in the repository and in the tarball.
  const entries = [pkg.main, pkg.types, ...exportTargets(pkg.exports)].filter((e): e is string => typeof e === 'string');
  for (const entry of entries) {
    expect(fs.existsSync(path.join(REPO_ROOT, entry)), `package.json names ${entry}, which the build does not produce`).to.equal(true);
    required.add(path.posix.normalize(entry));
  }
  for (const f of listFiles(path.join(REPO_ROOT, 'config'))) required.add(`config/${f}`);
  for (const f of listFiles(path.join(REPO_ROOT, 'src'))) {
    if (!f.endsWith('.ts')) required.add(`dist/src/${f}`);
  }
  return [...required].sort();
}

/** The file paths in package.json `exports` (strings at any depth of conditions). */
function exportTargets(exports: unknown): string[] {
  if (typeof exports === 'string') return [exports];
  if (typeof exports !== 'object' || exports === null) return [];
  return Object.values(exports).flatMap(exportTargets);
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

  it('packs every runtime file (config/, assets beside dist/src, bin, main, types, exports)', function () {
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

  it('`require(\'pg-cloudevents\')` from the installed package gives the documented exports, and FinalError is final', async function () {
    const script = `const m = require('pg-cloudevents');
      const f = new m.FinalError('no'), r = new m.RetriableError('later');
      console.log(JSON.stringify({ keys: Object.keys(m).sort(), final: [f.retriable, f.code, f instanceof m.PgceError], retriable: [r.retriable, r.code] }));`;
    const { stdout } = await run(process.execPath, ['-e', script], { cwd: appDir });
    const got = JSON.parse(stdout);
    expect(got.keys).to.deep.equal([...RUNTIME_EXPORTS].sort());
    expect(got.final).to.deep.equal([false, 'PGCE_ERR_SINK_FINAL', true]);
    expect(got.retriable).to.deep.equal([true, 'PGCE_ERR_SINK_RETRIABLE']);
    const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const start = readme.indexOf('### Writing a handler module');
    expect(start, 'README section "Writing a handler module"').to.be.greaterThan(-1);
    const end = readme.slice(start + 4).search(/\n##+ /);
    const section = end === -1 ? readme.slice(start) : readme.slice(start, start + 4 + end);
    for (const name of [...RUNTIME_EXPORTS, ...TYPE_EXPORTS]) expect(section, `README documents ${name}`).to.include(`\`${name}`);
  });

  it('a TypeScript handler type-checks against the installed types (tsc, strict, node16 and node10 resolution), and `check` loads it', async function () {
    fs.writeFileSync(path.join(appDir, 'handler.ts'), TYPED_HANDLER);
    fs.writeFileSync(path.join(appDir, 'mistyped.ts'), MISTYPED_HANDLER);
    // The README's example compiles as printed.
    const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const example = /### Writing a handler module[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme);
    expect(example, 'README: a ```ts example under "Writing a handler module"').to.not.equal(null);
    fs.writeFileSync(path.join(appDir, 'readme-handler.ts'), example![1]);
    // The consumer's own @types/node would be here; the repository's stands in for it.
    const tsconfig = (resolution: string, files: string[]) => JSON.stringify({
      compilerOptions: {
        strict: true, target: 'ES2022', module: resolution === 'node10' ? 'commonjs' : resolution,
        moduleResolution: resolution, outDir: '.', types: ['node'],
        typeRoots: [path.join(REPO_ROOT, 'node_modules', '@types')],
      },
      files,
    });
    const tsc = async (config: string) => {
      fs.writeFileSync(path.join(appDir, 'tsconfig.json'), config);
      try {
        await run(process.execPath, [TSC, '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: appDir });
        return { code: 0, output: '' };
      } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        return { code: e.code ?? 1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
      }
    };
    // One run per resolution: tsc still emits handler.js, and must report the mistyped file only.
    for (const resolution of ['node10', 'node16']) {
      const { code, output } = await tsc(tsconfig(resolution, ['handler.ts', 'readme-handler.ts', 'mistyped.ts']));
      expect(code, `${resolution}: the mistyped handler must not compile`).to.not.equal(0);
      const errors = output.split('\n').filter((l) => /error TS/.test(l));
      expect(errors, `${resolution}: tsc reports the mistyped handler and nothing else`).to.have.length(1);
      expect(errors[0]).to.match(/^mistyped\.ts\(2,.*TS2322: Type 'string' is not assignable to type 'number'/);
    }
    const cli = spawnCli(['check'], { ...isolated(), PG_CLOUDEVENTS_TABLES: 'public.items', CLOUDEVENTS_HANDLER: 'handler.js#send' }, { command: bin, cwd: appDir });
    const { code } = await cli.exit();
    expect(code, `check with the compiled handler:\n${cli.stdout()}${cli.stderr()}`).to.equal(0);
    expect(cli.stdout()).to.match(/ok {3}sink .*handler\.js#send/);
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
