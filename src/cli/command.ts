export interface CommandOptions {
  configPath?: string;
  dryRun: boolean;
  json: boolean;
  env: NodeJS.ProcessEnv;
}

export interface Command {
  summary: string;
  /** Resolves to the exit code; throws for failures (main prints them and picks the code). */
  run(options: CommandOptions): Promise<number>;
}
