/**
 * The Lua scripts of the state machine (lua/*.lua beside this module; the build copies them to
 * dist/), each prefixed with lua/lib.lua, registered on an ioredis client with defineCommand:
 * EVALSHA, falling back to EVAL once per connection when the server does not know the script.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type Redis from 'ioredis';
import { WorkflowNotFoundError, WorkflowStateError } from './errors';

export const SCRIPT_NAMES = ['apply_input', 'start_run', 'finish_run', 'fail_run', 'replay', 'skip'] as const;
export type ScriptName = (typeof SCRIPT_NAMES)[number];

const LUA_DIR = path.join(__dirname, 'lua');
/** A Lua error_reply the scripts raise for a transition the state machine refuses. */
const STATE_PREFIX = 'WORKFLOW_STATE ';
/** ...of which lib.lua's `unknown`: the instance is not in the session. */
const MISSING_PREFIX = 'no instance ';

let sources: Map<ScriptName, string> | undefined;

/** Each script's full text (lib.lua first), read once. */
export function scriptSources(): Map<ScriptName, string> {
  if (sources) return sources;
  const lib = fs.readFileSync(path.join(LUA_DIR, 'lib.lua'), 'utf8');
  sources = new Map(SCRIPT_NAMES.map((name) => [name, `${lib}\n${fs.readFileSync(path.join(LUA_DIR, `${name}.lua`), 'utf8')}`]));
  return sources;
}

type Command = (key: string, ...args: (string | number)[]) => Promise<unknown>;

/** Runs the scripts against one session key each. */
export class Scripts {
  constructor(private readonly redis: Redis) {
    for (const [name, lua] of scriptSources()) {
      if (typeof (redis as unknown as Record<string, unknown>)[commandName(name)] !== 'function') {
        redis.defineCommand(commandName(name), { numberOfKeys: 1, lua });
      }
    }
  }

  async run(name: ScriptName, key: string, args: (string | number)[]): Promise<unknown> {
    const command = (this.redis as unknown as Record<string, Command>)[commandName(name)];
    try {
      return await command.call(this.redis, key, ...args);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith(STATE_PREFIX)) {
        const message = err.message.slice(STATE_PREFIX.length);
        throw message.startsWith(MISSING_PREFIX) ? new WorkflowNotFoundError(message) : new WorkflowStateError(message);
      }
      throw err;
    }
  }
}

function commandName(name: ScriptName): string {
  return `pgceWorkflow_${name}`;
}
