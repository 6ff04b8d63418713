/**
 * `/api/backfills` (README "Backfill"): list, request, show and cancel backfills, as the
 * `backfill` command does, behind the admin router's bearer check. A request is checked like the
 * command's (src/sources/backfill/request.ts) on a connection of the shared pool, then stored;
 * the leader of the slot performs it. Errors go to the admin router's handler: 400 for an invalid
 * request, 404 for a missing backfill, 409 for one that already ended.
 */
import express, { type Request, type Response } from 'express';
import type { Pool } from 'pg';
import type { Config } from '../config/types';
import { logger } from '../logger';
import { parseRate, validateBackfill, type BackfillAsk } from '../sources/backfill/request';
import { BackfillError, DEFAULT_LIST_LIMIT, type BackfillStore } from '../sources/backfill/store';
import { backfillJson } from '../sources/backfill/view';

export interface BackfillsAdmin {
  store: BackfillStore;
  /** Where requests are checked: the `where` check needs one connection for its transaction. */
  pool: Pool;
  config: Config;
}

/** What a POST body may hold. */
const BODY_KEYS = ['tables', 'where', 'chunk', 'rate'];
const MAX_LIST_LIMIT = 1000;

/** The body as a request, or BackfillError('invalid') naming what is wrong with it. */
export function askOf(body: unknown): BackfillAsk {
  const invalid = (message: string) => new BackfillError('invalid', message);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalid('(body): must be a JSON object: {"tables": ["public.orders"], "where": "...", "chunk": 1000, "rate": "5000/s"} (Content-Type: application/json)');
  }
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => !BODY_KEYS.includes(k));
  if (unknown.length > 0) throw invalid(`(body).${unknown[0]}: unknown; a backfill request takes ${BODY_KEYS.join(', ')}`);
  if (!Array.isArray(b.tables) || b.tables.length === 0 || !b.tables.every((t) => typeof t === 'string')) {
    throw invalid('tables: must be a non-empty array of captured table names, e.g. ["public.orders"]');
  }
  if (b.where !== undefined && b.where !== null && typeof b.where !== 'string') throw invalid('where: must be a string, an SQL condition on the table\'s rows');
  if (b.chunk !== undefined && typeof b.chunk !== 'number') throw invalid('chunk: must be a number of rows from 1 to 100000');
  if (b.rate !== undefined && b.rate !== null && typeof b.rate !== 'number' && typeof b.rate !== 'string') throw invalid('rate: must be rows per second (a number) or "5000/s", "300/m"');
  return {
    tables: b.tables as string[],
    ...(typeof b.where === 'string' && { where: b.where }),
    ...(b.chunk !== undefined && { chunk: b.chunk as number }),
    ...(b.rate !== undefined && b.rate !== null && { rate: parseRate(b.rate as string | number, 'api') }),
  };
}

export function backfillsRouter(admin: BackfillsAdmin, bodyLimit: string): express.Router {
  const log = logger('admin');
  const router = express.Router();
  router.use(express.json({ limit: bodyLimit, strict: false }));

  router.get('/', async (req: Request, res: Response) => {
    const text = req.query.limit;
    const limit = text === undefined ? DEFAULT_LIST_LIMIT : Number(text);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) throw new BackfillError('invalid', `limit: must be a whole number from 1 to ${MAX_LIST_LIMIT}`);
    res.json({ backfills: (await admin.store.list(limit)).map(backfillJson) });
  });

  router.post('/', async (req: Request, res: Response) => {
    const ask = askOf(req.body);
    const client = await admin.pool.connect();
    let requests;
    try {
      requests = await validateBackfill(client, admin.config, ask, 'api', 'api');
    } finally {
      client.release();
    }
    const rows = await admin.store.request(requests);
    log.info({ backfills: rows.map((r) => r.id), tables: ask.tables }, 'admin API: backfill requested');
    res.status(201).json({ backfills: rows.map(backfillJson) });
  });

  router.get('/:id', async (req: Request, res: Response) => {
    const row = await admin.store.get(String(req.params.id));
    if (!row) throw new BackfillError('missing', `backfill ${String(req.params.id)} does not exist (for slot ${admin.config.capture.slot})`);
    res.json(backfillJson(row));
  });

  const cancel = async (req: Request, res: Response) => {
    const row = await admin.store.cancel(String(req.params.id));
    log.info({ backfill: row.id }, 'admin API: backfill cancelled');
    res.json(backfillJson(row));
  };
  router.delete('/:id', cancel);
  router.post('/:id/cancel', cancel);
  return router;
}
