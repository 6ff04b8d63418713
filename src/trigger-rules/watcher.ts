/**
 * Keeps the trigger rules table's rules current in a running process (README "Rules at runtime"):
 * a dedicated connection LISTENs on the table's channel and every notification re-reads the table
 * (a burst of them costs one more read at most); a re-read every `triggersTable.reloadInterval`
 * is the safety net for a notification lost with its connection. The listener reconnects with
 * backoff, closing the old connection first; the periodic re-read goes through the shared pool,
 * so it goes on meanwhile. A missing table (setup not re-run) is one warning, then polling; an
 * invalid row is reported (log once per row version, /status, pgce_trigger_rules) and ignored.
 * Nothing here ever stops the process.
 */
import { Client } from 'pg';
import { errorMessage } from '../errors';
import type { Lifecycle } from '../lifecycle';
import { logger, scrubSecrets } from '../logger';
import { quoteIdent } from '../pg/catalog-sql';
import { CONNECT_TIMEOUT_MS } from '../pg/db';
import { TRIGGER_RULES_CHANNEL } from '../pg/schema/migrations/000005-trigger-rules';
import { Backoff, sleep } from '../retry';
import type { RuleSchedule, RuleSet } from './schedule';
import { isMissingTable, type RuleStore } from './store';
import { checkRows, type InvalidRule, type RowContext, type TableRules } from './validate';

/** The listener's session, as pg_stat_activity shows it. */
export const LISTENER_APPLICATION_NAME = 'pg-cloudevents triggers';

/** Reconnecting the listener: 0.5 s doubling up to 30 s. */
const RECONNECT = { kind: 'exponential' as const, delayMs: 500, maxMs: 30_000 };

export interface RuleWatcherOptions {
  connectionString: string;
  store: RuleStore;
  schedule: RuleSchedule;
  context: RowContext;
  reloadIntervalMs: number;
  lifecycle?: Lifecycle;
}

/** The table's part of /status (`triggers.table`). */
export interface TableRulesStatus {
  table: string;
  /** The listener is connected and listening. */
  listening: boolean;
  /** False while the table does not exist (setup not run). */
  tableExists: boolean | null;
  lastReadAt: string | null;
  lastError: string | null;
  /** The newest rule set: its version, the commit LSN (trigger mode: journal id) it applies from, its rules. */
  version: number | null;
  appliesFrom: string | null;
  rules: string[];
  invalid: InvalidRule[];
}

const EMPTY: TableRules = { valid: [], invalid: [], fingerprint: '[]' };

export class RuleWatcher {
  private readonly log = logger('triggers');
  private readonly stopSignal = new AbortController();
  private running?: Promise<void>;
  private queued?: Promise<void>;
  private loops: Promise<void>[] = [];
  private client?: Client;
  private listening = false;
  private tableExists: boolean | null = null;
  private lastReadAt: Date | null = null;
  private lastError: string | null = null;
  /** `name@updatedAt` of the invalid rows of the last read, each logged once. */
  private warned = new Set<string>();
  private firstRead!: () => void;
  /** Settles once the table was read (or found missing) for the first time. */
  readonly ready = new Promise<void>((resolve) => (this.firstRead = resolve));

  constructor(private readonly opts: RuleWatcherOptions) {}

  start(): void {
    if (this.loops.length) return;
    this.loops = [this.listenLoop(), this.pollLoop()];
    void this.reload();
  }

  /**
   * Re-reads the table; resolves once a read that began after this call has finished. Calls
   * while a read runs share one more read after it.
   */
  reload(): Promise<void> {
    if (this.stopSignal.signal.aborted) return Promise.resolve();
    if (!this.running) {
      this.running = this.read().finally(() => (this.running = undefined));
      return this.running;
    }
    this.queued ??= this.running.then(() => {
      this.queued = undefined;
      return this.reload();
    });
    return this.queued;
  }

  async stop(): Promise<void> {
    this.stopSignal.abort();
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
    await Promise.all([...this.loops, this.running]);
  }

  status(): TableRulesStatus {
    const set = this.opts.schedule.current;
    return {
      table: this.opts.store.displayName,
      listening: this.listening,
      tableExists: this.tableExists,
      lastReadAt: this.lastReadAt?.toISOString() ?? null,
      lastError: this.lastError,
      version: set?.version ?? null,
      appliesFrom: set === undefined ? null : this.opts.store.formatPosition(set.from),
      rules: set?.rules.valid.map((r) => r.name) ?? [],
      invalid: set?.rules.invalid ?? [],
    };
  }

