import type { CloudEvent } from 'cloudevents';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { DeliveryError, ErrorCodes, PgceError, errorMessage, isRetriable } from '../../errors';
import type { Sink } from '../types';

/**
 * The user's own handler: `path/to/file.js#export` (resolved against the working directory; the
 * export defaults to `default`). The function receives each CloudEvent; its promise resolving is a
 * delivery, a throw a failed one — retriable unless the error says otherwise with
 * `retriable: false` (FinalError does; kafkajs treats unknown errors the same way). The public
 * type is `Handler` in src/index.ts (README, "Writing a handler module").
 */
export type HandlerFunction = (event: CloudEvent<unknown>) => unknown;

/**
 * Whether a handler's error may be retried: its own `retriable` flag when it has a boolean one.
 * The flag, not `instanceof`, decides, because a handler may load another copy of pg-cloudevents
 * (its own node_modules) whose FinalError is not this copy's class, or not use it at all.
 */
export function handlerErrorRetriable(err: unknown): boolean {
  const flag = typeof err === 'object' && err !== null ? (err as { retriable?: unknown }).retriable : undefined;
  return typeof flag === 'boolean' ? flag : isRetriable(err);
}

export class ModuleSink implements Sink {
  readonly name = 'module';
  private readonly fn: HandlerFunction;

  constructor(private readonly spec: string, cwd = process.cwd()) {
    const [file, exportName = 'default'] = spec.split('#');
    const path = resolve(cwd, file);
    if (!existsSync(path)) {
      throw new PgceError(ErrorCodes.SINK_CONFIG, `CLOUDEVENTS_HANDLER ${spec}: no file ${path}`);
    }
    let mod: Record<string, unknown>;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      mod = require(path);
    } catch (err) {
      throw new PgceError(ErrorCodes.SINK_CONFIG, `CLOUDEVENTS_HANDLER ${spec}: ${path} failed to load: ${errorMessage(err)}`, { cause: err });
    }
    const fn = exportName === 'default' ? (mod.default ?? mod) : mod[exportName];
    if (typeof fn !== 'function') {
      const exported = Object.keys(mod).filter((k) => typeof mod[k] === 'function');
      throw new PgceError(ErrorCodes.SINK_CONFIG,
        `CLOUDEVENTS_HANDLER ${spec}: ${path} has no function export "${exportName}"` +
        (exported.length ? ` (it exports ${exported.join(', ')})` : ''));
    }
    this.fn = fn as HandlerFunction;
  }

  describe(): string {
    return this.spec;
  }

  async send(event: CloudEvent<unknown>): Promise<void> {
    try {
      await this.fn(event);
    } catch (err) {
      if (err instanceof DeliveryError) throw err;
      throw new DeliveryError(`handler ${this.spec} threw: ${errorMessage(err)}`, { retriable: handlerErrorRetriable(err), cause: err });
    }
  }

  async close(): Promise<void> {}
}
