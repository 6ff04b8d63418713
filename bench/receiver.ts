/**
 * The benchmark's sink: a raw node:http server that only counts. It must never be the bottleneck,
 * so it does the least a real sink must: read the whole body, note each event's id (to count
 * distinct events) and `time` (commit→receive latency against this process's clock), answer 202.
 *
 * - binary mode: one event per request, id and time from the `ce-id` / `ce-time` headers;
 * - structured and batch: the body is scanned for `"id":"…"` and `"time":"…"` instead of being
 *   JSON.parse'd (bench/tally.ts, stringMembers, says why that is safe on the bench table).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { stringMembers, Tally, type Counts, type ReceiverStats } from './tally';

export type { ReceiverStats } from './tally';

export interface CountingReceiver {
  url: string;
  counts(): Counts;
  stats(): ReceiverStats;
  /** Forget everything counted so far (ids, latencies, timestamps). */
  reset(): void;
  close(): Promise<void>;
}

export async function startCountingReceiver(port = 0): Promise<CountingReceiver> {
  const tally = new Tally();

  // Ids count the events; times give their latencies (each event has exactly one of each, so
  // pairing them is unnecessary whatever order the members come in).
  const scan = (body: string, now: number): void => {
    const times = stringMembers(body, 'time');
    const found = stringMembers(body, 'id');
    for (let k = 0; k < found.length; k++) tally.record(found[k], times[k], now);
  };

  const server = http.createServer((req, res) => {
    const ceId = req.headers['ce-id'];
    const answer = () => {
      tally.message();
      res.writeHead(202, { 'content-length': '0' });
      res.end();
    };
    if (typeof ceId === 'string') {
      // Binary mode: the attributes are headers; the body is read (and dropped) before answering.
      const ceTime = req.headers['ce-time'] as string | undefined;
      req.on('data', () => undefined);
      req.on('end', () => {
        tally.record(ceId, ceTime, Date.now());
        answer();
      });
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      scan(Buffer.concat(chunks).toString('latin1'), Date.now());
      answer();
    });
  });
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));

  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    counts: () => tally.counts(),
    stats: () => tally.stats(),
    reset: () => tally.reset(),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
