import { formatLsn } from '../sources/change';
import { errorMessage } from '../errors';
import type { Lifecycle, Role } from '../lifecycle';
import { scrubSecrets } from '../logger';
import { subscribe, unsubscribe, type LifecycleHandlers } from '../lifecycle';

export type { Role };

export interface SinkStatus {
  describe: string;
  configured: boolean;
  /** False after a failed attempt, true again after a delivery. */
  healthy: boolean;
  /** HTTP status of the last failed attempt; cleared by a delivery. */
  lastStatus?: number;
  consecutiveFailures: number;
}

/** One destination's deliveries in /status (`destinations`, keyed by its name). */
export interface DestinationStatus {
  delivered: number;
  /** Failed attempts. */
  failed: number;
  deadLettered: number;
  lastDeliveredAt: string | null;
  /** False after a failed attempt, true again after a delivery. */
  healthy: boolean;
  consecutiveFailures: number;
  /** The answer code of the last failed attempt; cleared by a delivery. */
  lastStatus?: number;
  /** The last failed attempt's message (scrubbed). */
  lastError: string | null;
}

/** Kept per destination name; made once per name, then updated in place. */
interface DestinationState {
  delivered: number;
  failed: number;
  deadLettered: number;
  lastDeliveredAt: number | null;
  consecutiveFailures: number;
  lastStatus: number | undefined;
  lastError: Error | null;
}

/** What GET /status answers (before extra status is merged in): plain JSON, LSNs as strings. */
export interface StatusReport {
  role: Role;
  /** What /readyz answers: ready, else the reasons. */
  ready: boolean;
  notReadyReasons: string[];
  /**
   * The leader election's connection: reachable is null without election (leader.enabled false)
   * or before its first query; lastError is the last failure's message (scrubbed).
   */
  database: { reachable: boolean | null; lastError: string | null };
  startedAt: string;
  capture: {
    connected: boolean;
    slot: string | null;
    publication: string | null;
    lastAcknowledgedLsn: string | null;
    lastWalEnd: string | null;
  };
  /** failed counts failed attempts; deadLettered counts events given up on and stored. */
  counts: { captured: number; delivered: number; failed: number; deadLettered: number };
  lastDeliveredAt: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
  /** The default destination's sink (as before destinations were reported one by one). */
  sink: SinkStatus;
  /** Per destination name (README "Destination names"): its deliveries, failures and health. */
  destinations: Record<string, DestinationStatus>;
}

export interface StatusTrackerOptions {
  /** The sink's `describe()` (already free of secrets; scrubbed again anyway). */
  sink?: string;
  sinkConfigured?: boolean;
}

/** Pipeline state for /status and /readyz, kept current by lifecycle events only. */
export class StatusTracker {
  /** `leader` by default: without election (or outside `run`) this process is the one capturing. */
  private role: Role = 'leader';
  private databaseReachable: boolean | null = null;
  private databaseError: string | null = null;
  private readonly startedAt = new Date();
  private connected = false;
  private slot: string | null = null;
  private publication: string | null = null;
  private lastAcknowledgedLsn: bigint | null = null;
  private lastWalEnd: bigint | null = null;
  private readonly counts = { captured: 0, delivered: 0, failed: 0, deadLettered: 0 };
  private lastDeliveredAt: number | null = null;
  private lastError: { message: string; at: Date } | null = null;
  private readonly sink: SinkStatus;
  private readonly destinations = new Map<string, DestinationState>();
  private readonly handlers: LifecycleHandlers;

