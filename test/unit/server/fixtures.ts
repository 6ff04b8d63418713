/** Lifecycle payloads for the server tests: just enough of a Change and a CloudEvent. */
import { CloudEvent } from 'cloudevents';
import type { Change, RelationInfo } from '../../../src/sources/change';
import { DeliveryError } from '../../../src/errors';
import { Lifecycle } from '../../../src/lifecycle';

export function relation(schema: string, table: string): RelationInfo {
  return {
    id: 16384, schema, table, replicaIdentity: 'default',
    columns: [{ name: 'id', typeOid: 23, typeMod: -1, isKey: true }], keyColumns: ['id'],
  };
}

const base = { commitLsn: 0x16b3748n, commitTime: new Date('2024-01-01T00:00:00Z'), xid: 700, ordinal: 0 };

export function insertInto(rel: RelationInfo, id: number): Change {
  return { ...base, relation: rel, kind: 'insert', new: { id }, missingColumns: [] };
}

export function deleteFrom(rel: RelationInfo, id: number): Change {
  return { ...base, relation: rel, kind: 'delete', old: { id }, oldIsKeyOnly: true, missingColumns: [] };
}

export function event(type: string, id = '1'): CloudEvent<unknown> {
  return new CloudEvent({ specversion: '1.0', id, source: '/pg-cloudevents/test', type, data: {} });
}

export function connect(lifecycle: Lifecycle, slot = 'pgce_srv_slot', publication = 'pgce_srv_pub'): void {
  lifecycle.emit('capture:connected', { slot, publication, startLsn: 0n });
}

export function deliver(lifecycle: Lifecycle, type: string, latencyMs: number, attempts = 1, destination = 'default'): void {
  lifecycle.emit('delivery:delivered', { event: event(type), destination, attempts, latencyMs, commitTime: base.commitTime });
}

export function failAttempt(
  lifecycle: Lifecycle, status: number | undefined, retriable: boolean, message = 'sink said no', destination = 'default',
): void {
  lifecycle.emit('delivery:attemptFailed', {
    event: event('orm.post_save'),
    destination,
    error: new DeliveryError(message, { status, retriable }),
    status,
    attempt: 1,
    willRetry: retriable,
  });
}

/** Value of one sample in Prometheus text, e.g. sample(text, 'pgce_x_total', {a: 'b'}); undefined when absent. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const pair of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found[pair[1]] = pair[2];
    const wanted = Object.entries(labels);
    if (wanted.length === Object.keys(found).length && wanted.every(([k, v]) => found[k] === v)) return Number(m[3]);
  }
  return undefined;
}
