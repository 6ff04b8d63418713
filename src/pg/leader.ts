import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Client } from 'pg';
import { ErrorCodes, PgceError, errorMessage } from '../errors';
import type { Lifecycle, Role } from '../lifecycle';
import { logger, scrubSecrets } from '../logger';
import { connectError } from './db';
import { Backoff, sleep } from '../retry';

/**
 * Leader election between replicas: a session-level advisory lock held on a dedicated plain
 * connection. The lock is coordination, not the safety net: PostgreSQL lets only one walsender
 * use a slot at a time, so a replica that is late to notice it lost the lock cannot read the
 * slot alongside the new leader; it gets "replication slot ... is active" and retries.
 *
 * The lock key is the first 8 bytes of SHA-256(`pg-cloudevents:<slot>`) read as a signed
 * big-endian bigint (see `leaderLockKey`). PostgreSQL shows a bigint advisory key in pg_locks
 * split in two: `locktype = 'advisory'`, `classid` = the high 32 bits, `objid` = the low 32 bits,
 * `objsubid = 1`. The session's application_name is `pg-cloudevents leader <slot>`.
 */

export type { Role };

export interface LeaderElectorOptions {
  connectionString: string;
  slot: string;
  /** How often a standby tries the lock, and how often a leader checks its session is alive. */
  pollIntervalMs: number;
  lifecycle?: Lifecycle;
  /** Cap of the reconnect backoff (which starts at pollIntervalMs and doubles); default 10 s. */
  reconnectMaxMs?: number;
}

export interface LeaderElectorEvents {
  /** The lock's session died while this replica was leader: stop capturing at once. */
  lost: [error: PgceError];
  role: [role: Role];
  /** The session answered (true) or failed (false); on each change. */
  reachable: [reachable: boolean, error?: Error];
}

const TRY_LOCK_SQL = 'SELECT pg_try_advisory_lock($1::bigint) AS acquired';
const UNLOCK_SQL = 'SELECT pg_advisory_unlock($1::bigint)';
const ALIVE_SQL = 'SELECT 1';
/**
 * Set after connecting rather than as a startup parameter, so that an application_name in
 * DATABASE_URL cannot hide the leader from pg_stat_activity. The server-side keepalives make
 * PostgreSQL notice a vanished leader host (and release its lock) in about 5 + 2×3 = 11 s instead
 * of the OS default of hours; a killed process closes its socket and is noticed at once.
 */
const SESSION_SQL = `SELECT set_config('application_name', $1, false),
  set_config('tcp_keepalives_idle', '5', false),
  set_config('tcp_keepalives_interval', '2', false),
  set_config('tcp_keepalives_count', '3', false)`;
const CLIENT_KEEPALIVE_MS = 5_000;

/** The advisory lock key for `slot`: first 8 bytes of SHA-256(`pg-cloudevents:<slot>`), signed. */
export function leaderLockKey(slot: string): bigint {
  return createHash('sha256').update(`pg-cloudevents:${slot}`).digest().readBigInt64BE(0);
}

export function leaderApplicationName(slot: string): string {
  return `pg-cloudevents leader ${slot}`;
}

export class LeaderElector extends EventEmitter<LeaderElectorEvents> {
  private readonly log = logger('leader');
  private readonly key: string;
  private readonly appName: string;
  /** A check that gets no answer this long means the session is gone (a black-holed network). */
  private readonly checkTimeoutMs: number;
  private current: Role = 'starting';
  /** Whether the last query on the session (or the last attempt to open one) succeeded. */
  private answered?: boolean;
  private client?: Client;
  private running = false;
  private stopping = false;
  private loopDone?: Promise<void>;
  private stopped?: Promise<void>;
  /** Aborted by stop(): ends the wait between two polls at once. */
  private readonly stopSignal = new AbortController();
  private announcedStandby = false;
  /**
   * After losing the lock this replica does not contend again before this time (ms since epoch):
   * the standby that kept its session takes over; the one whose session just died is the less
   * likely to be healthy, and contending at once could win the lock straight back.
   */
  private contendAfter = 0;
  private readonly stopWaiters = new Set<() => void>();

  constructor(private readonly opts: LeaderElectorOptions) {
    super();
    this.key = leaderLockKey(opts.slot).toString();
    this.appName = leaderApplicationName(opts.slot);
    this.checkTimeoutMs = Math.max(5_000, 3 * opts.pollIntervalMs);
  }

  get role(): Role {
    return this.current;
  }

  /** Whether the database answered the session's last query; undefined before the first one. */
  get reachable(): boolean | undefined {
    return this.answered;
  }

