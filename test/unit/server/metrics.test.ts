import { expect } from 'chai';
import { Lifecycle } from '../../../src/lifecycle';
import { createMetrics, type PipelineMetrics } from '../../../src/server/metrics';
import { connect, deleteFrom, deliver, event, failAttempt, insertInto, relation, sample } from './fixtures';

describe('server/metrics', () => {
  let lifecycle: Lifecycle;
  let metrics: PipelineMetrics;
  const text = () => metrics.registry.metrics();

  beforeEach(() => {
    lifecycle = new Lifecycle();
    metrics = createMetrics(lifecycle);
  });
  afterEach(() => metrics.dispose());

  it('counts captured changes by schema.table and operation', async () => {
    const t = relation('public', 't');
    lifecycle.emit('capture:change', { change: insertInto(t, 1) });
    lifecycle.emit('capture:change', { change: insertInto(t, 2) });
    lifecycle.emit('capture:change', { change: deleteFrom(relation('shop', 'order'), 3) });
    const body = await text();
    expect(sample(body, 'pgce_events_captured_total', { table: 'public.t', operation: 'insert' })).to.equal(2);
    expect(sample(body, 'pgce_events_captured_total', { table: 'shop.order', operation: 'delete' })).to.equal(1);
    expect(sample(body, 'pgce_events_captured_total', { table: 'public.t', operation: 'delete' })).to.equal(undefined);
  });

  it('counts deliveries by destination and type and records latency (seconds) and attempts per destination', async () => {
    deliver(lifecycle, 'orm.post_save', 3, 1);
    deliver(lifecycle, 'orm.post_save', 40, 3);
    deliver(lifecycle, 'orm.post_delete', 2_000, 1);
    deliver(lifecycle, 'orm.post_save', 7, 2, 'trigger:orders/action:0');
    const body = await text();
    const d = { destination: 'default' };
    expect(body).to.include('pgce_events_delivered_total{destination="default",type="orm.post_save"} 2');
    expect(sample(body, 'pgce_events_delivered_total', { ...d, type: 'orm.post_save' })).to.equal(2);
    expect(sample(body, 'pgce_events_delivered_total', { ...d, type: 'orm.post_delete' })).to.equal(1);
    expect(sample(body, 'pgce_events_delivered_total', { destination: 'trigger:orders/action:0', type: 'orm.post_save' })).to.equal(1);
    expect(sample(body, 'pgce_delivery_latency_seconds_count', d)).to.equal(3);
    expect(sample(body, 'pgce_delivery_latency_seconds_sum', d)).to.be.closeTo(2.043, 1e-9);
    // 3 ms falls in the lowest bucket (5 ms); 40 ms is under 50 ms; 2 s only from 2.5 s up.
    expect(sample(body, 'pgce_delivery_latency_seconds_bucket', { le: '0.005', ...d })).to.equal(1);
    expect(sample(body, 'pgce_delivery_latency_seconds_bucket', { le: '0.05', ...d })).to.equal(2);
    expect(sample(body, 'pgce_delivery_latency_seconds_bucket', { le: '1', ...d })).to.equal(2);
    expect(sample(body, 'pgce_delivery_latency_seconds_bucket', { le: '60', ...d })).to.equal(3);
    expect(sample(body, 'pgce_delivery_attempts_count', d)).to.equal(3);
    expect(sample(body, 'pgce_delivery_attempts_sum', d)).to.equal(5);
    expect(sample(body, 'pgce_delivery_attempts_bucket', { le: '1', ...d })).to.equal(2);
    expect(sample(body, 'pgce_delivery_latency_seconds_count', { destination: 'trigger:orders/action:0' })).to.equal(1);
    expect(sample(body, 'pgce_delivery_attempts_sum', { destination: 'trigger:orders/action:0' })).to.equal(2);
  });

  it('counts failed attempts by destination, status (or network) and retriability', async () => {
    failAttempt(lifecycle, 503, true);
    failAttempt(lifecycle, 503, true);
    failAttempt(lifecycle, 400, false);
    failAttempt(lifecycle, undefined, true);
    failAttempt(lifecycle, 503, true, 'down', 'r');
    const body = await text();
    const d = { destination: 'default' };
    expect(sample(body, 'pgce_delivery_failures_total', { ...d, status: '503', retriable: 'true' })).to.equal(2);
    expect(sample(body, 'pgce_delivery_failures_total', { ...d, status: '400', retriable: 'false' })).to.equal(1);
    expect(sample(body, 'pgce_delivery_failures_total', { ...d, status: 'network', retriable: 'true' })).to.equal(1);
    expect(sample(body, 'pgce_delivery_failures_total', { destination: 'r', status: '503', retriable: 'true' })).to.equal(1);
  });

  it('slot lag is the last WAL end minus the last acknowledged LSN, never negative', async () => {
    lifecycle.emit('capture:walEnd', { lsn: 0x1_0000_2000n });
    lifecycle.emit('capture:acknowledged', { lsn: 0x1_0000_0800n });
    let body = await text();
    expect(sample(body, 'pgce_slot_lag_bytes')).to.equal(0x2000 - 0x800);
    expect(sample(body, 'pgce_acknowledged_lsn')).to.equal(0x1_0000_0800);

    lifecycle.emit('capture:walEnd', { lsn: 0x1_0000_3000n });
    body = await text();
    expect(sample(body, 'pgce_slot_lag_bytes')).to.equal(0x3000 - 0x800);

    // An acknowledgement past the last WAL end seen (keepalive ordering) reads as no lag.
    lifecycle.emit('capture:acknowledged', { lsn: 0x1_0000_4000n });
    body = await text();
    expect(sample(body, 'pgce_slot_lag_bytes')).to.equal(0);
  });

  it('tracks the connection and counts reconnects after the first connection', async () => {
    expect(sample(await text(), 'pgce_capture_connected')).to.equal(0);
    connect(lifecycle);
    expect(sample(await text(), 'pgce_capture_connected')).to.equal(1);
    expect(sample(await text(), 'pgce_capture_reconnects_total')).to.equal(0);
    lifecycle.emit('capture:disconnected', { error: new Error('gone'), retryInMs: 10 });
    expect(sample(await text(), 'pgce_capture_connected')).to.equal(0);
    connect(lifecycle);
    const body = await text();
    expect(sample(body, 'pgce_capture_connected')).to.equal(1);
    expect(sample(body, 'pgce_capture_reconnects_total')).to.equal(1);
  });

  it('retained WAL is set by the caller; default process metrics carry the prefix', async () => {
    metrics.setSlotRetainedBytes(123_456);
    const body = await text();
    expect(sample(body, 'pgce_slot_retained_wal_bytes')).to.equal(123_456);
    expect(sample(body, 'pgce_process_cpu_user_seconds_total')).to.be.a('number');
  });

  it('slot WAL status: one series per wal_status (1 for the current one) and safe_wal_size, NaN without a limit', async () => {
    let body = await text();
    expect(sample(body, 'pgce_slot_safe_wal_size_bytes')).to.be.NaN;
    metrics.setSlotWalStatus('unreserved', 1_048_576);
    body = await text();
    expect(sample(body, 'pgce_slot_wal_status', { status: 'unreserved' })).to.equal(1);
    for (const other of ['reserved', 'extended', 'lost']) expect(sample(body, 'pgce_slot_wal_status', { status: other }), other).to.equal(0);
    expect(sample(body, 'pgce_slot_safe_wal_size_bytes')).to.equal(1_048_576);
    metrics.setSlotWalStatus('lost', null);
    body = await text();
    expect(sample(body, 'pgce_slot_wal_status', { status: 'lost' })).to.equal(1);
    expect(sample(body, 'pgce_slot_wal_status', { status: 'unreserved' })).to.equal(0);
    expect(sample(body, 'pgce_slot_safe_wal_size_bytes')).to.be.NaN;
  });

  it('role: one series per role (starting, standby, leader), 1 for the current one', async () => {
    expect(sample(await text(), 'pgce_role', { role: 'leader' }), 'no series before the first role').to.equal(undefined);
    for (const current of ['starting', 'standby', 'leader', 'standby'] as const) {
      lifecycle.emit('leader:role', { role: current });
      const body = await text();
      for (const role of ['starting', 'standby', 'leader']) {
        expect(sample(body, 'pgce_role', { role }), `${role} while ${current}`).to.equal(role === current ? 1 : 0);
      }
    }
  });

  it('capture_connected drops to 0 when the replica stops leading (its term stopped capture)', async () => {
    lifecycle.emit('leader:role', { role: 'leader' });
    connect(lifecycle);
    expect(sample(await text(), 'pgce_capture_connected')).to.equal(1);
    lifecycle.emit('leader:role', { role: 'standby' });
    expect(sample(await text(), 'pgce_capture_connected')).to.equal(0);
  });

  it('each pipeline has its own registry', async () => {
    const other = createMetrics(new Lifecycle());
    try {
      lifecycle.emit('capture:change', { change: insertInto(relation('public', 't'), 1) });
      expect(sample(await other.registry.metrics(), 'pgce_events_captured_total', { table: 'public.t', operation: 'insert' }))
        .to.equal(undefined);
      expect(sample(await text(), 'pgce_events_captured_total', { table: 'public.t', operation: 'insert' })).to.equal(1);
    } finally {
      other.dispose();
    }
  });

  it('dispose stops following the lifecycle', async () => {
    metrics.dispose();
    lifecycle.emit('capture:change', { change: insertInto(relation('public', 't'), 1) });
    expect(sample(await text(), 'pgce_events_captured_total', { table: 'public.t', operation: 'insert' })).to.equal(undefined);
  });

  it('counts sink answers by status, dead letters and heartbeats', async () => {
    lifecycle.emit('delivery:delivered', { event: event('t'), destination: 'default', attempts: 1, latencyMs: 1, commitTime: new Date(), status: 202 });
    failAttempt(lifecycle, 503, true);
    failAttempt(lifecycle, undefined, true);
    lifecycle.emit('delivery:deadLettered', { event: event('t'), destination: 'default', error: new Error('400'), attempts: 1, status: 400 });
    lifecycle.emit('delivery:deadLettered', { event: event('t'), destination: 'r', error: new Error('400'), attempts: 1, status: 400 });
    lifecycle.emit('capture:heartbeat', { lsn: 1n });
    lifecycle.emit('capture:heartbeat', { lsn: 2n });
    metrics.setDeadLetterCount(7);
    lifecycle.emit('capture:undecodable', {
      change: { ...insertInto(relation('public', 'orders'), 1), raw: {}, error: new Error('unexpected value') },
    });
    const body = await text();
    expect(sample(body, 'pgce_sink_answers_total', { destination: 'default', status: '202' })).to.equal(1);
    expect(sample(body, 'pgce_sink_answers_total', { destination: 'default', status: '503' })).to.equal(1);
    expect(sample(body, 'pgce_sink_answers_total', { destination: 'default', status: 'network' })).to.equal(1);
    expect(sample(body, 'pgce_dead_lettered_total', { destination: 'default' })).to.equal(1);
    expect(sample(body, 'pgce_dead_lettered_total', { destination: 'r' })).to.equal(1);
    expect(sample(body, 'pgce_dead_letters')).to.equal(7);
    expect(sample(body, 'pgce_undecodable_changes_total')).to.equal(1);
    expect(sample(body, 'pgce_heartbeats_total')).to.equal(2);
  });

  it('reads in-flight, buffer and oldest-undelivered gauges from the delivery engine at scrape time', async () => {
    let stats = {
      inFlight: 3, inFlightByDestination: new Map([['default', 2], ['r', 1]]), buffered: 10, bufferedBytes: 4096,
      oldestUndeliveredCommitTime: new Date(Date.now() - 5000) as Date | undefined,
    };
    metrics.bindDeliveryStats(() => stats);
    let body = await text();
    expect(sample(body, 'pgce_delivery_in_flight', { destination: 'default' })).to.equal(2);
    expect(sample(body, 'pgce_delivery_in_flight', { destination: 'r' })).to.equal(1);
    expect(sample(body, 'pgce_delivery_buffered_events')).to.equal(10);
    expect(sample(body, 'pgce_delivery_buffered_bytes')).to.equal(4096);
    expect(sample(body, 'pgce_oldest_undelivered_seconds')).to.be.within(4.9, 10);
    stats = { inFlight: 0, inFlightByDestination: new Map([['default', 0]]), buffered: 0, bufferedBytes: 0, oldestUndeliveredCommitTime: undefined };
    body = await text();
    expect(sample(body, 'pgce_delivery_in_flight', { destination: 'default' })).to.equal(0);
    expect(sample(body, 'pgce_delivery_in_flight', { destination: 'r' }), 'no longer routed to').to.equal(undefined);
    expect(sample(body, 'pgce_oldest_undelivered_seconds')).to.equal(0);
  });

  it('workflows: inputs and runs from the lifecycle, first-input-to-run for first attempts, sessions and instances from Redis at scrape time', async () => {
    lifecycle.emit('workflow:input', { workflow: 'wf', session: '1', input: 'paid', applied: true, scheduled: [] });
    lifecycle.emit('workflow:input', { workflow: 'wf', session: '1', input: 'paid', applied: false, scheduled: [] });
    lifecycle.emit('workflow:runStarted', { workflow: 'wf', session: '1', instance: 't_a#0', task: 't_a', attempt: 1, sinceFirstInputMs: 2500 });
    lifecycle.emit('workflow:runStarted', { workflow: 'wf', session: '1', instance: 't_a#0', task: 't_a', attempt: 2, sinceFirstInputMs: 99_000 });
    lifecycle.emit('workflow:runEnded', { workflow: 'wf', session: '1', instance: 't_a#0', task: 't_a', outcome: 'finished', durationMs: 5 });
    lifecycle.emit('workflow:runEnded', { workflow: 'wf', session: '2', instance: 't_a#0', task: 't_a', outcome: 'replayed', durationMs: 5 });
    const instances = { unstarted: 1, scheduled: 0, running: 2, finished: 3, failed: 1, replayed: 0, skipped: 0, abandoned: 4 };
    metrics.bindWorkflowStats(async () => new Map([['wf', { sessionsOpen: 2, instances }]]));
    const body = await text();
    expect(sample(body, 'pgce_workflow_inputs_total', { workflow: 'wf', input: 'paid', applied: 'true' })).to.equal(1);
    expect(sample(body, 'pgce_workflow_inputs_total', { workflow: 'wf', input: 'paid', applied: 'false' })).to.equal(1);
    expect(sample(body, 'pgce_workflow_runs_total', { workflow: 'wf', task: 't_a', outcome: 'finished' })).to.equal(1);
    expect(sample(body, 'pgce_workflow_runs_total', { workflow: 'wf', task: 't_a', outcome: 'replayed' })).to.equal(1);
    expect(sample(body, 'pgce_workflow_input_to_run_seconds_count', { workflow: 'wf', task: 't_a' }), 'a takeover is not a new wait').to.equal(1);
    expect(sample(body, 'pgce_workflow_input_to_run_seconds_sum', { workflow: 'wf', task: 't_a' })).to.equal(2.5);
    expect(sample(body, 'pgce_workflow_sessions_open', { workflow: 'wf' })).to.equal(2);
    expect(sample(body, 'pgce_workflow_instances', { workflow: 'wf', status: 'abandoned' })).to.equal(4);
    expect(sample(body, 'pgce_workflow_instances', { workflow: 'wf', status: 'running' })).to.equal(2);
  });
});
