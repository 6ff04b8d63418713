import type { OutputStyle, Reporter } from './output';

/**
 * A command of the CLI: one file in src/cli exporting a Command, one line in main.ts's COMMANDS.
 * main turns these declarations into the parser (commander), so every command gets `--help`,
 * and options a command does not declare are refused (exit 2) instead of being ignored.
 */
export interface Command {
  /** One line for `pg-cloudevents --help`; the command's own `--help` shows it too. */
  summary: string;
  /** 'human' (default): text warnings on stderr. 'log': JSON log lines (pino), for `run`. */
  output?: OutputStyle;
  /** The options it accepts besides `--config` and `--help`. */
  options?: OptionSpec[];
  /** One required positional argument (`triggers test NAME`), given to `run` as `options.name`. */
  argument?: { name: string; description: string };
  /**
   * Sub-commands (`dead-letters list|replay|purge`). A command has these, `run`, or both: then
   * `run` is what it does without a sub-command (`backfill --table T`, `backfill list`).
   */
  commands?: Record<string, Command>;
  /** Resolves to the exit code; throws for failures (main prints them and picks the code). */
  run?(options: CommandOptions): Promise<number>;
}

/** An option as the parser should know it. */
export interface OptionSpec {
  /** commander's flags: `--dry-run`, `--retry <n>`. The value lands under the camelCase name. */
  flags: string;
  description: string;
  /**
   * Turns the text into the value; throws an Error whose message says what a valid value is.
   * `previous` is the value so far, for an option given several times (`--table a --table b`).
   */
  parse?: (text: string, previous: unknown) => unknown;
  /** camelCase names of options it cannot be given with. */
  conflicts?: string[];
}

export interface CommandOptions {
  configPath?: string;
  dryRun: boolean;
  json: boolean;
  env: NodeJS.ProcessEnv;
  /** dead-letters replay/purge: one row. */
  id?: string;
  /** dead-letters replay: every row. */
  all?: boolean;
  /** dead-letters purge: rows created before this time. */
  before?: Date;
  /** setup: drop the slot if present, create a new one and record it, accepting the gap. */
  recreateSlot?: boolean;
  /** dead-letters replay: only rows recorded for this destination. */
  destination?: string;
  /** dead-letters replay: retries per event. */
  retry?: number;
  /** The positional argument, for a command that declares one (`triggers test NAME`). */
  name?: string;
  /** How this command's style (`output`) says warnings and notices. */
  output: OutputStyle;
  report: Reporter;
  /** Stops with a usage error: the problem and a hint to `--help`, exit 2. */
  usage(problem: string): never;
}
