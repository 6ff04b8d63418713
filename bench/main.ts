/**
 * `make bench` / `make bench-smoke`:
 *
 *   node dist/bench/main.js [--smoke] [--receiver child|inproc] [--only id,id] [--profile <scenario>] [--no-write]
 *
 * Full mode writes bench/results/<date>.json and rewrites the generated part of BENCHMARKS.md;
 * smoke mode (a few thousand events per scenario, under a minute) writes nothing unless --write.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from '../test/integration/harness/process';
import { updateBenchmarksMd } from './report';
import { runBench, type BenchOptions } from './run';

function parseArgs(argv: string[]): BenchOptions & { write: boolean } {
  const opts: BenchOptions & { write: boolean } = { smoke: false, receiver: 'child', write: true, log: (l) => process.stdout.write(`${l}\n`) };
  let writeGiven: boolean | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--smoke') opts.smoke = true;
    else if (a === '--receiver') opts.receiver = argv[++i] as BenchOptions['receiver'];
    else if (a === '--only') opts.only = argv[++i].split(',');
    else if (a === '--profile') opts.profile = { scenario: argv[++i], dir: path.join(REPO_ROOT, '.tmp', 'bench-profiles') };
    else if (a === '--no-write') writeGiven = false;
    else if (a === '--write') writeGiven = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (opts.receiver !== 'child' && opts.receiver !== 'inproc') throw new Error('--receiver is child or inproc');
  opts.write = writeGiven ?? !opts.smoke;
  return opts;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const results = await runBench(opts);
  const command = `node dist/bench/main.js ${process.argv.slice(2).join(' ')}`.trim();
  process.stdout.write(`done in ${results.seconds} s; ${results.failures.length} failure(s), ${results.pending.length} pending scenario(s)\n`);
  if (opts.write) {
    const dir = path.join(REPO_ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${results.date.slice(0, 10)}${results.mode === 'smoke' ? '-smoke' : ''}.json`);
    writeFileSync(file, `${JSON.stringify({ command, ...results }, null, 2)}\n`);
    process.stdout.write(`wrote ${path.relative(REPO_ROOT, file)}\n`);
    if (results.mode === 'full' && !opts.only) {
      updateBenchmarksMd(path.join(REPO_ROOT, 'BENCHMARKS.md'), results, command, path.relative(REPO_ROOT, file));
      process.stdout.write('updated BENCHMARKS.md\n');
    }
  }
  if (opts.profile) process.stdout.write(`CPU profile(s) in ${path.relative(REPO_ROOT, opts.profile.dir)}\n`);
  process.exitCode = results.failures.length ? 1 : 0;
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
