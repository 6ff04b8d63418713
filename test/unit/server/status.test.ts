import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import { formatLsn } from '../../../src/sources/change';
import { Lifecycle } from '../../../src/lifecycle';
import { StatusTracker } from '../../../src/server/status';
import { connect, deliver, event, failAttempt, insertInto, relation } from './fixtures';

describe('server/status', () => {
  let lifecycle: Lifecycle;
  let status: StatusTracker;

  beforeEach(() => {
    lifecycle = new Lifecycle();
    status = new StatusTracker(lifecycle, { sink: 'http://127.0.0.1:9/sink', sinkConfigured: true });
  });
  afterEach(() => status.dispose());

  it('is ready only while capture is connected and a sink is configured', () => {
    expect(status.ready()).to.equal(false);
    expect(status.notReadyReasons()).to.deep.equal(['capture is not connected']);
    connect(lifecycle);
    expect(status.ready()).to.equal(true);
    lifecycle.emit('capture:disconnected', { retryInMs: 100 });
    expect(status.ready()).to.equal(false);

    const noSink = new StatusTracker(lifecycle);
    connect(lifecycle);
    expect(noSink.ready()).to.equal(false);
    expect(noSink.notReadyReasons()).to.deep.equal(['no sink is configured']);
    noSink.setSink('console');
    expect(noSink.ready()).to.equal(true);
    noSink.dispose();
  });

  it('a standby is ready while the database answers its election queries; a leader also needs capture', () => {
    lifecycle.emit('leader:role', { role: 'starting' });
    expect(status.notReadyReasons()).to.deep.equal(['starting: leader election has not had an answer from the database yet']);

    lifecycle.emit('leader:database', { reachable: true });
    lifecycle.emit('leader:role', { role: 'standby' });
    expect(status.ready(), 'a standby does not capture, and needs not').to.equal(true);
    let report = status.snapshot();
    expect(report).to.deep.include({ role: 'standby', ready: true, notReadyReasons: [] });
    expect(report.database).to.deep.equal({ reachable: true, lastError: null });

    lifecycle.emit('leader:database', { reachable: false, error: new Error('connect ECONNREFUSED postgres://u:hunter2@h/db') });
    expect(status.notReadyReasons()).to.deep.equal(['the database is not reachable (connect ECONNREFUSED postgres://u:***@h/db)']);
    report = status.snapshot();
    expect(report).to.deep.include({ role: 'standby', ready: false });
    expect(report.database).to.deep.equal({ reachable: false, lastError: 'connect ECONNREFUSED postgres://u:***@h/db' });
    expect(JSON.stringify(report)).not.to.contain('hunter2');

    lifecycle.emit('leader:database', { reachable: true });
    expect(status.ready()).to.equal(true);
    lifecycle.emit('leader:role', { role: 'leader' });
    expect(status.notReadyReasons(), 'a leader not yet capturing').to.deep.equal(['capture is not connected']);
    connect(lifecycle);
    expect(status.ready()).to.equal(true);

    // Leadership lost: capture stopped with the term, so a leader again is not ready until it reconnects.
    lifecycle.emit('leader:role', { role: 'standby' });
    expect(status.snapshot().capture.connected).to.equal(false);
    lifecycle.emit('leader:role', { role: 'leader' });
    expect(status.notReadyReasons()).to.deep.equal(['capture is not connected']);
  });

  it('reflects capture position, counts and the slot it reads', () => {
    connect(lifecycle, 'pgce_srv_a', 'pgce_srv_pub_a');
    const t = relation('public', 't');
    lifecycle.emit('capture:change', { change: insertInto(t, 1) });
    lifecycle.emit('capture:change', { change: insertInto(t, 2) });
    lifecycle.emit('capture:walEnd', { lsn: 0x2_0000_0100n });
    lifecycle.emit('capture:acknowledged', { lsn: 0x2_0000_0040n });
    deliver(lifecycle, 'orm.post_save', 5);
    const report = status.snapshot();
    expect(report.capture).to.deep.equal({
      connected: true,
      slot: 'pgce_srv_a',
      publication: 'pgce_srv_pub_a',
      lastAcknowledgedLsn: formatLsn(0x2_0000_0040n),
      lastWalEnd: formatLsn(0x2_0000_0100n),
    });
    expect(report.capture.lastAcknowledgedLsn).to.equal('2/40');
    expect(report.counts).to.deep.equal({ captured: 2, delivered: 1, failed: 0, deadLettered: 0 });
    expect(report.lastDeliveredAt).to.be.a('string');
    expect(report.role).to.equal('leader');
    // Plain JSON: survives a round trip unchanged (no bigints, no Dates).
    expect(JSON.parse(JSON.stringify(report))).to.deep.equal(report);
  });

  it('sink health flips false on a failed attempt and back on a delivery', () => {
    expect(status.snapshot().sink).to.deep.include({ healthy: true, consecutiveFailures: 0 });
    failAttempt(lifecycle, 503, true);
    failAttempt(lifecycle, 502, true);
    let report = status.snapshot();
    expect(report.sink).to.deep.equal({
      describe: 'http://127.0.0.1:9/sink', configured: true, healthy: false, lastStatus: 502, consecutiveFailures: 2,
    });
    expect(report.counts.failed).to.equal(2);
    expect(report.lastError).to.equal('sink said no');
    deliver(lifecycle, 'orm.post_save', 5, 3);
    report = status.snapshot();
    expect(report.sink).to.deep.equal({
      describe: 'http://127.0.0.1:9/sink', configured: true, healthy: true, consecutiveFailures: 0,
    });
  });

  it('reports each destination apart (destinations, by name), the top-level counts and sink kept as totals', () => {
    deliver(lifecycle, 'orm.post_save', 5, 1);
    deliver(lifecycle, 'orm.post_save', 5, 1, 'r');
    failAttempt(lifecycle, 503, true, 'down', 'r');
    failAttempt(lifecycle, 503, true, 'redis at redis://u:hunter2@h down', 'r');
    lifecycle.emit('delivery:deadLettered', { event: event('t'), destination: 'r', error: new Error('gave up'), attempts: 3 });
    const report = status.snapshot();
    expect(report.counts).to.include({ delivered: 2, failed: 2, deadLettered: 1 });
    expect(report.destinations.default).to.deep.include({ delivered: 1, failed: 0, deadLettered: 0, healthy: true, consecutiveFailures: 0, lastError: null });
    expect(report.destinations.default.lastDeliveredAt).to.be.a('string');
    expect(report.destinations.r).to.deep.include({
      delivered: 1, failed: 2, deadLettered: 1, healthy: false, consecutiveFailures: 2, lastStatus: 503, lastError: 'redis at redis://u:***@h down',
    });
    expect(JSON.stringify(status.snapshot())).not.to.contain('hunter2');
    deliver(lifecycle, 'orm.post_save', 5, 1, 'r');
    expect(status.snapshot().destinations.r).to.deep.include({ healthy: true, consecutiveFailures: 0 });
    expect(status.snapshot().destinations.r).not.to.have.property('lastStatus');
  });

  it('keeps only the scrubbed message of the last error', () => {
    lifecycle.emit('capture:disconnected', {
      error: new Error('could not connect to postgres://u:hunter2@h/db'), retryInMs: 100,
    });
    const report = status.snapshot();
    expect(report.lastError).to.equal('could not connect to postgres://u:***@h/db');
    expect(JSON.stringify(report)).not.to.contain('hunter2');
  });

  it('role has a setter for leader election', () => {
    status.setRole('standby');
    expect(status.snapshot().role).to.equal('standby');
  });

  it('follows leader:role and counts dead-lettered events', () => {
    const lifecycle = new Lifecycle();
    const tracker = new StatusTracker(lifecycle, { sink: 'http://sink/' });
    lifecycle.emit('leader:role', { role: 'standby' });
    expect(tracker.snapshot().role).to.equal('standby');
    lifecycle.emit('leader:role', { role: 'leader' });
    lifecycle.emit('delivery:deadLettered', { event: new CloudEvent({ source: '/s', type: 't' }), destination: 'default', error: new Error('no'), attempts: 2 });
    const report = tracker.snapshot();
    expect(report.role).to.equal('leader');
    expect(report.counts.deadLettered).to.equal(1);
    tracker.dispose();
  });
});
