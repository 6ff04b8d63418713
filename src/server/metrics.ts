import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { isRetriable } from '../errors';
import { subscribe, unsubscribe, type Lifecycle, type LifecycleHandlers, type Role } from '../lifecycle';
import { INSTANCE_STATUSES, type InstanceStatus } from '../workflows/model';

/**
 * Prometheus metrics fed only by lifecycle events (graphile-worker's pattern: capture and delivery
 * never touch a metric directly). Each call makes its own Registry so tests and several pipelines
 * in one process never collide on metric names.
 */
export interface PipelineMetrics {
  registry: Registry;
  /** WAL the slot holds back on the server (pg_replication_slots), polled by the caller. */
  setSlotRetainedBytes(n: number): void;
  /**
   * pg_replication_slots' wal_status (reserved, extended, unreserved, lost; null: no slot) and
   * safe_wal_size in bytes (null: max_slot_wal_keep_size is unlimited, or the slot is lost).
   */
  setSlotWalStatus(status: string | null, safeWalSizeBytes: number | null): void;
  /** Rows in the dead-letter table, polled by the caller. */
  setDeadLetterCount(n: number): void;
  /** Where the in-flight/buffer gauges read from, at scrape time. */
  bindDeliveryStats(stats: () => DeliveryStats): void;
  /** Where the workflow gauges (open sessions, instances by status) read from, at scrape time. */
  bindWorkflowStats(stats: () => Promise<ReadonlyMap<string, WorkflowGauges>>): void;
  /** Where the running backfills' gauges (rows done, remaining, rate) read from, at scrape time. */
  bindBackfills(running: () => readonly BackfillGauges[]): void;
  /** Unsubscribe from the lifecycle (the registry keeps its last values). */
  dispose(): void;
}

export interface DeliveryStats {
  inFlight: number;
  /** Sends in flight per destination name (the engine's lanes); read at scrape time. */
  inFlightByDestination?: ReadonlyMap<string, number>;
  buffered: number;
  bufferedBytes: number;
  oldestUndeliveredCommitTime?: Date;
}

/** One workflow's gauges over all its sessions (src/workflows/inspect.ts, workflowStats). */
export interface WorkflowGauges {
  sessionsOpen: number;
  instances: Record<InstanceStatus, number>;
}

/** One running backfill as its gauges read it (src/sources/backfill/coordinator.ts, status). */
export interface BackfillGauges {
  id: string;
  table: string;
  rowsDone: number;
  remaining: number | null;
  rate: number;
}

const PREFIX = 'pgce_';

// Commit → confirmed delivery spans milliseconds (local sink) to a minute (sink outage, retries).
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const ATTEMPT_BUCKETS = [1, 2, 3, 5, 8, 13, 21];
// A session's first input to a run: seconds (both rows in one transaction) to days (an order paid, then packed).
const WORKFLOW_WAIT_BUCKETS = [0.1, 1, 10, 60, 600, 3600, 6 * 3600, 24 * 3600, 7 * 24 * 3600];
/** pg_replication_slots.wal_status values, each a series of pgce_slot_wal_status (1 for the current one). */
export const WAL_STATUSES = ['reserved', 'extended', 'unreserved', 'lost'] as const;
/** Each a series of pgce_role (1 for the replica's current role). */
export const ROLES: readonly Role[] = ['starting', 'standby', 'leader'];


