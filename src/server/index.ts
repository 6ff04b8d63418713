import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import { errorMessage } from '../errors';
import { logger, scrubSecrets } from '../logger';
import { adminRouter, type AdminOptions } from './admin';
import { listenError } from './listen-error';
import type { PipelineMetrics } from './metrics';
import type { StatusTracker } from './status';

export interface ServerOptions {
  port: number;
  /** Default 0.0.0.0 so kubelet probes and Prometheus reach the pod. */
  host?: string;
  metrics: PipelineMetrics;
  status: StatusTracker;
  /** More status fetched on request (e.g. slot lag from the database); a throw becomes `statusError`. */
  extraStatus?: () => Promise<Record<string, unknown>>;
  /** The admin API under /api (ADMIN_TOKEN set); absent: /api/* answers 404. */
  admin?: AdminOptions;
}

export interface RunningServer {
  /** The port actually bound (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

/** GET /healthz, /readyz, /metrics and /status (README, "Operations"), and the admin API when enabled. */
export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const log = logger('server');
  const app = express();
  app.disable('x-powered-by');

  // Liveness only: answering at all proves the event loop runs.
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', (_req, res) => {
    const reasons = opts.status.notReadyReasons();
    if (reasons.length === 0) res.json({ status: 'ready' });
    else res.status(503).json({ status: 'not ready', reasons });
  });

  app.get('/metrics', async (_req, res) => {
    const body = await opts.metrics.registry.metrics();
    res.set('Content-Type', opts.metrics.registry.contentType).send(body);
  });

  app.get('/status', async (_req, res) => {
    let extra: Record<string, unknown> = {};
    if (opts.extraStatus) {
      try {
        extra = await opts.extraStatus();
      } catch (err) {
        extra = { statusError: errorMessage(err) };
      }
    }
    res.set('Cache-Control', 'no-store').json(toSafeJson({ ...opts.status.snapshot(), ...extra }));
  });

  if (opts.admin) app.use('/api', adminRouter(opts.admin));

  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: 'not found', path: scrubSecrets(req.path) });
  });

  // Express 5 routes rejected promises here; answer without leaking the error's detail.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    log.error({ err: scrubSecrets(errorMessage(err)) }, 'request failed');
    if (!res.headersSent) res.status(500).json({ error: 'internal error' });
  });

  const server = await listen(app, opts.port, opts.host ?? '0.0.0.0');
  return {
    port: (server.address() as AddressInfo).port,
    close: () => close(server),
  };
}

function listen(app: express.Express, port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host);
    const onError = (err: Error) => reject(listenError(err, port, host));
    server.once('error', onError);
    server.once('listening', () => {
      server.off('error', onError);
      resolve(server);
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    // Idle keep-alive sockets (Prometheus, probes) would otherwise hold close() open.
    server.closeAllConnections();
  });
}

/**
 * Every string scrubbed of secrets ("Secrets stay secret"), bigints as decimal strings, Dates as
 * ISO strings: extra status comes from the database and errors, so nothing in it is trusted.
 */
export function toSafeJson(value: unknown): unknown {
  if (typeof value === 'string') return scrubSecrets(value);
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Error) return scrubSecrets(value.message);
  if (Array.isArray(value)) return value.map(toSafeJson);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) out[scrubSecrets(key)] = toSafeJson(v);
    return out;
  }
  return value;
}