  /**
   * Begins contending in the background. The role is `starting` until the first attempt at the
   * lock is answered, then `leader` or `standby`.
   */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop();
  }

  /** Resolves once this replica holds the lock; rejects when `signal` aborts or on stop(). */
  waitForLeadership(signal?: AbortSignal): Promise<void> {
    if (this.current === 'leader') return Promise.resolve();
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.stopping) return Promise.reject(stoppedError());
    return new Promise<void>((resolve, reject) => {
      const cleanup = () => {
        this.off('role', onRole);
        this.stopWaiters.delete(onStopped);
        signal?.removeEventListener('abort', onAbort);
      };
      const onRole = (role: Role) => {
        if (role !== 'leader') return;
        cleanup();
        resolve();
      };
      const onAbort = () => {
        cleanup();
        reject(signal!.reason);
      };
      const onStopped = () => {
        cleanup();
        reject(stoppedError());
      };
      this.on('role', onRole);
      this.stopWaiters.add(onStopped);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Releases the lock (when held) and closes the session; later calls share the first one's work. */
  stop(): Promise<void> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    this.stopSignal.abort();
    for (const waiter of [...this.stopWaiters]) waiter();
    await this.loopDone;
    const client = this.client;
    this.client = undefined;
    if (client) {
      if (this.current === 'leader') {
        await withTimeout(client.query(UNLOCK_SQL, [this.key]), this.checkTimeoutMs).catch((err) =>
          this.log.warn({ err: errorMessage(err) }, 'could not release the leader lock; closing its session releases it'),
        );
      }
      await withTimeout(client.end(), this.checkTimeoutMs).catch(() => undefined);
    }
    this.setRole('standby');
  }

  private async loop(): Promise<void> {
    // Reconnecting backs off from the poll interval, doubling up to reconnectMaxMs.
    const backoff = new Backoff({ kind: 'exponential', delayMs: this.opts.pollIntervalMs, maxMs: this.opts.reconnectMaxMs ?? 10_000 });
    while (!this.stopping) {
      if (!this.client) {
        try {
          this.client = await this.open();
          backoff.reset();
        } catch (err) {
          this.setReachable(false, err);
          const delay = backoff.next();
          this.log.warn({ err: errorMessage(err), retryInMs: delay }, 'leader election: cannot connect; retrying');
          await this.sleep(delay);
          continue;
        }
      }
      const client = this.client;
      try {
        if (this.current === 'leader') await withTimeout(client.query(ALIVE_SQL), this.checkTimeoutMs);
        else if (Date.now() >= this.contendAfter) await this.contend(client);
        else await withTimeout(client.query(ALIVE_SQL), this.checkTimeoutMs);
        this.setReachable(true);
      } catch (err) {
        this.sessionGone(client, err);
      }
      await this.sleep(this.opts.pollIntervalMs);
    }
  }

  private async open(): Promise<Client> {
    const client = new Client({
      connectionString: this.opts.connectionString,
      application_name: this.appName,
      keepAlive: true,
      keepAliveInitialDelayMillis: CLIENT_KEEPALIVE_MS,
      connectionTimeoutMillis: this.checkTimeoutMs,
    });
    // Either one means the session, and with it the lock, is gone.
    client.on('error', (err) => this.sessionGone(client, err));
    client.on('end', () => this.sessionGone(client, new Error('the connection closed')));
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      throw connectError(err, this.opts.connectionString);
    }
    try {
      await withTimeout(client.query(SESSION_SQL, [this.appName]), this.checkTimeoutMs);
    } catch (err) {
      void client.end().catch(() => undefined);
      throw err;
    }
    return client;
  }

  private async contend(client: Client): Promise<void> {
    const { rows } = await withTimeout(client.query(TRY_LOCK_SQL, [this.key]), this.checkTimeoutMs);
    if (rows[0]?.acquired === true) {
      // stop() may have begun while the query ran; it releases the lock since the role says leader.
      this.announcedStandby = false;
      this.log.info({ slot: this.opts.slot, lockKey: this.key }, 'became the leader');
      this.setRole('leader');
    } else {
      this.setRole('standby');
      if (this.announcedStandby) return;
      this.announcedStandby = true;
      this.log.info({ slot: this.opts.slot, lockKey: this.key }, 'standing by: another replica holds the lock');
    }
  }

  /** Called from the client's events and from failed queries; only the first call per client acts. */
  private sessionGone(client: Client, err: unknown): void {
    if (this.client !== client || this.stopping) return;
    this.client = undefined;
    client.removeAllListeners('end');
    client.on('error', () => undefined);
    void client.end().catch(() => undefined);
    this.setReachable(false, err);
    if (this.current !== 'leader') return;
    const error = new PgceError(
      ErrorCodes.DB_CONNECT,
      `lost the leader lock of slot ${this.opts.slot}: its session ended (${scrubSecrets(errorMessage(err))})`,
      { retriable: true, cause: err },
    );
    this.log.warn({ err: error.message }, 'lost the leader lock; standing by');
    // Two of our polls: a standby polling at the same interval tries at least once before us.
    this.contendAfter = Date.now() + 2 * this.opts.pollIntervalMs;
    this.setRole('standby');
    this.emit('lost', error);
  }

  private setReachable(reachable: boolean, err?: unknown): void {
    if (reachable === this.answered) return;
    this.answered = reachable;
    // Scrubbed: it reaches /status and /readyz.
    const error = reachable ? undefined : new Error(scrubSecrets(errorMessage(err)));
    this.opts.lifecycle?.emit('leader:database', { reachable, error });
    this.emit('reachable', reachable, error);
  }

  private setRole(role: Role): void {
    if (role === this.current) return;
    this.current = role;
    this.opts.lifecycle?.emit('leader:role', { role });
    this.emit('role', role);
  }

  /** Waits `ms`, or less when stop() is called meanwhile; never rejects. */
  private sleep(ms: number): Promise<void> {
    return sleep(ms, this.stopSignal.signal).catch(() => undefined);
  }
}

function stoppedError(): Error {
  return new DOMException('leader election stopped', 'AbortError');
}

/** Rejects when `promise` has not settled within `ms`; the late settlement is ignored. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new PgceError(ErrorCodes.DB_CONNECT, `no answer from PostgreSQL within ${ms} ms`, { retriable: true })),
      ms,
    );
  });
  promise.catch(() => undefined);
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
