export interface CommandOptions {
  configPath?: string;
  dryRun: boolean;
  json: boolean;
  env: NodeJS.ProcessEnv;
  /** Positionals after the command name (dead-letters list|replay|purge). */
  args?: string[];
  id?: string;
  all?: boolean;
  before?: string;
  /** setup: drop the slot if present, create a new one and record it, accepting the gap. */
  recreateSlot?: boolean;
  /** dead-letters replay: retries per event. */
  retry?: string;
}

export interface Command {
  summary: string;
  /** Resolves to the exit code; throws for failures (main prints them and picks the code). */
  run(options: CommandOptions): Promise<number>;
}