  constructor(private readonly lifecycle: Lifecycle, options: StatusTrackerOptions = {}) {
    this.sink = {
      describe: options.sink ?? '',
      configured: options.sinkConfigured ?? options.sink !== undefined,
      healthy: true,
      consecutiveFailures: 0,
    };
    this.handlers = {
      'capture:connected': ({ slot, publication }) => {
        this.connected = true;
        this.slot = slot;
        this.publication = publication;
      },
      'capture:disconnected': ({ error }) => {
        this.connected = false;
        if (error) this.recordError(error);
      },
      'capture:change': () => {
        this.counts.captured += 1;
      },
      'capture:acknowledged': ({ lsn }) => {
        this.lastAcknowledgedLsn = lsn;
      },
      'capture:walEnd': ({ lsn }) => {
        this.lastWalEnd = lsn;
      },
      'delivery:delivered': ({ destination }) => {
        // Per event: a number, not a Date, and no `delete` unless there is something to delete.
        this.counts.delivered += 1;
        this.lastDeliveredAt = Date.now();
        const d = this.destination(destination);
        d.delivered += 1;
        d.lastDeliveredAt = this.lastDeliveredAt;
        d.consecutiveFailures = 0;
        d.lastStatus = undefined;
        this.sink.healthy = true;
        this.sink.consecutiveFailures = 0;
        if (this.sink.lastStatus !== undefined) delete this.sink.lastStatus;
      },
      'delivery:deadLettered': ({ destination }) => {
        this.counts.deadLettered += 1;
        this.destination(destination).deadLettered += 1;
      },
      'leader:role': ({ role }) => {
        this.role = role;
        // A term that ends stops capture without a disconnect event; a leader again must reconnect.
        if (role !== 'leader') this.connected = false;
      },
      'leader:database': ({ reachable, error }) => {
        this.databaseReachable = reachable;
        if (error) this.databaseError = scrubSecrets(errorMessage(error));
      },
      'delivery:attemptFailed': ({ destination, error, status }) => {
        this.counts.failed += 1;
        const d = this.destination(destination);
        d.failed += 1;
        d.consecutiveFailures += 1;
        d.lastStatus = status;
        d.lastError = error;
        this.sink.healthy = false;
        this.sink.consecutiveFailures += 1;
        if (status === undefined) delete this.sink.lastStatus;
        else this.sink.lastStatus = status;
        this.recordError(error);
      },
    };
    subscribe(lifecycle, this.handlers);
  }

  setRole(role: Role): void {
    this.role = role;
  }

  setSink(describe: string, configured = true): void {
    this.sink.describe = describe;
    this.sink.configured = configured;
  }

  /**
   * Why the process is not ready; empty when it is. Ready means healthy and able to lead: a
   * standby whose database answers is ready, so a rolling update (the new pod stands by until the
   * old one, which holds the lock, is gone) can complete; the leader must also be capturing.
   */
  notReadyReasons(): string[] {
    const reasons: string[] = [];
    if (this.role === 'starting') reasons.push('starting: leader election has not had an answer from the database yet');
    if (this.databaseReachable === false) reasons.push(`the database is not reachable (${this.databaseError ?? 'no answer'})`);
    if (this.role === 'leader' && !this.connected) reasons.push('capture is not connected');
    if (!this.sink.configured) reasons.push('no sink is configured');
    return reasons;
  }

  ready(): boolean {
    return this.notReadyReasons().length === 0;
  }

  snapshot(): StatusReport {
    const notReadyReasons = this.notReadyReasons();
    return {
      role: this.role,
      ready: notReadyReasons.length === 0,
      notReadyReasons,
      database: { reachable: this.databaseReachable, lastError: this.databaseError },
      startedAt: this.startedAt.toISOString(),
      capture: {
        connected: this.connected,
        slot: this.slot,
        publication: this.publication,
        lastAcknowledgedLsn: this.lastAcknowledgedLsn === null ? null : formatLsn(this.lastAcknowledgedLsn),
        lastWalEnd: this.lastWalEnd === null ? null : formatLsn(this.lastWalEnd),
      },
      counts: { ...this.counts },
      lastDeliveredAt: this.lastDeliveredAt === null ? null : new Date(this.lastDeliveredAt).toISOString(),
      lastError: this.lastError?.message ?? null,
      lastErrorAt: this.lastError?.at.toISOString() ?? null,
      sink: { ...this.sink, describe: scrubSecrets(this.sink.describe) },
      destinations: Object.fromEntries([...this.destinations].map(([name, d]) => [name, destinationStatus(d)])),
    };
  }

  private destination(name: string): DestinationState {
    let d = this.destinations.get(name);
    if (!d) {
      d = { delivered: 0, failed: 0, deadLettered: 0, lastDeliveredAt: null, consecutiveFailures: 0, lastStatus: undefined, lastError: null };
      this.destinations.set(name, d);
    }
    return d;
  }

  /** Stop following the lifecycle. */
  dispose(): void {
    unsubscribe(this.lifecycle, this.handlers);
  }

  private recordError(error: unknown): void {
    // Message only: stacks and causes may carry connection strings or payloads.
    this.lastError = { message: scrubSecrets(errorMessage(error)), at: new Date() };
  }
}

/** The report of one destination: the error's message scrubbed only when asked for. */
function destinationStatus(d: DestinationState): DestinationStatus {
  const out: DestinationStatus = {
    delivered: d.delivered,
    failed: d.failed,
    deadLettered: d.deadLettered,
    lastDeliveredAt: d.lastDeliveredAt === null ? null : new Date(d.lastDeliveredAt).toISOString(),
    healthy: d.consecutiveFailures === 0,
    consecutiveFailures: d.consecutiveFailures,
    lastError: d.lastError === null ? null : scrubSecrets(errorMessage(d.lastError)),
  };
  if (d.lastStatus !== undefined) out.lastStatus = d.lastStatus;
  return out;
}
