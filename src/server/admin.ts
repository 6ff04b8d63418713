/**
 * The admin API (README "Rules at runtime"): `/api/triggers` lists the trigger rules (the file's,
 * read-only, and the table's, with the problems of invalid rows) and creates, replaces and
 * deletes the table's. Mounted only when ADMIN_TOKEN is set; every request must bear it
 * (`Authorization: Bearer …`, compared in constant time). Writes go to the table, whose NOTIFY
 * makes every replica (this one included) reload; a body is checked like a row of the table, by
 * the file's own schema and messages (by key path), as an untrusted rule (the allow-lists apply).
 * `/api/workflows` (./admin-workflows.ts) and `/api/backfills` (./admin-backfills.ts) sit behind
 * the same check and answer their errors here.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Config, TriggerConfig } from '../config/types';
import { ErrorCodes, PgceError, errorMessage } from '../errors';
import { logger, scrubSecrets } from '../logger';
import { isTransientDbError } from '../pg/db-errors';
import { checkRule, RuleWriteError, writtenRule, type RowContext, type RuleRow, type RuleStore } from '../trigger-rules';
import { BackfillError } from '../sources/backfill/store';
import { WorkflowNotFoundError, WorkflowStateError } from '../workflows/errors';
import type { WorkflowOperations } from '../workflows/operations';
import { backfillsRouter, type BackfillsAdmin } from './admin-backfills';
import { workflowsRouter } from './admin-workflows';

/** A request body larger than this is refused (413): a rule is a few kilobytes. */
export const ADMIN_BODY_LIMIT = '256kb';

export interface AdminOptions {
  token: string;
  config: Config;
  /** `/api/triggers`: the trigger rules table (triggersTable.enabled); absent, those paths answer 404. */
  triggers?: { store: RuleStore; context: RowContext };
  /** `/api/workflows`: the configured workflows on their Redis; absent, those paths answer 404. */
  workflows?: WorkflowOperations;
  /** `/api/backfills`: the slot's backfills; `run` always serves them with the admin API. */
  backfills?: BackfillsAdmin;
}

/** One rule as the API shows it. */
export interface RuleEntry {
  name: string;
  origin: 'file' | 'table';
  /** A table row that fails the checks is invalid, ignored, and listed with its problems. */
  valid: boolean;
  active: boolean | null;
  /** As written (the file's with tables as `schema.name`; the table's as stored). */
  rule: unknown;
  problems?: string[];
  createdAt?: string;
  updatedAt?: string;
}

const REALM = 'Bearer realm="pg-cloudevents"';

export function adminRouter(opts: AdminOptions): express.Router {
  const log = logger('admin');
  const router = express.Router();
  const expected = digest(opts.token);
  const fileRules = new Map((opts.config.triggers ?? []).map((t) => [t.name, t]));

  router.use((req: Request, res: Response, next: NextFunction) => {
    const header = req.get('authorization') ?? '';
    const bearer = /^Bearer +(\S+) *$/i.exec(header);
    // Digests of equal length, so the comparison takes the same time whatever was sent.
    if (bearer !== null && timingSafeEqual(digest(bearer[1]), expected)) return next();
    res.set('WWW-Authenticate', bearer === null ? REALM : `${REALM}, error="invalid_token"`)
      .status(401).json({ error: bearer === null ? 'authorization required: Authorization: Bearer <ADMIN_TOKEN>' : 'invalid token' });
  });
  // Before the JSON parser: workflow bodies are parsed keeping exact numbers.
  router.use('/workflows', opts.workflows ? workflowsRouter(opts.workflows, ADMIN_BODY_LIMIT) : off('no workflows are configured (workflows: in the configuration file)'));
  router.use('/backfills', opts.backfills ? backfillsRouter(opts.backfills, ADMIN_BODY_LIMIT) : off('backfills are not served by this process'));
  if (!opts.triggers) {
    router.use('/triggers', off('the trigger rules table is off (triggersTable.enabled: false)'));
  } else {
    triggerRoutes(router, opts.triggers, fileRules, log);
  }

  router.use((req: Request, res: Response) => {
    res.status(404).json({ error: 'not found', path: scrubSecrets(req.path) });
  });

  // Express 5 routes rejected promises here.
  router.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const answer = errorAnswer(err);
    if (answer.status >= 500) log.error({ err: scrubSecrets(errorMessage(err)) }, 'admin API request failed');
    if (!res.headersSent) res.status(answer.status).json(answer.body);
  });
  return router;
}

/** Paths of a part of the API this process does not serve, saying why. */
function off(reason: string): express.RequestHandler {
  return (_req, res) => void res.status(404).json({ error: reason });
}

