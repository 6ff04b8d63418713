import type { CloudEvent } from 'cloudevents';
import type { Writable } from 'node:stream';
import { DeliveryError } from '../../errors';
import type { Sink } from '../types';
import { structuredJson } from '../../events/structured';

/**
 * Writes each event as one line of structured-mode JSON (CloudEvents JSON format) on stdout; logs
 * go to stderr, so the output can be piped. Waits for `drain` when the pipe is full, which holds
 * the pipeline back instead of buffering.
 */
export class ConsoleSink implements Sink {
  readonly name = 'console';

  constructor(private readonly out: Writable = process.stdout) {}

  describe(): string {
    return this.out === process.stdout ? 'stdout' : 'console stream';
  }

  async send(event: CloudEvent<unknown>): Promise<void> {
    if (this.out.destroyed || this.out.writableEnded) {
      throw new DeliveryError('console output is closed', { retriable: false });
    }
    if (!this.out.write(`${structuredJson(event)}\n`)) await this.drained();
  }

  async close(): Promise<void> {
    // stdout is the process's, not ours to end.
  }

  private drained(): Promise<void> {
    const out = this.out;
    return new Promise((resolve, reject) => {
      const settle = (err?: Error) => {
        out.off('drain', onDrain).off('close', onClose).off('error', onError);
        if (err) reject(new DeliveryError(`console output failed: ${err.message}`, { retriable: false, cause: err }));
        else resolve();
      };
      const onDrain = () => settle();
      const onClose = () => settle(new Error('closed while writing'));
      const onError = (err: Error) => settle(err);
      out.on('drain', onDrain).on('close', onClose).on('error', onError);
    });
  }
}
