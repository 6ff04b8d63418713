/**
 * The benchmark's sink: a raw node:http server that only counts. It must never be the bottleneck,
 * so it does the least a real sink must: read the whole body, note each event's id (to count
 * distinct events) and `time` (commit→receive latency against this process's clock), answer 202.
 *
 * - binary mode: one event per request, id and time from the `ce-id` / `ce-time` headers;
 * - structured and batch: the body is scanned for `"id":"…"` and `"time":"…"` instead of being
 *   JSON.parse'd. The bench table's columns are a bigint `id` and a text `payload` of 'x'/'y'
 *   characters, so the only string-valued "id" and "time" members are the events' own (the row's
 *   `"id":123` is a number and never matches).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { summarize, type LatencySummary } from './stats';

export interface ReceiverStats {
  /** Events received (duplicates included). */
  events: number;
  /** Distinct event ids. */
  unique: number;
  requests: number;
  /** Date.now() of the first and of the latest event since the last reset (0 = none). */
  firstAt: number;
  lastAt: number;
  latency: LatencySummary;
}

export interface CountingReceiver {
  url: string;
  stats(): ReceiverStats;
  /** Forget everything counted so far (ids, latencies, timestamps). */
  reset(): void;
  close(): Promise<void>;
}

const ID = '"id":"';
const TIME = '"time":"';

export async function startCountingReceiver(port = 0): Promise<CountingReceiver> {
  let ids = new Set<string>();
  let events = 0;
  let requests = 0;
  let firstAt = 0;
  let lastAt = 0;
  let latencies: number[] = [];

  const record = (id: string | undefined, time: string | undefined, now: number): void => {
    events += 1;
    if (id !== undefined) ids.add(id);
    if (time !== undefined) {
      const t = Date.parse(time);
      if (!Number.isNaN(t)) latencies.push(now - t);
    }
    if (firstAt === 0) firstAt = now;
    lastAt = now;
  };

  /** Every string member `"<name>":"…"` of a body, in order. */
  const members = (body: string, key: string): string[] => {
    const out: string[] = [];
    let i = 0;
    for (;;) {
      const at = body.indexOf(key, i);
      if (at < 0) return out;
      const start = at + key.length;
      const end = body.indexOf('"', start);
      out.push(body.slice(start, end));
      i = end + 1;
    }
  };

  // Ids count the events; times give their latencies (each event has exactly one of each, so
  // pairing them is unnecessary whatever order the members come in).
  const scan = (body: string, now: number): void => {
    const times = members(body, TIME);
    const found = members(body, ID);
    for (let k = 0; k < found.length; k++) record(found[k], times[k], now);
  };

  const server = http.createServer((req, res) => {
    const ceId = req.headers['ce-id'];
    const answer = () => {
      requests += 1;
      res.writeHead(202, { 'content-length': '0' });
      res.end();
    };
    if (typeof ceId === 'string') {
      // Binary mode: the attributes are headers; the body is read (and dropped) before answering.
      const ceTime = req.headers['ce-time'] as string | undefined;
      req.on('data', () => undefined);
      req.on('end', () => {
        record(ceId, ceTime, Date.now());
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
    stats: () => ({ events, unique: ids.size, requests, firstAt, lastAt, latency: summarize(latencies) }),
    reset: () => {
      ids = new Set();
      events = 0;
      requests = 0;
      firstAt = 0;
      lastAt = 0;
      latencies = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
