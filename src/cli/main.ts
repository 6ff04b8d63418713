#!/usr/bin/env node
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command as Parser, CommanderError, InvalidArgumentError, Option } from 'commander';
import { findPackageRoot } from '../config/schema';
import { ConfigError, PgceError, errorMessage } from '../errors';
import { configureLogger, scrubSecrets } from '../logger';
import type { Command, CommandOptions, OptionSpec } from './command';
import { backfillCommand } from './backfill';
import { checkCommand } from './check';
import { logFormat } from './context';
import { deadLettersCommand } from './dead-letters';
import { reporterFor } from './output';
import { runCommand } from './run';
import { setupCommand } from './setup';
import { statusCommand } from './status';
import { tailCommand } from './tail';
import { teardownCommand } from './teardown';
import { triggersCommand } from './triggers';
import { workflowsCommand } from './workflows';

/** Adding a command: one file in src/cli exporting a Command, one line here. */
const COMMANDS: Record<string, Command> = {
  run: runCommand,
  setup: setupCommand,
  teardown: teardownCommand,
  status: statusCommand,
  check: checkCommand,
  tail: tailCommand,
  backfill: backfillCommand,
  'dead-letters': deadLettersCommand,
  triggers: triggersCommand,
  workflows: workflowsCommand,
};

const PROGRAM = 'pg-cloudevents';

const HELP_AFTER = `
The environment (DATABASE_URL, K_SINK, PG_CLOUDEVENTS_TABLES, ...) is described in the README.
Exit codes: 0 done, 1 a runtime failure, 2 bad usage or configuration.`;

/** Where the parser writes help, the version and usage errors (tests pass their own). */
export interface ParserOutput {
  out(text: string): void;
  err(text: string): void;
}

const PROCESS_OUTPUT: ParserOutput = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/**
 * Parses `argv` (without node and the script) and runs the command. Never exits the process
 * itself, so tests can call it. Exit codes: 0 done, 1 a runtime failure, 2 bad usage or
 * configuration.
 */
export async function main(argv: string[], output: ParserOutput = PROCESS_OUTPUT): Promise<number> {
  const result = { code: 0 };
  const program = parser(PROGRAM, output)
    .description('Every committed PostgreSQL row change as a CloudEvent, delivered to a Knative sink or a broker.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('-c, --config <file>', 'configuration file (YAML or JSON); default: $PG_CLOUDEVENTS_CONFIG')
    .addHelpText('after', HELP_AFTER);
  for (const [name, command] of Object.entries(COMMANDS)) program.addCommand(define(PROGRAM, name, command, output, result));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return result.code;
  } catch (err) {
    // --help, `help`, --version end with commander's exit code 0; whatever else it refused is
    // bad usage, already explained on stderr (a missing sub-command shows the help there).
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
}

/** A parser with the settings every level shares (addCommand does not copy them). */
function parser(commandPath: string, output: ParserOutput): Parser {
  const name = commandPath.split(' ').pop() as string;
  return new Parser(name)
    .exitOverride()
    .configureOutput({
      writeOut: output.out,
      writeErr: output.err,
      // `pg-cloudevents setup: unknown option '--retry'`, the prefix runtime errors have too.
      outputError: (text, write) => write(`${commandPath}: ${text.replace(/^error: /, '')}`),
    })
    .showHelpAfterError(`see: ${commandPath} --help`)
    .configureHelp({
      showGlobalOptions: true,
      // The program's options (--config) apply everywhere; a command that also runs by itself
      // (`backfill --table T`) keeps its own options away from its sub-commands' help.
      visibleGlobalOptions: (cmd) => {
        let root = cmd;
        while (root.parent) root = root.parent;
        return root === cmd ? [] : root.options.filter((o) => !o.hidden);
      },
    })
    .allowExcessArguments(false);
}

function define(parentPath: string, name: string, command: Command, output: ParserOutput, result: { code: number }): Parser {
  const commandPath = `${parentPath} ${name}`;
  const sub = parser(commandPath, output).description(command.summary);
  for (const spec of command.options ?? []) sub.addOption(option(spec));
  if (command.argument) sub.argument(`<${command.argument.name}>`, command.argument.description);
  for (const [childName, child] of Object.entries(command.commands ?? {})) {
    sub.addCommand(define(commandPath, childName, child, output, result));
  }
  // A command with sub-commands may also run by itself (`backfill --table T` beside `backfill list`);
  // commander drops `help <sub-command>` for such a command unless asked to keep it.
  if (command.run && command.commands) sub.helpCommand(true);
  if (command.run) {
    sub.action(async (...args: unknown[]) => {
      // commander passes the positional argument (when declared) first, then the values, then itself.
      const self = args[args.length - 1] as Parser;
      const name = command.argument ? (args[0] as string) : undefined;
      result.code = await execute(commandPath, command, self, name);
    });
  }
  return sub;
}

function option(spec: OptionSpec): Option {
  const opt = new Option(spec.flags, spec.description);
  if (spec.conflicts) opt.conflicts(spec.conflicts);
  const parse = spec.parse;
  if (parse) {
    opt.argParser((text: string, previous: unknown) => {
      try {
        return parse(text, previous);
      } catch (err) {
        throw new InvalidArgumentError(errorMessage(err));
      }
    });
  }
  return opt;
}

async function execute(commandPath: string, command: Command, self: Parser, name?: string): Promise<number> {
  const values = self.optsWithGlobals() as Record<string, unknown>;
  const output = command.output ?? 'human';
  // Before the configuration is read, so that anything logged while reading it has the style.
  configureLogger({ format: logFormat(output) });
  const options = {
    ...values,
    configPath: values.config as string | undefined,
    dryRun: values.dryRun === true,
    json: values.json === true,
    ...(name !== undefined && { name }),
    env: process.env,
    output,
    report: reporterFor(output, commandPath.split(' ').slice(1).join('.')),
    usage: (problem: string): never => self.error(`error: ${problem}`, { exitCode: 2, code: 'pgce.usage' }),
  } as CommandOptions;
  try {
    return await (command.run as NonNullable<Command['run']>)(options);
  } catch (err) {
    if (err instanceof CommanderError) throw err;
    const code = err instanceof PgceError ? ` [${err.code}]` : '';
    process.stderr.write(`${commandPath}: ${scrubSecrets(errorMessage(err))}${code}\n`);
    return err instanceof ConfigError ? 2 : 1;
  }
}

function packageVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(findPackageRoot(), 'package.json'), 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}

/**
 * Once a command is done the process ends: every command closes what it opened, but a library
 * handle left behind (a socket still waiting for an answer that will never come) must not keep
 * a finished process alive. Unref'd: it only fires when something else still holds the process.
 */
const EXIT_AFTER_DONE_MS = 1_000;

function finish(code: number): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), EXIT_AFTER_DONE_MS).unref();
}

if (require.main === module) {
  main(process.argv.slice(2)).then(finish, (err) => {
    process.stderr.write(`${PROGRAM}: ${scrubSecrets(errorMessage(err))}\n`);
    finish(1);
  });
}
