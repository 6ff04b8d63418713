/**
 * `/api/workflows` (README "Recovery"): the sessions of the configured workflows, one session's
 * instances, and replay or skip of a failed instance, as `pg-cloudevents workflows` does them.
 * Mounted by the admin router behind its bearer check; its errors go to the admin router's
 * handler (404 for a missing workflow, session or instance, 409 for a refused transition).
 * Bodies are read as text and parsed keeping exact numbers, as the store keeps them.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { errorMessage, PgceError } from '../errors';
import { parseJsonLossless, stringifyJson } from '../events/json-text';
import { logger } from '../logger';
import { isPlainObject, type JsonObject } from '../workflows/merge';
import type { InstanceAddress, WorkflowOperations } from '../workflows/operations';

/** What each transition's body may hold. */
const BODY_KEYS = { replay: ['params'], skip: ['cascade', 'result'] } as const;

/** The body as a JSON object ({} when empty), or the problems with it. */
function bodyOf(req: Request, kind: keyof typeof BODY_KEYS): { body?: JsonObject; errors?: string[] } {
  const text = typeof req.body === 'string' ? req.body : '';
  if (text.trim() === '') return { body: {} };
  let value: unknown;
  try {
    value = parseJsonLossless(text);
  } catch (err) {
    return { errors: [`(body): not valid JSON (${errorMessage(err)})`] };
  }
  if (!isPlainObject(value)) return { errors: [`(body): must be a JSON object (${BODY_KEYS[kind].join(', ')}), or empty`] };
  const errors = Object.keys(value)
    .filter((key) => !(BODY_KEYS[kind] as readonly string[]).includes(key))
    .map((key) => `(body).${key}: unknown; ${kind} takes ${BODY_KEYS[kind].join(', ')}`);
  return errors.length > 0 ? { errors } : { body: value };
}

function sendJson(res: Response, value: unknown, status = 200): void {
  // stringifyJson: an input's exact number (12345678901234567890) keeps its digits.
  res.status(status).type('application/json').send(stringifyJson(value));
}

function unresolvedOnly(req: Request, res: Response): boolean | undefined {
  const value = req.query.unresolved;
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  res.status(400).json({ errors: ['unresolved: must be true or false'] });
  return undefined;
}

export function workflowsRouter(ops: WorkflowOperations, bodyLimit: string): express.Router {
  const log = logger('admin');
  const router = express.Router();
  router.use(express.text({ type: () => true, limit: bodyLimit }));

  const address = (req: Request): InstanceAddress => ({ workflow: String(req.params.workflow), session: String(req.params.session), instance: String(req.params.instance) });

  router.get('/', async (req, res) => {
    const only = unresolvedOnly(req, res);
    if (only === undefined) return;
    sendJson(res, { workflows: await ops.list({ unresolvedOnly: only }) });
  });

  router.get('/:workflow/sessions', async (req, res) => {
    const only = unresolvedOnly(req, res);
    if (only === undefined) return;
    const [listing] = await ops.list({ workflow: req.params.workflow, unresolvedOnly: only });
    sendJson(res, listing);
  });

  router.get('/:workflow/sessions/:session', async (req, res) => {
    sendJson(res, await ops.show(req.params.workflow, req.params.session));
  });

  router.post('/:workflow/sessions/:session/instances/:instance/replay', async (req, res) => {
    const { body, errors } = bodyOf(req, 'replay');
    if (!body) return void res.status(400).json({ errors });
    if (body.params !== undefined && !isPlainObject(body.params)) {
      return void res.status(400).json({ errors: ['(body).params: must be a JSON object, the clone\'s inputs by name (they replace the inputs entirely)'] });
    }
    const done = await ops.replay(address(req), body.params as JsonObject | undefined);
    log.info({ workflow: done.workflow, session: done.session, instance: done.instance, scheduled: done.scheduled }, 'admin API: workflow instance replayed');
    sendJson(res, done);
  });

  router.post('/:workflow/sessions/:session/instances/:instance/skip', async (req, res) => {
    const { body, errors } = bodyOf(req, 'skip');
    if (!body) return void res.status(400).json({ errors });
    const problems: string[] = [];
    if (body.cascade !== undefined && typeof body.cascade !== 'boolean') problems.push('(body).cascade: must be true or false');
    if (body.result !== undefined && !isPlainObject(body.result)) problems.push('(body).result: must be a JSON object, the result to cascade');
    if (body.result !== undefined && body.cascade !== true) problems.push('(body).result: goes with "cascade": true (without it nothing is fired)');
    if (problems.length > 0) return void res.status(400).json({ errors: problems });
    const done = await ops.skip(address(req), { cascade: body.cascade === true, result: body.result as JsonObject | undefined });
    log.info({ workflow: done.workflow, session: done.session, instance: done.instance, cascade: body.cascade === true, scheduled: done.scheduled }, 'admin API: workflow instance skipped');
    sendJson(res, done);
  });

  // Redis down (not our refusal): the caller may try again.
  router.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    const http = typeof (err as { status?: unknown }).status === 'number';
    if (err instanceof PgceError || http || ops.redis.status === 'ready') return next(err);
    log.warn({ err: errorMessage(err) }, 'admin API: the workflows\' Redis is not reachable');
    res.status(503).json({ error: 'the workflows\' Redis (redis.url or REDIS_URL) is not reachable; try again' });
  });
  return router;
}
