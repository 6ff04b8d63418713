import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../../src/cli/main';
import { configureLogger } from '../../../src/logger';

/** Runs main with the parser's output captured; only arguments that never reach a database. */
async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

describe('cli/main: the command line (commander)', () => {
  // A command that gets as far as its action switches the process's logger to its style.
  after(() => configureLogger({}));

  it('--version prints the version from package.json, exit 0', async () => {
    const { version } = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', '..', 'package.json'), 'utf8'));
    for (const flag of ['--version', '-V']) {
      const r = await cli(flag);
      expect(r).to.deep.equal({ code: 0, out: `${version}\n`, err: '' });
    }
  });

  it('--help lists every command; no command at all is bad usage (help on stderr, exit 2)', async () => {
    const help = await cli('--help');
    expect(help.code).to.equal(0);
    for (const name of ['run', 'setup', 'teardown', 'status', 'check', 'tail', 'backfill', 'dead-letters', 'help']) {
      expect(help.out).to.match(new RegExp(`^  ${name}\\b`, 'm'));
    }
    expect(help.out).to.include('Exit codes: 0 done, 1 a runtime failure, 2 bad usage or configuration.');
    const none = await cli();
    expect(none.code).to.equal(2);
    expect(none.out).to.equal('');
    expect(none.err).to.include('Usage: pg-cloudevents [options] [command]');
  });

  it('every command has --help and `help <command>`, listing only its own options', async () => {
    const own: Record<string, string[]> = {
      run: [],
      setup: ['--dry-run', '--recreate-slot'],
      teardown: ['--dry-run'],
      status: ['--json'],
      check: [],
      tail: [],
      'dead-letters list': ['--json'],
      'dead-letters replay': ['--id <id>', '--all', '--retry <n>', '--json'],
      'dead-letters purge': ['--id <id>', '--before <time>'],
      backfill: ['--table <table>', '--where <condition>', '--chunk <rows>', '--rate <rate>', '--detach', '--json'],
      'backfill list': ['--limit <n>', '--json'],
      'backfill cancel': ['--json'],
    };
    const every = ['--dry-run', '--recreate-slot', '--json', '--id', '--all', '--retry', '--before', '--table', '--where', '--chunk', '--rate', '--detach', '--limit'];
    for (const [command, options] of Object.entries(own)) {
      const words = command.split(' ');
      const viaFlag = await cli(...words, '--help');
      const viaHelp = await cli(...words.slice(0, -1), 'help', words[words.length - 1]);
      for (const r of [viaFlag, viaHelp]) {
        expect(r.code, command).to.equal(0);
        expect(r.out, command).to.include(`Usage: pg-cloudevents ${command} [options]`);
        // Common to all: the configuration file option.
        expect(r.out, command).to.include('-c, --config <file>');
        for (const option of options) expect(r.out, `${command} ${option}`).to.include(`  ${option}`);
        for (const other of every.filter((o) => !options.some((mine) => mine.startsWith(o)))) {
          expect(r.out, `${command} must not offer ${other}`).not.to.match(new RegExp(`^\\s+${other}\\b`, 'm'));
        }
      }
    }
  });

  describe('bad usage: exit 2, the problem named with the command, and a hint to --help', () => {
    const cases: Array<[argv: string[], message: string, hint: string]> = [
      [['frobnicate'], "pg-cloudevents: unknown command 'frobnicate'", 'see: pg-cloudevents --help'],
      [['setup', '--retry', '3'], "pg-cloudevents setup: unknown option '--retry'", 'see: pg-cloudevents setup --help'],
      [['check', '--recreate-slot'], "pg-cloudevents check: unknown option '--recreate-slot'", 'see: pg-cloudevents check --help'],
      [['status', 'extra'], 'pg-cloudevents status: too many arguments', 'see: pg-cloudevents status --help'],
      [['-c'], "pg-cloudevents: option '-c, --config <file>' argument missing", 'see: pg-cloudevents --help'],
      [['dead-letters', 'frobnicate'], "pg-cloudevents dead-letters: unknown command 'frobnicate'", 'see: pg-cloudevents dead-letters --help'],
      [['dead-letters', 'list', '--all'], "pg-cloudevents dead-letters list: unknown option '--all'", 'see: pg-cloudevents dead-letters list --help'],
      [['dead-letters', 'replay'], 'pg-cloudevents dead-letters replay: replay needs --id <id> or --all', 'see: pg-cloudevents dead-letters replay --help'],
      [['dead-letters', 'replay', '--id', '1', '--all'], "option '--all' cannot be used with option '--id <id>'", 'see: pg-cloudevents dead-letters replay --help'],
      [['dead-letters', 'replay', '--id', 'x'], "option '--id <id>' argument 'x' is invalid. must be a row id", 'see: pg-cloudevents dead-letters replay --help'],
      [['dead-letters', 'replay', '--all', '--retry', '101'], "argument '101' is invalid. must be a whole number from 0 to 100", 'see: pg-cloudevents dead-letters replay --help'],
      [['dead-letters', 'replay', '--all', '--retry'], "option '--retry <n>' argument missing", 'see: pg-cloudevents dead-letters replay --help'],
      [['dead-letters', 'purge', '--before', 'yesterday'], "argument 'yesterday' is invalid. --before: \"yesterday\" is neither", 'see: pg-cloudevents dead-letters purge --help'],
      [['backfill'], 'pg-cloudevents backfill: backfill needs --table <schema.table> (or a sub-command: list, show, cancel)', 'see: pg-cloudevents backfill --help'],
      [['backfill', '--table', 'orders', '--chunk', '0'], "option '--chunk <rows>' argument '0' is invalid. --chunk: must be a whole number of rows from 1 to 100000", 'see: pg-cloudevents backfill --help'],
      [['backfill', '--table', 'orders', '--rate', '100/m'], "argument '100/m' is invalid. --rate: 100/m is 1.67 rows per second", 'see: pg-cloudevents backfill --help'],
      [['backfill', 'cancel'], "pg-cloudevents backfill cancel: missing required argument 'id'", 'see: pg-cloudevents backfill cancel --help'],
      [['backfill', 'list', '--table', 'x'], 'pg-cloudevents backfill list: --table goes with a request (backfill --table T ...), not here', 'see: pg-cloudevents backfill list --help'],
      [['dead-letters', 'purge', '--id', '1', '--before', 'P7D'], "option '--before <time>' cannot be used with option '--id <id>'", 'see: pg-cloudevents dead-letters purge --help'],
    ];
    for (const [argv, message, hint] of cases) {
      it(argv.join(' '), async () => {
        const r = await cli(...argv);
        expect(r.code).to.equal(2);
        expect(r.out).to.equal('');
        expect(r.err).to.include(message);
        expect(r.err.trimEnd().split('\n').pop()).to.equal(hint);
      });
    }

    it('a missing sub-command shows that command\'s help on stderr', async () => {
      const r = await cli('dead-letters');
      expect(r.code).to.equal(2);
      expect(r.err).to.include('Usage: pg-cloudevents dead-letters [options] [command]');
      for (const sub of ['list', 'replay', 'purge']) expect(r.err).to.match(new RegExp(`^  ${sub}\\b`, 'm'));
    });
  });
});
