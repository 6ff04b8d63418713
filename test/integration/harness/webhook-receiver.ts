/**
 * A plain HTTP receiver for webhook actions (node:http, loopback, port 0): unlike receiver.ts it
 * parses nothing, so bare payloads (JSON, text) and CloudEvents alike are recorded as they came:
 * method, path, headers, body, arrival time and the status answered. Answers default to 200;
 * `respondWith` scripts them per request (a status, headers, or `hang` to never answer).
 */
import { EventEmitter } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface WebhookRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  /** Date.now() when the request had arrived whole. */
  at: number;
  /** What it was answered; 0 while hanging. */
  status: number;
}

export type WebhookAnswer = { status: number; headers?: Record<string, string>; body?: string } | 'hang';

/** `n` counts the requests to the same path, from 1. */
export type WebhookResponder = (req: WebhookRequest, n: number) => WebhookAnswer | undefined;

export interface WebhookReceiver {
  /** `http://127.0.0.1:<port>` (no trailing slash). */
  url: string;
  port: number;
  requests: WebhookRequest[];
  /** The requests to `path`, in arrival order. */
  to(path: string): WebhookRequest[];
  respondWith(fn: WebhookResponder | undefined): void;
  /** Resolves once `predicate()` holds, checked on every request; rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, what: string, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const requests: WebhookRequest[] = [];
  const changed = new EventEmitter();
  changed.setMaxListeners(100);
  let responder: WebhookResponder | undefined;
  const to = (path: string) => requests.filter((r) => r.path === path);

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
      const record: WebhookRequest = { method: req.method ?? '', path: req.url ?? '', headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now(), status: 0 };
      requests.push(record);
      const answer = responder?.(record, to(record.path).length) ?? { status: 200 };
      if (answer !== 'hang') {
        record.status = answer.status;
        res.writeHead(answer.status, answer.headers).end(answer.body ?? '');
      }
      changed.emit('change');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    to,
    respondWith(fn) {
      responder = fn;
    },
    waitFor(predicate, what, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        if (predicate()) return resolve();
        const onChange = () => {
          if (!predicate()) return;
          clearTimeout(timer);
          changed.off('change', onChange);
          resolve();
        };
        const timer = setTimeout(() => {
          changed.off('change', onChange);
          reject(new Error(`webhook receiver: waited ${timeoutMs} ms for ${what}; got ${requests.length} requests`));
        }, timeoutMs);
        changed.on('change', onChange);
      });
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
