/**
 * Baseline 2: the sink's own acceptance rate. autocannon drives the same counting receiver with a
 * pre-built event shaped like the product's (binary: ce- headers and the default-format data; batch:
 * 100 such events in one application/cloudevents-batch+json body), so the figure is what the sink
 * could take if the source cost nothing.
 */
import type { ReceiverHandle } from '../receiver-handle';

interface AutocannonResult {
  requests: { total: number; average: number };
  duration: number;
  errors: number;
  non2xx: number;
}
// autocannon ships no type declarations.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const autocannon = require('autocannon') as (opts: Record<string, unknown>) => Promise<AutocannonResult>;

const TIME = '2024-01-01T00:00:00.000Z';
const DATA = { data: { id: 1, payload: 'x'.repeat(92) }, signal_kwargs: { created: true, update_fields: null, raw: false, using: 'default' }, db_table: 'bench_rows' };
const ATTRS = {
  specversion: '1.0',
  id: '0/16B3748:0:1',
  source: '/pg-cloudevents/pgce_bench',
  type: 'orm.post_save',
  subject: 'DCE:public.bench_rows/1',
  time: TIME,
  datacontenttype: 'application/json',
  app: 'public',
  model: 'bench_rows',
  sequence: '0000000016B3748:0000000001',
  partitionkey: 'public.bench_rows/1',
};

export interface SinkCapacity {
  mode: 'binary' | 'batch';
  connections: number;
  seconds: number;
  requestsPerSecond: number;
  eventsPerSecond: number;
  errors: number;
}

export async function sinkCapacity(receiver: ReceiverHandle, mode: 'binary' | 'batch', seconds: number, connections = 64): Promise<SinkCapacity> {
  const perRequest = mode === 'batch' ? 100 : 1;
  const headers: Record<string, string> = {};
  let body: string;
  if (mode === 'binary') {
    for (const [k, v] of Object.entries(ATTRS)) if (k !== 'datacontenttype') headers[`ce-${k}`] = v;
    headers['content-type'] = 'application/json';
    body = JSON.stringify(DATA);
  } else {
    headers['content-type'] = 'application/cloudevents-batch+json';
    body = JSON.stringify(Array.from({ length: perRequest }, () => ({ ...ATTRS, data: DATA })));
  }
  // Warm up (JIT, connections) before the measured run.
  // Warm-up (connections, JIT) as long as the measurement, up to a second.
  await autocannon({ url: receiver.url, method: 'POST', headers, body, connections, duration: Math.min(1, seconds) });
  await receiver.reset();
  const result = await autocannon({ url: receiver.url, method: 'POST', headers, body, connections, duration: seconds });
  const stats = await receiver.stats();
  await receiver.reset();
  return {
    mode,
    connections,
    seconds: result.duration,
    requestsPerSecond: result.requests.total / result.duration,
    eventsPerSecond: stats.events / result.duration,
    errors: result.errors + result.non2xx,
  };
}
