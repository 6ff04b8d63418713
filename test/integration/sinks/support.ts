import { expect } from 'chai';
import type { CloudEvent } from 'cloudevents';
import type { BrokerConfig, Config, DeliveryConfig } from '../../../src/config/types';
import { deliverWithRetry } from '../../../src/delivery/deliver';
import type { DeliveryError } from '../../../src/errors';
import type { PlainMessage, Sink } from '../../../src/sinks/types';
import type { TcpProxy } from '../harness/net';

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

/**
 * Delivers `event` while the broker is down behind `proxy`, bringing it back after the second
 * failed attempt; every failure must be retriable and followed by another attempt.
 */
export function deliverAcrossOutage(sink: Sink, event: CloudEvent<unknown>, policy: DeliveryConfig, proxy: TcpProxy): Promise<{ attempts: number }> {
  let failures = 0;
  return deliverWithRetry(sink, event, policy, {
    onAttemptFailed: ({ error, willRetry }) => {
      expect(error.retriable, error.message).to.equal(true);
      expect(willRetry).to.equal(true);
      if (++failures === 2) void proxy.start();
    },
  });
}

/**
 * A trigger action's bare payload (`Sink.sendMessage`): JSON text with non-ASCII characters, so a
 * consumer that gets exactly these bytes got the body untouched.
 */
export function plainMessage(n: number, over: Partial<PlainMessage> = {}): PlainMessage {
  return {
    body: Buffer.from(`{"order":${n},"note":"Größe ✓ \\"quoted\\"","total":12.50}`, 'utf8'),
    contentType: 'application/json',
    id: `trigger:orders_hb/0:000000000183A2F8-${String(n).padStart(8, '0')}`,
    key: `shop.order/${n}`,
    ...over,
  };
}

/** Names of a CloudEvent envelope (any binding's attribute prefixes, or the JSON format's keys) in `text`. */
export const ENVELOPE = /specversion|^ce[-_]|^cloudEvents:/i;
