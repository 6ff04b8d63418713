import { expect } from 'chai';
import type { CloudEvent } from 'cloudevents';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './harness/postgres';

/** A free TCP port on loopback for a spawned process's health server. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
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
