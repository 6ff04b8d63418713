import { expect } from 'chai';
import type { CloudEvent } from 'cloudevents';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './harness/postgres';

/** A free TCP port on loopback for a spawned process's health server. */
/**
 * Ports handed out below Linux's ephemeral range (32768–60999): the kernel never gives these to an
 * outgoing connection or to another process's listen(0), so a port chosen here stays free until
 * the test uses it, even with test files running in parallel (mocha --parallel).
 */
const PORT_RANGE = { min: 20_000, max: 32_000 };
const handedOut = new Set<number>();

/** A loopback port where nothing listens now, chosen at random in PORT_RANGE and checked by binding it. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PORT_RANGE.min + Math.floor(Math.random() * (PORT_RANGE.max - PORT_RANGE.min));
    if (handedOut.has(port)) continue;
    if (await bindable(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port in ${PORT_RANGE.min}-${PORT_RANGE.max} after 200 attempts`);
}

/** Whether the port can be bound on every interface (the product listens on 0.0.0.0). */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)));
  });
}

export function writeTempFile(name: string, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgce-'));
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

/** Fast retries for tests (kafkajs' habit): the behaviour is the same, the waits are short. Each test adds its own `capture:`. */
export const FAST_DELIVERY_YAML = `delivery:
  backoffPolicy: exponential
  backoffDelay: PT0.05S
  backoffMax: PT0.5S
  timeout: PT5S
`;

/** The row ids (`data.data.id`) of the events a receiver accepted. */
export function acceptedRowIds(events: CloudEvent<unknown>[]): Set<number> {
  return new Set(events.map((e) => (e.data as { data?: { id?: unknown } } | null)?.data?.id).filter((id): id is number => typeof id === 'number'));
}

/**
 * Nothing lost: waits until the event of every inserted row was accepted, then fails naming the
 * rows whose event never arrived, and any request the receiver could not parse.
 */
export async function expectEveryRowDelivered(receiver: { accepted: CloudEvent<unknown>[]; errors: unknown[] }, inserted: number[]): Promise<void> {
  await waitFor(async () => inserted.every((id) => acceptedRowIds(receiver.accepted).has(id)), {
    timeoutMs: 30_000, intervalMs: 100, what: `all ${inserted.length} inserted rows to be accepted by the receiver`,
  });
  const missing = inserted.filter((id) => !acceptedRowIds(receiver.accepted).has(id));
  expect(missing, 'inserted rows whose event never arrived').to.deep.equal([]);
  expect(receiver.errors).to.deep.equal([]);
}
