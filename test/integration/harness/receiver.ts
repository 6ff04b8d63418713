/**
 * A real CloudEvents receiver for integration tests (express, loopback, port 0). Every request is
 * parsed with the SDK (`HTTP.toEvent`) and validated; one that fails is answered 400 and kept in
 * `errors`, so a test can assert there were none. Answers default to 202; `respondWith` scripts
 * them (status, headers, a delay or a gate before answering). Requests other than POST (probes)
 * get 204 and are not recorded. A batch (application/cloudevents-batch+json, HTTP binding §3.3)
 * is one request whose events are each validated and all recorded in `events`.
 */
import { HTTP, type CloudEvent } from 'cloudevents';
import express, { type Request } from 'express';
import { EventEmitter } from 'node:events';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export interface ReceivedRequest {
  headers: Record<string, string>;
  body: string;
  mode: 'binary' | 'structured' | 'batch';
  /** Events the request carried: 1, or the batch's length. */
  eventCount: number;
  /** Date.now() when the request arrived. */
  at: number;
  /** Which TCP connection carried it (1, 2, … in order of connection). */
  connection: number;
  /** The status it was answered with. */
  status: number;
  /** The request target: path and query. */
  path: string;
}

export interface ReceiverError {
  headers: Record<string, string>;
  body: string;
  error: string;
  at: number;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  delayMs?: number;
  /** Answer only once this settles: a gate the test opens (delayMs counts from then). */
  after?: Promise<unknown>;
}

/** `n` counts requests that parsed, from 1. Return undefined for the default (202). */
export type Responder = (req: ReceivedRequest, n: number) => Answer | undefined;

export interface ReceiverOptions {
  tls?: { key: string | Buffer; cert: string | Buffer };
}

export interface Receiver {
  url: string;
  /** Every valid event received, whatever it was answered. */
  events: CloudEvent<unknown>[];
  /** Events answered 2xx (a gated answer, `after`, once it was sent). */
  accepted: CloudEvent<unknown>[];
  requests: ReceivedRequest[];
  errors: ReceiverError[];
  /** Distinct TCP connections seen so far. */
  connections(): number;
  respondWith(fn: Responder | undefined): void;
  /** Resolves with `events` once `count` events arrived or `predicate(events)` holds. */
  waitFor(what: number | ((events: CloudEvent<unknown>[]) => boolean), timeoutMs?: number): Promise<CloudEvent<unknown>[]>;
  close(): Promise<void>;
}

export async function startReceiver(opts: ReceiverOptions = {}): Promise<Receiver> {
  const events: CloudEvent<unknown>[] = [];
  const accepted: CloudEvent<unknown>[] = [];
  const requests: ReceivedRequest[] = [];
  const errors: ReceiverError[] = [];
  const changed = new EventEmitter();
  changed.setMaxListeners(100);
  const socketIds = new WeakMap<Socket, number>();
  let sockets = 0;
  let responder: Responder | undefined;
  const delayed = new Set<NodeJS.Timeout>();

  const app = express();
  app.use(express.raw({ type: () => true, limit: '50mb' }));
  // Probes (`check` sends HEAD) are answered but are not events.
  app.use((req, res, next) => (req.method === 'POST' ? next() : res.status(204).end()));
  app.all('/{*path}', (req, res) => {
    const headers = flatHeaders(req);
    const body = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
    const at = Date.now();
    let received: CloudEvent<unknown>[];
    try {
      const parsed = HTTP.toEvent<unknown>({ headers, body }) as CloudEvent<unknown> | CloudEvent<unknown>[];
      received = Array.isArray(parsed) ? parsed : [parsed];
      for (const event of received) event.validate();
    } catch (err) {
      errors.push({ headers, body, error: (err as Error).message ?? String(err), at });
      res.status(400).type('text/plain').send(`not a valid CloudEvent: ${(err as Error).message}`);
      changed.emit('change');
      return;
    }
    const contentType = headers['content-type'] ?? '';
    const mode = contentType.startsWith('application/cloudevents-batch+json')
      ? 'batch'
      : contentType.startsWith('application/cloudevents') ? 'structured' : 'binary';
    const record: ReceivedRequest = {
      headers, body, mode, eventCount: received.length, at, connection: socketIds.get(req.socket) ?? 0, status: 0,
      path: req.originalUrl,
    };
    requests.push(record);
    events.push(...received);
    const answer = responder?.(record, requests.length) ?? { status: 202 };
    record.status = answer.status;
    const ok = answer.status >= 200 && answer.status < 300;
    if (ok && !answer.after) accepted.push(...received);
    const reply = () => {
      // A gated answer counts once it reached the client: after a kill -9 it never does.
      if (ok && answer.after) {
        res.once('finish', () => {
          accepted.push(...received);
          changed.emit('change');
        });
      }
      res.status(answer.status).set(answer.headers ?? {});
      res.send(answer.body ?? '');
    };
    changed.emit('change');
    const later = () => {
      if (!answer.delayMs) return reply();
      const timer = setTimeout(() => {
        delayed.delete(timer);
        reply();
      }, answer.delayMs);
      delayed.add(timer);
    };
    if (!answer.after) return later();
    void answer.after.then(later, later);
  });

  const server: http.Server = opts.tls ? https.createServer(opts.tls, app) : http.createServer(app);
  server.on(opts.tls ? 'secureConnection' : 'connection', (socket: Socket) => socketIds.set(socket, ++sockets));
  // A client that refuses our certificate is what some tests want; it is not a receiver error.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}/`,
    events,
    accepted,
    requests,
    errors,
    connections: () => sockets,
    respondWith(fn) {
      responder = fn;
    },
    waitFor(what, timeoutMs = 10_000) {
      const done = typeof what === 'number' ? () => events.length >= what : () => what(events);
      return new Promise((resolve, reject) => {
        if (done()) return resolve(events);
        const onChange = () => {
          if (!done()) return;
          clearTimeout(timer);
          changed.off('change', onChange);
          resolve(events);
        };
        const timer = setTimeout(() => {
          changed.off('change', onChange);
          const want = typeof what === 'number' ? `${what} events` : 'the expected events';
          reject(new Error(`receiver: waited ${timeoutMs} ms for ${want}; got ${events.length} (${errors.length} invalid)`));
        }, timeoutMs);
        changed.on('change', onChange);
      });
    },
    close() {
      for (const timer of delayed) clearTimeout(timer);
      delayed.clear();
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

function flatHeaders(req: Request): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}