export function createMetrics(lifecycle: Lifecycle): PipelineMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: PREFIX });
  const registers = [registry];

  // The two per-event counters count in plain maps and reach prom-client at scrape time: its
  // label hashing and validation per increment were a few percent of the CPU at full speed.
  const capturedCounts = new LabelledCounts();
  const deliveredCounts = new LabelledCounts();
  new Counter({
    name: `${PREFIX}events_captured_total`,
    help: 'Changes decoded from the replication stream.',
    labelNames: ['table', 'operation'] as const,
    registers,
    collect() {
      capturedCounts.flush((table, operation, n) => this.inc({ table, operation }, n));
    },
  });
  // Delivery metrics carry `destination` (README "Destination names"): its name, as the delivery
  // holds it, so labelling allocates nothing per event.
  new Counter({
    name: `${PREFIX}events_delivered_total`,
    help: 'Events the sink accepted, by destination and CloudEvent type.',
    labelNames: ['destination', 'type'] as const,
    registers,
    collect() {
      deliveredCounts.flush((destination, type, n) => this.inc({ destination, type }, n));
    },
  });
  const skipped = new Counter({
    name: `${PREFIX}events_skipped_total`,
    help: 'Deliveries done without sending, by destination: a trigger action whose `when` was false.',
    labelNames: ['destination'] as const,
    registers,
  });
  const failures = new Counter({
    name: `${PREFIX}delivery_failures_total`,
    help: 'Failed delivery attempts, by destination, HTTP status (or "network") and whether the failure is retriable.',
    labelNames: ['destination', 'status', 'retriable'] as const,
    registers,
  });
  const latency = new Histogram({
    name: `${PREFIX}delivery_latency_seconds`,
    help: 'Time from the transaction commit to the sink accepting the event, by destination.',
    labelNames: ['destination'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const attempts = new Histogram({
    name: `${PREFIX}delivery_attempts`,
    help: 'Attempts it took to deliver an event, by destination.',
    labelNames: ['destination'] as const,
    buckets: ATTEMPT_BUCKETS,
    registers,
  });
  // One prom-client child per destination, made once: observing through it skips the label hashing.
  const latencyOf = perDestination((d) => latency.labels(d));
  const attemptsOf = perDestination((d) => attempts.labels(d));
  const slotLag = new Gauge({
    name: `${PREFIX}slot_lag_bytes`,
    help: 'Server WAL end minus the last acknowledged LSN.',
    registers,
  });
  const ackLsn = new Gauge({
    name: `${PREFIX}acknowledged_lsn`,
    help: 'Last LSN confirmed to the replication slot, as a number.',
    registers,
  });
  const connected = new Gauge({
    name: `${PREFIX}capture_connected`,
    help: '1 while the replication stream is open, else 0.',
    registers,
  });
  const reconnects = new Counter({
    name: `${PREFIX}capture_reconnects_total`,
    help: 'Replication connections opened after the first one.',
    registers,
  });
  const retained = new Gauge({
    name: `${PREFIX}slot_retained_wal_bytes`,
    help: 'WAL retained by the replication slot on the server (pg_replication_slots).',
    registers,
  });
  const walStatus = new Gauge({
    name: `${PREFIX}slot_wal_status`,
    help: 'pg_replication_slots.wal_status of the slot: 1 for the current status, 0 for the others; lost = invalidated.',
    labelNames: ['status'] as const,
    registers,
  });
  const safeWalSize = new Gauge({
    name: `${PREFIX}slot_safe_wal_size_bytes`,
    help: 'WAL that may still be written before max_slot_wal_keep_size invalidates the slot (NaN: no limit, or lost).',
    registers,
  });
  safeWalSize.set(NaN);
  const answerCounts = new LabelledCounts();
  new Counter({
    name: `${PREFIX}sink_answers_total`,
    help: 'Answers from the sinks by destination and status code (or "network"), successes and failures alike.',
    labelNames: ['destination', 'status'] as const,
    registers,
    collect() {
      answerCounts.flush((destination, status, n) => this.inc({ destination, status }, n));
    },
  });
  const countAnswer = (destination: string, status: number | undefined, otherwise: string) =>
    answerCounts.add(destination, status === undefined ? otherwise : String(status));
  const deadLettered = new Counter({
    name: `${PREFIX}dead_lettered_total`,
    help: 'Events that failed for good and were stored as dead letters, by destination.',
    labelNames: ['destination'] as const,
    registers,
  });
  const undecodable = new Counter({
    name: `${PREFIX}undecodable_changes_total`,
    help: 'Changes that could not be decoded or built into an event, dead-lettered with their raw row.',
    registers,
  });
  const deadLetters = new Gauge({
    name: `${PREFIX}dead_letters`,
    help: 'Rows in the dead-letter table.',
    registers,
  });
  const role = new Gauge({
    name: `${PREFIX}role`,
    help: 'Leader election: 1 for the current role (starting, standby, leader), 0 for the others; sum over replicas of role="leader" should be 1.',
    labelNames: ['role'] as const,
    registers,
  });
  const heartbeats = new Counter({
    name: `${PREFIX}heartbeats_total`,
    help: 'Heartbeat messages written to keep the slot moving.',
    registers,
  });
  const triggerRules = new Gauge({
    name: `${PREFIX}trigger_rules`,
    help: 'Trigger rules by origin (file, table) and state (active, inactive, invalid: a table row that fails validation, ignored).',
    labelNames: ['origin', 'state'] as const,
    registers,
  });
  const workflowInputs = new Counter({
    name: `${PREFIX}workflow_inputs_total`,
    help: 'Workflow inputs fired into Redis, by workflow, input and whether it was applied (false: a redelivered change, already applied).',
    labelNames: ['workflow', 'input', 'applied'] as const,
    registers,
  });
  const workflowRuns = new Counter({
    name: `${PREFIX}workflow_runs_total`,
    help: 'Workflow runs that ended, by workflow, task and outcome (finished; failed; replayed: failed and retried as a new instance; stale: taken over, its outcome dropped).',
    labelNames: ['workflow', 'task', 'outcome'] as const,
    registers,
  });
  const workflowWait = new Histogram({
    name: `${PREFIX}workflow_input_to_run_seconds`,
    help: "Time from a session's first input to the start of a run (first attempts only), by workflow and task.",
    labelNames: ['workflow', 'task'] as const,
    buckets: WORKFLOW_WAIT_BUCKETS,
    registers,
  });
  let workflowStats: (() => Promise<ReadonlyMap<string, WorkflowGauges>>) | undefined;
  // Over all sessions in Redis, read at scrape time (one SCAN per workflow, cached by the runtime):
  // every replica reports the same values; aggregate with max, not sum.
  new Gauge({
    name: `${PREFIX}workflow_sessions_open`,
    help: 'Workflow sessions with an instance that is not resolved (failed counts as open), by workflow; the same on every replica.',
    labelNames: ['workflow'] as const,
    registers,
    async collect() {
      const all = await workflowStats?.().catch(() => undefined);
      if (!all) return;
      for (const [workflow, s] of all) this.set({ workflow }, s.sessionsOpen);
    },
  });
  new Gauge({
    name: `${PREFIX}workflow_instances`,
    help: 'Workflow instances by workflow and status (unstarted, scheduled, running, finished, failed, replayed, skipped, abandoned); the same on every replica.',
    labelNames: ['workflow', 'status'] as const,
    registers,
    async collect() {
      const all = await workflowStats?.().catch(() => undefined);
      if (!all) return;
      for (const [workflow, s] of all) for (const status of INSTANCE_STATUSES) this.set({ workflow, status }, s.instances[status]);
    },
  });
  // --- backfill (README "Backfill") ---
  const backfillRows = new Counter({
    name: `${PREFIX}backfill_rows_total`,
    help: 'Rows read by backfills in delivered chunks, by table and outcome (emitted; superseded: a live change of the row came while its chunk was open, so the live event carries it).',
    labelNames: ['table', 'outcome'] as const,
    registers,
  });
  const backfillRedone = new Counter({
    name: `${PREFIX}backfill_chunks_redone_total`,
    help: 'Backfill chunks read again (the stream restarted, the table was truncated or changed shape), by table.',
    labelNames: ['table'] as const,
    registers,
  });
  const backfillsFinished = new Counter({
    name: `${PREFIX}backfills_finished_total`,
    help: 'Backfills that ended on this replica, by state (done, cancelled, failed).',
    labelNames: ['state'] as const,
    registers,
  });
  let backfills: (() => readonly BackfillGauges[]) | undefined;
  const backfillGauge = (name: string, help: string, read: (b: BackfillGauges) => number | null) => new Gauge({
    name: `${PREFIX}${name}`,
    help,
    labelNames: ['id', 'table'] as const,
    registers,
    collect() {
      // Only the backfills running now: a finished one drops out.
      this.reset();
      for (const b of backfills?.() ?? []) {
        const v = read(b);
        if (v !== null) this.set({ id: b.id, table: b.table }, v);
      }
    },
  });
  backfillGauge('backfill_rows_done', 'Rows a running backfill has read and delivered so far.', (b) => b.rowsDone);
  backfillGauge('backfill_rows_remaining', "A running backfill's rows left, from the planner's estimate.", (b) => b.remaining);
  backfillGauge('backfill_rows_per_second', 'Rows per second a running backfill reads (since this leader took it up).', (b) => b.rate);
  // --- end backfill ---
  let stats: (() => DeliveryStats) | undefined;
  const fromStats = (name: string, help: string, read: (s: DeliveryStats) => number) =>
    new Gauge({
      name: `${PREFIX}${name}`,
      help,
      registers,
      collect() {
        if (stats) this.set(read(stats()));
      },
    });
  new Gauge({
    name: `${PREFIX}delivery_in_flight`,
    help: 'Events (or batches) being sent now, by destination.',
    labelNames: ['destination'] as const,
    registers,
    collect() {
      if (!stats) return;
      // Every lane of the running round, idle ones at 0; a destination no longer routed to drops out.
      this.reset();
      for (const [destination, n] of stats().inFlightByDestination ?? []) this.set({ destination }, n);
    },
  });
  fromStats('delivery_buffered_events', 'Events read from the slot and not yet delivered.', (s) => s.buffered);
  fromStats('delivery_buffered_bytes', 'Approximate bytes of the buffered events.', (s) => s.bufferedBytes);
  fromStats('oldest_undelivered_seconds', 'Age (since commit) of the oldest event not yet delivered; 0 when none.', (s) =>
    s.oldestUndeliveredCommitTime ? Math.max(0, (Date.now() - s.oldestUndeliveredCommitTime.getTime()) / 1000) : 0);
  connected.set(0);

  let walEnd: bigint | undefined;
  let acknowledged: bigint | undefined;
  let connections = 0;
  const updateLag = () => {
    if (walEnd === undefined || acknowledged === undefined) return;
    // The ack can briefly pass the last walEnd we saw (keepalive order); lag is never negative.
    slotLag.set(walEnd > acknowledged ? Number(walEnd - acknowledged) : 0);
  };

  const handlers: LifecycleHandlers = {
    'capture:change': ({ change }) => {
      // Application events count under their prefix (there is no table).
      capturedCounts.add(change.kind === 'message' ? change.prefix : `${change.relation.schema}.${change.relation.table}`, change.kind);
    },
    'capture:connected': () => {
      connections += 1;
      if (connections > 1) reconnects.inc();
      connected.set(1);
    },
    'capture:disconnected': () => connected.set(0),
    'capture:walEnd': ({ lsn }) => {
      walEnd = lsn;
      updateLag();
    },
    'capture:acknowledged': ({ lsn }) => {
      acknowledged = lsn;
      ackLsn.set(Number(lsn));
      updateLag();
    },
    'delivery:delivered': ({ event, destination, attempts: n, latencyMs, status }) => {
      deliveredCounts.add(destination, event.type);
      countAnswer(destination, status, 'ok');
      latencyOf(destination).observe(Math.max(0, latencyMs) / 1000);
      attemptsOf(destination).observe(n);
    },
    'delivery:deadLettered': ({ destination }) => deadLettered.inc({ destination }),
    'delivery:skipped': ({ destination }) => skipped.inc({ destination }),
    'capture:undecodable': () => undecodable.inc(),
    'capture:heartbeat': () => heartbeats.inc(),
    'triggers:rules': ({ origin, active, inactive, invalid }) => {
      triggerRules.set({ origin, state: 'active' }, active);
      triggerRules.set({ origin, state: 'inactive' }, inactive);
      triggerRules.set({ origin, state: 'invalid' }, invalid);
    },
    'leader:role': ({ role: current }) => {
      for (const r of ROLES) role.set({ role: r }, r === current ? 1 : 0);
      // Only the leader captures; a term that ends stops capture without a disconnect event.
      if (current !== 'leader') connected.set(0);
    },
    'workflow:input': ({ workflow, input, applied }) => workflowInputs.inc({ workflow, input, applied: String(applied) }),
    'workflow:runStarted': ({ workflow, task, attempt, sinceFirstInputMs }) => {
      if (attempt === 1) workflowWait.observe({ workflow, task }, Math.max(0, sinceFirstInputMs) / 1000);
    },
    'workflow:runEnded': ({ workflow, task, outcome }) => workflowRuns.inc({ workflow, task, outcome }),
    'backfill:chunk': ({ table, emitted, superseded }) => {
      backfillRows.inc({ table, outcome: 'emitted' }, emitted);
      backfillRows.inc({ table, outcome: 'superseded' }, superseded);
    },
    'backfill:redo': ({ table }) => backfillRedone.inc({ table }),
    'backfill:finished': ({ state }) => backfillsFinished.inc({ state }),
    'delivery:attemptFailed': ({ destination, error, status }) => {
      countAnswer(destination, status, 'network');
      failures.inc({ destination, status: status === undefined ? 'network' : String(status), retriable: String(isRetriable(error)) });
    },
  };
  subscribe(lifecycle, handlers);

  return {
    registry,
    setSlotRetainedBytes: (n) => retained.set(n),
    setSlotWalStatus: (status, safe) => {
      for (const s of WAL_STATUSES) walStatus.set({ status: s }, s === status ? 1 : 0);
      safeWalSize.set(safe ?? NaN);
    },
    setDeadLetterCount: (n) => deadLetters.set(n),
    bindDeliveryStats: (fn) => {
      stats = fn;
    },
    bindWorkflowStats: (fn) => {
      workflowStats = fn;
    },
    bindBackfills: (fn) => {
      backfills = fn;
    },
    dispose: () => unsubscribe(lifecycle, handlers),
  };
}

/** `make(name)` once per destination name, then the same value from a map lookup. */
function perDestination<T>(make: (destination: string) => T): (destination: string) => T {
  const byName = new Map<string, T>();
  return (destination) => {
    let value = byName.get(destination);
    if (value === undefined) byName.set(destination, (value = make(destination)));
    return value;
  };
}

/**
 * Counts by one or two label values (table and operation; destination and type; destination and status), in nested maps so an
 * increment allocates nothing; `flush` hands the increments since the last flush to prom-client.
 */
class LabelledCounts {
  private readonly counts = new Map<string, Map<string, number>>();

  add(first: string, second = ''): void {
    let inner = this.counts.get(first);
    if (!inner) this.counts.set(first, (inner = new Map()));
    inner.set(second, (inner.get(second) ?? 0) + 1);
  }

  flush(to: (first: string, second: string, n: number) => void): void {
    for (const [first, inner] of this.counts) {
      for (const [second, n] of inner) {
        if (n === 0) continue;
        to(first, second, n);
        inner.set(second, 0);
      }
    }
  }
}
