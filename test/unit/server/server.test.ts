import { expect } from 'chai';
import { Lifecycle } from '../../../src/lifecycle';
import { startServer, type RunningServer } from '../../../src/server';
import { createMetrics, type PipelineMetrics } from '../../../src/server/metrics';
import { StatusTracker } from '../../../src/server/status';
import { connect, deliver, failAttempt, insertInto, relation, sample } from './fixtures';

const SECRET_URL = 'postgres://u:hunter2@h/db';

// Response bodies are checked field by field below.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;
const json = async (res: Response): Promise<Json> => (await res.json()) as Json;

describe('server (HTTP)', () => {
  let lifecycle: Lifecycle;
  let metrics: PipelineMetrics;
  let status: StatusTracker;
  let server: RunningServer | undefined;
  let extraStatus: (() => Promise<Record<string, unknown>>) | undefined;

  const url = (path: string) => `http://127.0.0.1:${server!.port}${path}`;
  async function start(): Promise<void> {
    server = await startServer({ port: 0, host: '127.0.0.1', metrics, status, extraStatus: () => extraStatus!() });
  }

  beforeEach(async () => {
    lifecycle = new Lifecycle();
    metrics = createMetrics(lifecycle);
    status = new StatusTracker(lifecycle, { sink: 'http://127.0.0.1:9/sink', sinkConfigured: true });
    extraStatus = async () => ({});
    await start();
  });

  afterEach(async () => {
    await server?.close();
    metrics.dispose();
    status.dispose();
  });

  it('binds the requested host on a real port and answers /healthz', async () => {
    expect(server!.port).to.be.greaterThan(0);
    const res = await fetch(url('/healthz'));
    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ status: 'ok' });
  });

  it('/readyz flips 503 → 200 → 503 with the capture connection', async () => {
    let res = await fetch(url('/readyz'));
    expect(res.status).to.equal(503);
    expect((await json(res)).reasons).to.deep.equal(['capture is not connected']);

    connect(lifecycle);
    res = await fetch(url('/readyz'));
    expect(res.status).to.equal(200);
    await res.body?.cancel();

    lifecycle.emit('capture:disconnected', { error: new Error('replication connection closed'), retryInMs: 50 });
    res = await fetch(url('/readyz'));
    expect(res.status).to.equal(503);
    await res.body?.cancel();
  });

  it('/readyz: 200 for a standby whose database answers, 503 naming the database when it does not', async () => {
    lifecycle.emit('leader:role', { role: 'standby' });
    lifecycle.emit('leader:database', { reachable: true });
    let res = await fetch(url('/readyz'));
    expect(res.status).to.equal(200);
    await res.body?.cancel();
    expect((await json(await fetch(url('/status')))).role).to.equal('standby');

    lifecycle.emit('leader:database', { reachable: false, error: new Error('connection terminated') });
    res = await fetch(url('/readyz'));
    expect(res.status).to.equal(503);
    expect((await json(res)).reasons).to.deep.equal(['the database is not reachable (connection terminated)']);
  });

  it('/metrics serves the Prometheus text the lifecycle events produced', async () => {
    const t = relation('public', 't');
    connect(lifecycle);
    lifecycle.emit('capture:change', { change: insertInto(t, 1) });
    lifecycle.emit('capture:change', { change: insertInto(t, 2) });
    deliver(lifecycle, 'orm.post_save', 12);
    deliver(lifecycle, 'orm.post_save', 30);
    lifecycle.emit('capture:walEnd', { lsn: 0x5000n });
    lifecycle.emit('capture:acknowledged', { lsn: 0x4200n });

    const res = await fetch(url('/metrics'));
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal(metrics.registry.contentType);
    const body = await res.text();
    expect(sample(body, 'pgce_events_captured_total', { table: 'public.t', operation: 'insert' })).to.equal(2);
    expect(sample(body, 'pgce_events_delivered_total', { destination: 'default', type: 'orm.post_save' })).to.equal(2);
    expect(sample(body, 'pgce_delivery_latency_seconds_count', { destination: 'default' })).to.equal(2);
    expect(sample(body, 'pgce_slot_lag_bytes')).to.equal(0x5000 - 0x4200);
    expect(sample(body, 'pgce_capture_connected')).to.equal(1);
  });

  it('/status reflects events and sink health, merged with extra status', async () => {
    extraStatus = async () => ({ slot: { name: 'pgce_srv_slot', lagBytes: 10n, checkedAt: new Date(0) } });
    connect(lifecycle);
    lifecycle.emit('capture:change', { change: insertInto(relation('public', 't'), 1) });
    lifecycle.emit('capture:acknowledged', { lsn: 0x1_0000_0010n });
    failAttempt(lifecycle, 503, true);

    let res = await fetch(url('/status'));
    expect(res.status).to.equal(200);
    let body = await json(res);
    expect(body.capture).to.include({ connected: true, slot: 'pgce_srv_slot', lastAcknowledgedLsn: '1/10' });
    expect(body.counts).to.deep.equal({ captured: 1, delivered: 0, failed: 1, deadLettered: 0 });
    expect(body.sink).to.include({ healthy: false, lastStatus: 503, consecutiveFailures: 1 });
    expect(body.slot).to.deep.equal({ name: 'pgce_srv_slot', lagBytes: '10', checkedAt: '1970-01-01T00:00:00.000Z' });

    deliver(lifecycle, 'orm.post_save', 5, 2);
    res = await fetch(url('/status'));
    body = await json(res);
    expect(body.sink).to.include({ healthy: true, consecutiveFailures: 0 });
    expect(body.sink).not.to.have.property('lastStatus');
    expect(body.counts.delivered).to.equal(1);
  });

  it('/status never shows a secret, from errors or extra status', async () => {
    extraStatus = async () => ({ database: SECRET_URL, notes: [`retry ${SECRET_URL}`] });
    failAttempt(lifecycle, undefined, true, `connect ECONNREFUSED ${SECRET_URL}`);
    const text = await (await fetch(url('/status'))).text();
    expect(text).not.to.contain('hunter2');
    const body = JSON.parse(text);
    expect(body.lastError).to.equal('connect ECONNREFUSED postgres://u:***@h/db');
    expect(body.database).to.equal('postgres://u:***@h/db');
    expect(body.notes).to.deep.equal(['retry postgres://u:***@h/db']);
  });

  it('/status still answers 200 when extra status fails', async () => {
    extraStatus = async () => {
      throw new Error(`slot query failed on ${SECRET_URL}`);
    };
    connect(lifecycle);
    const res = await fetch(url('/status'));
    expect(res.status).to.equal(200);
    const text = await res.text();
    expect(text).not.to.contain('hunter2');
    const body = JSON.parse(text);
    expect(body.statusError).to.equal('slot query failed on postgres://u:***@h/db');
    expect(body.capture.connected).to.equal(true);
  });

  it('unknown paths answer 404 JSON', async () => {
    const res = await fetch(url('/nope'));
    expect(res.status).to.equal(404);
    expect(res.headers.get('content-type')).to.match(/^application\/json/);
    expect(await res.json()).to.deep.equal({ error: 'not found', path: '/nope' });
  });

  it('close() does not wait for a connection that is mid-request', async () => {
    const { connect: tcpConnect } = await import('node:net');
    const socket = tcpConnect(server!.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    // Headers not finished: the connection is busy, so a plain server.close() would wait for it.
    socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    await new Promise((resolve) => setImmediate(resolve));
    const closed = server!.close().then(() => 'closed');
    server = undefined;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise((resolve) => {
      timer = setTimeout(() => resolve('timed out'), 2_000);
    });
    expect(await Promise.race([closed, deadline])).to.equal('closed');
    clearTimeout(timer);
    socket.destroy();
  });
});
