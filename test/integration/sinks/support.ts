import { expect } from 'chai';
import type { BrokerConfig, Config } from '../../../src/config/types';
import type { DeliveryError } from '../../../src/errors';

/** The error a send (or delivery) failed with; fails the test if it succeeded. */
export async function failure(p: Promise<unknown>): Promise<DeliveryError> {
  return p.then(
    () => expect.fail('expected a failure'),
    (e: unknown) => e as DeliveryError,
  );
}

/** Polls `probe` until it returns a value, with a deadline naming `what`; probe errors propagate. */
export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Names of this test run's own (queues, streams, topics…), under the file's prefix. */
export function uniqueName(prefix: string): (what: string) => string {
  let counter = 0;
  return (what) => `${prefix}${what}_${process.pid}_${Date.now().toString(36)}_${++counter}`;
}

/** The part of Config a broker sink reads: the sink settings (timeout) and, when given, its broker. */
export function brokerConfig(timeoutMs: number, broker?: BrokerConfig): Config {
  return {
    brokers: broker ? { [broker.name]: broker } : {},
    sink: { mode: 'binary', batchSize: 100, timeoutMs, caCertsDir: '/nonexistent', oidcTokenPath: '/nonexistent/token' },
  } as unknown as Config;
}
