#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, PgceError, errorMessage } from '../errors';
import { scrubSecrets } from '../logger';
import type { Command, CommandOptions } from './command';
import { checkCommand } from './check';
import { deadLettersCommand } from './dead-letters';
import { runCommand } from './run';
import { setupCommand } from './setup';
import { statusCommand } from './status';
import { tailCommand } from './tail';
import { teardownCommand } from './teardown';

/** Adding a command: one file in src/cli exporting a Command, one line here. */
const COMMANDS: Record<string, Command> = {
  run: runCommand,
  setup: setupCommand,
  teardown: teardownCommand,
  status: statusCommand,
  check: checkCommand,
  tail: tailCommand,
  'dead-letters': deadLettersCommand,
};

const USAGE = `usage: pg-cloudevents <command> [options]

commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`).join('\n')}

options:
  -c, --config <file>   configuration file (YAML or JSON); default: $PG_CLOUDEVENTS_CONFIG
      --dry-run         setup/teardown: print the SQL instead of running it
      --recreate-slot   setup: replace a lost (dropped, invalidated) slot with a new one, accepting the gap
      --json            status, dead-letters list and replay: machine-readable output
      --id <id> / --all dead-letters replay: one row, or every row (purge --id: one row)
      --retry <n>       dead-letters replay: retries per event (default 3)
      --before <T>      dead-letters purge: only rows created before T (ISO 8601 timestamp, or a duration like P7D)
  -h, --help            this text

The environment (DATABASE_URL, K_SINK, PG_CLOUDEVENTS_TABLES, ...) is described in the README.`;

/** Exit codes: 0 done, 1 a runtime failure, 2 bad usage or configuration. */
export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        'dry-run': { type: 'boolean' },
        'recreate-slot': { type: 'boolean' },
        json: { type: 'boolean' },
        id: { type: 'string' },
        all: { type: 'boolean' },
        before: { type: 'string' },
        retry: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    process.stderr.write(`pg-cloudevents: ${errorMessage(err)}\n\n${USAGE}\n`);
    return 2;
  }
  const [name] = parsed.positionals;
  if (parsed.values.help || !name) {
    process.stdout.write(`${USAGE}\n`);
    return name || parsed.values.help ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`pg-cloudevents: unknown command "${name}"\n\n${USAGE}\n`);
    return 2;
  }
  try {
    return await command.run({
      configPath: parsed.values.config,
      dryRun: Boolean(parsed.values['dry-run']),
      json: Boolean(parsed.values.json),
      env: process.env,
      args: parsed.positionals.slice(1),
      id: parsed.values.id,
      all: Boolean(parsed.values.all),
      before: parsed.values.before,
      recreateSlot: Boolean(parsed.values['recreate-slot']),
      retry: parsed.values.retry,
    });
  } catch (err) {
    const code = err instanceof PgceError ? ` [${err.code}]` : '';
    process.stderr.write(`pg-cloudevents ${name}: ${scrubSecrets(errorMessage(err))}${code}\n`);
    return err instanceof ConfigError ? 2 : 1;
  }
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
    process.stderr.write(`pg-cloudevents: ${scrubSecrets(errorMessage(err))}\n`);
    finish(1);
  });
}
