import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