function triggerRoutes(router: express.Router, opts: NonNullable<AdminOptions['triggers']>, fileRules: Map<string, TriggerConfig>, log: ReturnType<typeof logger>): void {
  router.use('/triggers', express.json({ limit: ADMIN_BODY_LIMIT, strict: false }));

  const fileEntry = (name: string): RuleEntry | undefined => {
    const rule = fileRules.get(name);
    return rule && { name, origin: 'file', valid: true, active: rule.active, rule: writtenRule(rule) };
  };
  const tableEntry = (row: RuleRow): RuleEntry => {
    const { rule, problems } = checkRule(row.name, row.rule, opts.context);
    return {
      name: row.name, origin: 'table', valid: rule !== undefined, active: rule?.active ?? null, rule: row.rule,
      ...(problems.length > 0 && { problems }), createdAt: row.createdAt.toISOString(), updatedAt: row.updatedAt.toISOString(),
    };
  };
  const fileRuleIsReadOnly = (res: Response, name: string) =>
    res.status(409).json({ error: `trigger rule ${JSON.stringify(name)} is in the configuration file, which the API cannot change: edit the file (and restart), or choose another name` });

  /** The body checked as rule `name`: the rule to store, or a 400 already sent. */
  const checked = (req: Request, res: Response, name: string, fillName: boolean): unknown => {
    const body: unknown = req.body;
    if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
      res.status(400).json({ errors: ['(body): must be a JSON object, the rule as written in the configuration file (Content-Type: application/json)'] });
      return undefined;
    }
    const rule = { ...(body as Record<string, unknown>) };
    // PUT names the rule in its path: the body may leave it out.
    if (fillName) rule.name ??= name;
    const { problems } = checkRule(name, rule, opts.context);
    if (problems.length > 0) {
      res.status(400).json({ errors: problems });
      return undefined;
    }
    return rule;
  };

  router.get('/triggers', async (_req, res) => {
    const rows = await opts.store.list();
    const file = [...fileRules.keys()].map((name) => fileEntry(name)!);
    res.json({ triggers: [...file, ...rows.map(tableEntry)] });
  });

  router.get('/triggers/:name', async (req, res) => {
    const { name } = req.params;
    const entry = fileEntry(name) ?? (await opts.store.get(name).then((row) => row && tableEntry(row)));
    if (entry) res.json(entry);
    else res.status(404).json({ error: `no trigger rule ${JSON.stringify(name)}` });
  });

  router.post('/triggers', async (req, res) => {
    const name = (req.body as { name?: unknown } | undefined)?.name;
    if (typeof name === 'string' && fileRules.has(name)) return fileRuleIsReadOnly(res, name);
    const rule = checked(req, res, typeof name === 'string' ? name : '', false);
    if (rule === undefined) return;
    const row = await opts.store.create(name as string, rule);
    log.info({ rule: row.name }, 'admin API: trigger rule created in the table');
    res.status(201).json(tableEntry(row));
  });

  router.put('/triggers/:name', async (req, res) => {
    const { name } = req.params;
    if (fileRules.has(name)) return fileRuleIsReadOnly(res, name);
    const rule = checked(req, res, name, true);
    if (rule === undefined) return;
    const row = await opts.store.replace(name, rule);
    log.info({ rule: name }, row.created ? 'admin API: trigger rule created in the table' : 'admin API: trigger rule replaced in the table');
    res.status(row.created ? 201 : 200).json(tableEntry(row));
  });

  router.delete('/triggers/:name', async (req, res) => {
    const { name } = req.params;
    if (fileRules.has(name)) return fileRuleIsReadOnly(res, name);
    await opts.store.delete(name);
    log.info({ rule: name }, 'admin API: trigger rule deleted from the table');
    res.status(204).end();
  });
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function errorAnswer(err: unknown): { status: number; body: Record<string, unknown> } {
  if (err instanceof WorkflowNotFoundError) return { status: 404, body: { error: err.message } };
  if (err instanceof WorkflowStateError) return { status: 409, body: { error: err.message } };
  if (err instanceof BackfillError) {
    const status = { invalid: 400, missing: 404, finished: 409 }[err.reason];
    return { status, body: err.reason === 'invalid' ? { errors: [scrubSecrets(err.message)] } : { error: err.message } };
  }
  if (err instanceof RuleWriteError) {
    const status = { exists: 409, file: 409, missing: 404, name: 400 }[err.reason];
    return { status, body: err.reason === 'name' ? { errors: [err.message] } : { error: err.message } };
  }
  const parser = err as { type?: string; status?: number };
  if (parser.type === 'entity.too.large') return { status: 413, body: { error: `the body is larger than ${ADMIN_BODY_LIMIT}` } };
  if (parser.type === 'entity.parse.failed') return { status: 400, body: { errors: [`(body): not valid JSON (${scrubSecrets(errorMessage(err))})`] } };
  if (typeof parser.status === 'number' && parser.status >= 400 && parser.status < 500) return { status: parser.status, body: { error: scrubSecrets(errorMessage(err)) } };
  if (err instanceof PgceError && err.code === ErrorCodes.UNKNOWN_TABLE) return { status: 503, body: { error: err.message } };
  if (isTransientDbError(err)) return { status: 503, body: { error: 'the database is not reachable; try again' } };
  return { status: 500, body: { error: 'internal error' } };
}