  private async read(): Promise<void> {
    const { store, schedule, context } = this.opts;
    try {
      const snapshot = await store.snapshot();
      this.tableExists = true;
      this.lastError = null;
      this.lastReadAt = new Date();
      const rules = checkRows(snapshot.rows, context);
      this.report(rules);
      this.installed(schedule.install(rules, snapshot.position, this.lastReadAt));
      this.firstRead();
    } catch (err) {
      if (isMissingTable(err)) {
        if (this.tableExists !== false) {
          this.log.warn(`the trigger rules table ${store.displayName} does not exist: rules from the table are off until it does; run \`pg-cloudevents setup\` (the leader also creates it when it starts)`);
        }
        this.tableExists = false;
        this.lastError = null;
        this.report(EMPTY);
        this.installed(schedule.install(EMPTY, 0n));
        this.firstRead();
        return;
      }
      const message = scrubSecrets(errorMessage(err));
      if (message !== this.lastError) this.log.warn({ err: message }, 'reading the trigger rules table failed; the rules in force stay, and the next read tries again');
      this.lastError = message;
    }
  }

  private installed(set: RuleSet | undefined): void {
    if (!set) return;
    this.log.info({
      version: set.version, appliesFrom: this.opts.store.formatPosition(set.from), rules: set.rules.valid.map((r) => r.name), invalid: set.rules.invalid.map((r) => r.name),
    }, 'trigger rules from the table: a new rule set is in force for changes committed from appliesFrom on');
  }

  /** Counts for pgce_trigger_rules, and each invalid row version's problems logged once. */
  private report(rules: TableRules): void {
    const seen = new Set<string>();
    for (const row of rules.invalid) {
      const key = `${row.name}@${row.updatedAt.getTime()}`;
      seen.add(key);
      if (!this.warned.has(key)) {
        this.log.warn({ rule: row.name, problems: row.problems }, `trigger rule ${JSON.stringify(row.name)} in ${this.opts.store.displayName} is invalid and ignored`);
      }
    }
    this.warned = seen;
    const active = rules.valid.filter((r) => r.rule.active).length;
    this.opts.lifecycle?.emit('triggers:rules', { origin: 'table', active, inactive: rules.valid.length - active, invalid: rules.invalid.length });
  }

  private async pollLoop(): Promise<void> {
    const { signal } = this.stopSignal;
    while (!signal.aborted) {
      try {
        await sleep(this.opts.reloadIntervalMs, signal);
      } catch {
        return;
      }
      await this.reload();
    }
  }

  /** One listening connection at a time; a lost one is closed before the next is opened. */
  private async listenLoop(): Promise<void> {
    const { signal } = this.stopSignal;
    const backoff = new Backoff(RECONNECT);
    while (!signal.aborted) {
      let client: Client | undefined;
      try {
        client = await this.listen();
        backoff.reset();
        // Notifications sent while no one listened are lost: read once now.
        void this.reload();
        await closed(client, signal);
      } catch (err) {
        if (!signal.aborted) this.log.warn({ err: scrubSecrets(errorMessage(err)) }, 'trigger rules listener: cannot listen');
      } finally {
        this.listening = false;
        if (client) {
          if (this.client === client) this.client = undefined;
          await client.end().catch(() => undefined);
        }
      }
      if (signal.aborted) return;
      const delay = backoff.next();
      this.log.warn({ retryInMs: delay }, 'trigger rules listener: connection lost; reconnecting (the table is re-read every reloadInterval meanwhile)');
      try {
        await sleep(delay, signal);
      } catch {
        return;
      }
    }
  }

  private async listen(): Promise<Client> {
    const client = new Client({
      connectionString: this.opts.connectionString, application_name: LISTENER_APPLICATION_NAME, keepAlive: true, connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    });
    client.on('error', () => undefined); // `closed` sees it end
    this.client = client;
    try {
      await client.connect();
      // After connecting, so an application_name in DATABASE_URL cannot hide the listener.
      await client.query(`SELECT set_config('application_name', $1, false)`, [LISTENER_APPLICATION_NAME]);
      client.on('notification', (n) => {
        if (n.channel === TRIGGER_RULES_CHANNEL) void this.reload();
      });
      await client.query(`LISTEN ${quoteIdent(TRIGGER_RULES_CHANNEL)}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      if (this.client === client) this.client = undefined;
      throw err;
    }
    this.listening = true;
    return client;
  }
}

/** Settles when the connection ends or fails, or `signal` aborts. */
function closed(client: Client, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      client.off('end', done);
      client.off('error', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    client.once('end', done);
    client.once('error', done);
    signal.addEventListener('abort', done, { once: true });
  });
}
