import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { connect } from 'node:net';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { PubSub, v1 } from '@google-cloud/pubsub';
import type { Config, DeliveryConfig } from '../../../src/config/types';
import { deliverWithRetry } from '../../../src/delivery/deliver';
import { DeliveryError, ErrorCodes, PgceError } from '../../../src/errors';
import { pubsubBroker } from '../../../src/sinks/pubsub';
import type { Sink } from '../../../src/sinks/types';
import { startPubSubFake, type PubSubFake } from '../harness/pubsub-fake';
import { freePort } from '../support';
import { describeSinkConformance, sampleEvent, type ConformanceTarget } from './conformance';
import { closedPort, proxyFaults } from '../harness/net';
import { failure, plainMessage } from './support';

const PROJECT = 'pgce-h4-test';
const UNAVAILABLE = 14;
const NOT_FOUND = 5;
const PERMISSION_DENIED = 7;
const RUN = `${process.pid}_${Date.now().toString(36)}`;
let topicSeq = 0;
const portOf = (host: string) => Number(host.slice(host.lastIndexOf(':') + 1));
const newTopicId = (what: string) => `pgce_h4_${what}_${RUN}_${++topicSeq}`;
/** Bare-message tests' own names. */
const newBareTopicId = (what: string) => `pgce_hb_${what}_${RUN}_${++topicSeq}`;

const fastPolicy: DeliveryConfig = { backoffPolicy: 'exponential', backoffDelayMs: 10, backoffMaxMs: 50, timeoutMs: 5000, maxInFlight: 1, maxBufferBytes: 1 << 26 };

function makeSink(params: Record<string, unknown>, conn: Record<string, unknown> = {}, timeoutMs = 5000): Sink {
  return pubsubBroker.create(
    { name: 'ps_test', type: 'pubsub', conn: { projectId: PROJECT, ...conn }, params },
    { sink: { timeoutMs } } as unknown as Config,
  );
}

/**
 * The consumer side of the CloudEvents Pub/Sub binding, written from the spec text (not from the
 * sink's encoder): `Content-Type` starting with `application/cloudevents` → structured (§3.2, JSON
 * format payload); otherwise binary (§3.1): `ce-` attributes (names case-insensitive), §3.1.1
 * `Content-Type` → datacontenttype, the payload is the data.
 */
function toEvent(m: { data: Buffer | Uint8Array | string; attributes: Record<string, string> }): CloudEvent<unknown> {
  const data = Buffer.from(m.data as Uint8Array);
  const contentType = Object.entries(m.attributes).find(([k]) => k.toLowerCase() === 'content-type')?.[1];
  if (contentType?.toLowerCase().startsWith('application/cloudevents')) {
    return new CloudEvent<unknown>(JSON.parse(data.toString('utf8')) as Record<string, unknown>);
  }
  const attrs: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m.attributes)) {
    if (k.toLowerCase().startsWith('ce-')) attrs[k.slice(3).toLowerCase()] = v;
  }
  if (contentType) attrs.datacontenttype = contentType;
  const json = !contentType || /[/+]json(\s*;|$)/i.test(contentType);
  if (data.length) attrs.data = json ? JSON.parse(data.toString('utf8')) : data;
  return new CloudEvent<unknown>(attrs);
}

async function poll<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Sets METADATA_SERVER_DETECTION=none and PUBSUB_EMULATOR_HOST for a block; restores after. */
function useEmulatorEnv(host: () => string): void {
  let saved: Record<string, string | undefined> = {};
  before(() => {
    saved = { PUBSUB_EMULATOR_HOST: process.env.PUBSUB_EMULATOR_HOST, METADATA_SERVER_DETECTION: process.env.METADATA_SERVER_DETECTION };
    process.env.METADATA_SERVER_DETECTION = 'none';
    process.env.PUBSUB_EMULATOR_HOST = host();
  });
  after(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
}

describe('sinks/pubsub against a gRPC fake of the Pub/Sub service (mocked: test/integration/harness/pubsub-fake.ts)', function () {
  this.timeout(30_000);
  let fake: PubSubFake;
  let admin: PubSub;
  let sink: Sink | undefined;

  before(async () => {
    fake = await startPubSubFake();
  });
  useEmulatorEnv(() => fake.host);
  before(() => {
    admin = new PubSub({ projectId: PROJECT });
  });
  after(async () => {
    await admin?.close();
    await fake?.stop();
  });
  afterEach(async () => {
    await sink?.close();
    sink = undefined;
  });

  async function createTopic(what: string): Promise<string> {
    const id = newTopicId(what);
    await admin.createTopic(id);
    return id;
  }

  describeSinkConformance('pubsub (binary mode, ordering, gRPC fake)', async (): Promise<ConformanceTarget> => {
    const topic = await createTopic('conf');
    return {
      sink: async () => makeSink({ topic, ordering: true }),
      readBack: async (count, timeoutMs) => {
        const got = await poll(`${count} messages on ${topic}`, timeoutMs, () => {
          const m = fake.messages(topic);
          return m.length >= count ? m : undefined;
        });
        return got.slice(0, count).map(toEvent);
      },
      unreachableSink: async () => makeSink({ topic }, { apiEndpoint: `127.0.0.1:${await closedPort()}` }, 2000),
      faultySink: async (timeoutMs) => {
        const faults = await proxyFaults(portOf(fake.host));
        return { faults, sink: makeSink({ topic, ordering: true }, { apiEndpoint: `127.0.0.1:${faults.port}` }, timeoutMs) };
      },
      cleanup: async () => {
        await admin.topic(topic).delete();
      },
    };
  });

  it('binary mode: ce- attributes, Content-Type, JSON data and orderingKey = partitionkey exactly', async () => {
    const topic = await createTopic('binary');
    sink = makeSink({ topic, ordering: true });
    const event = sampleEvent(7, { partitionkey: 'polls.question/7' });
    const result = await sink.send(event);
    const [m] = fake.messages(topic);
    expect(result).to.deep.equal({ messageId: m.messageId });
    expect(m.attributes).to.deep.equal({
      'ce-specversion': '1.0',
      'ce-id': event.id,
      'ce-source': '/pg-cloudevents/conformance',
      'ce-type': 'orm.post_save',
      'ce-subject': 'DCE:polls.question/7',
      'ce-time': '2024-02-29T11:14:15.500Z',
      'ce-app': 'polls',
      'ce-model': 'question',
      'ce-sequence': event.sequence,
      'ce-partitionkey': 'polls.question/7',
      'Content-Type': 'application/json',
    });
    expect(JSON.parse(m.data.toString('utf8'))).to.deep.equal(event.data);
    expect(m.orderingKey).to.equal('polls.question/7');
  });

  it('without ordering no orderingKey is set', async () => {
    const topic = await createTopic('noorder');
    sink = makeSink({ topic });
    await sink.send(sampleEvent(1));
    expect(fake.messages(topic)[0].orderingKey).to.equal('');
  });

  it('structured mode: Content-Type application/cloudevents+json and the whole event as data', async () => {
    const topic = await createTopic('structured');
    sink = makeSink({ topic, mode: 'structured' });
    const event = sampleEvent(3);
    await sink.send(event);
    const [m] = fake.messages(topic);
    expect(m.attributes).to.deep.equal({ 'Content-Type': 'application/cloudevents+json; charset=UTF-8' });
    const body = JSON.parse(m.data.toString('utf8')) as Record<string, unknown>;
    expect(body).to.include({ id: event.id, specversion: '1.0', type: 'orm.post_save', partitionkey: 'polls.question/1' });
    const got = toEvent(m);
    expect(got.validate()).to.equal(true);
    expect(got.data).to.deep.equal(event.data);
  });

  it('binary mode falls back to structured when an attribute exceeds the 1024-byte value limit (the service would refuse it)', async () => {
    const topic = await createTopic('fallback');
    sink = makeSink({ topic });
    const long = `DCE:polls.question/${'k'.repeat(2000)}`;
    await sink.send(sampleEvent(4, { subject: long }));
    const [m] = fake.messages(topic);
    expect(m.attributes['Content-Type']).to.match(/^application\/cloudevents\+json/);
    expect(toEvent(m).subject).to.equal(long);
  });

  it('honours PUBSUB_EMULATOR_HOST (no apiEndpoint in conn) and renders a templated topic per event', async () => {
    const prefix = newTopicId('tpl');
    await admin.createTopic(`${prefix}_question`);
    await admin.createTopic(`${prefix}_choice`);
    sink = makeSink({ topic: `${prefix}_{{ model }}` });
    await sink.send(sampleEvent(1));
    await sink.send(sampleEvent(2, { model: 'choice' }));
    expect(fake.messages(`${prefix}_question`).map((m) => m.attributes['ce-model'])).to.deep.equal(['question']);
    expect(fake.messages(`${prefix}_choice`).map((m) => m.attributes['ce-model'])).to.deep.equal(['choice']);
    expect(sink.describe()).to.equal(`pubsub projects/${PROJECT}/topics/${prefix}_{{ model }} via ${fake.host}`);
  });

  it('UNAVAILABLE once → one attempt, retriable DeliveryError; the retry succeeds and the ordering key resumes', async () => {
    const topic = await createTopic('unavail');
    sink = makeSink({ topic, ordering: true });
    await sink.send(sampleEvent(1));
    const callsBefore = fake.publishCalls();
    fake.failNext(UNAVAILABLE);
    const err = await failure(sink.send(sampleEvent(2)));
    expect(err).to.be.instanceOf(DeliveryError);
    expect(err.retriable).to.equal(true);
    expect(err.code).to.equal(ErrorCodes.SINK_RETRIABLE);
    expect(err.message).to.match(/UNAVAILABLE/).and.include(topic);
    expect(fake.publishCalls() - callsBefore, 'the client library must not retry on its own').to.equal(1);
    // The key must keep working after a failure. (The sink resumes it; client 5.3.1 also drops an
    // ordered queue once it has drained, so the resume itself is asserted in the unit test.)
    await sink.send(sampleEvent(2));
    await sink.send(sampleEvent(3));
    const stored = fake.messages(topic);
    expect(stored.map((m) => JSON.parse(m.data.toString('utf8')).data.id)).to.deep.equal([1, 2, 3]);
    expect(stored.every((m) => m.orderingKey === 'polls.question/1')).to.equal(true);
  });

  it('the delivery layer retries UNAVAILABLE until the event is published once, in key order', async () => {
    const topic = await createTopic('retry');
    sink = makeSink({ topic, ordering: true });
    fake.failNext(UNAVAILABLE, 2);
    const result = await deliverWithRetry(sink, sampleEvent(1), fastPolicy);
    expect(result.attempts).to.equal(3);
    await deliverWithRetry(sink, sampleEvent(2), fastPolicy);
    expect(fake.messages(topic).map((m) => m.attributes['ce-id'])).to.deep.equal([sampleEvent(1).id, sampleEvent(2).id]);
  });

  it('a topic that does not exist (NOT_FOUND) is a final failure', async () => {
    sink = makeSink({ topic: newTopicId('missing') });
    const err = await failure(sink.send(sampleEvent(1)));
    expect(err).to.be.instanceOf(DeliveryError);
    expect(err.retriable).to.equal(false);
    expect(err.code).to.equal(ErrorCodes.SINK_FINAL);
    expect(err.message).to.match(/NOT_FOUND/);
    expect(err.detail).to.include({ grpcCode: NOT_FOUND });
  });

  it('PERMISSION_DENIED (injected) is final and, with ordering, does not block the key for later events', async () => {
    const topic = await createTopic('denied');
    sink = makeSink({ topic, ordering: true });
    fake.failNext(PERMISSION_DENIED);
    const err = await failure(sink.send(sampleEvent(1)));
    expect(err.retriable).to.equal(false);
    await sink.send(sampleEvent(2));
    expect(fake.messages(topic)).to.have.length(1);
  });

  it('an event over the 10 MB message limit fails alone, finally, before anything is published', async () => {
    const topic = await createTopic('big');
    sink = makeSink({ topic });
    const callsBefore = fake.publishCalls();
    const err = await failure(sink.send(sampleEvent(1, { data: { blob: 'x'.repeat(10_000_001) } })));
    expect(err.retriable).to.equal(false);
    expect(err.message).to.match(/too large/);
    expect(fake.publishCalls()).to.equal(callsBefore);
  });

  it('an unreachable endpoint (closed port) is a retriable SINK_UNREACHABLE failure within the timeout', async () => {
    sink = makeSink({ topic: newTopicId('down') }, { apiEndpoint: `127.0.0.1:${await closedPort()}` }, 1500);
    const started = Date.now();
    const err = await failure(sink.send(sampleEvent(1)));
    expect(Date.now() - started).to.be.below(1500 + 500);
    expect(err).to.be.instanceOf(DeliveryError);
    expect(err.retriable).to.equal(true);
    expect(err.code).to.equal(ErrorCodes.SINK_UNREACHABLE);
  });

  it('a Publish the service never answers fails retriably within the timeout; the key resumes', async () => {
    const topic = await createTopic('stall');
    sink = makeSink({ topic, ordering: true }, {}, 1000);
    await sink.send(sampleEvent(1));
    fake.stallNext();
    const started = Date.now();
    const err = await failure(sink.send(sampleEvent(2)));
    expect(Date.now() - started).to.be.below(1000 + 300);
    expect(err.retriable).to.equal(true);
    await sink.send(sampleEvent(2));
    expect(fake.messages(topic).map((m) => m.attributes['ce-id'])).to.deep.equal([sampleEvent(1).id, sampleEvent(2).id]);
  });

  it('concurrent sends without ordering share Publish calls (batching window)', async () => {
    const topic = await createTopic('batch');
    sink = makeSink({ topic, batchDelayMs: 20 });
    const callsBefore = fake.publishCalls();
    const s = sink;
    await Promise.all(Array.from({ length: 30 }, (_, i) => s.send(sampleEvent(i + 1, { partitionkey: `polls.question/${i + 1}` }))));
    expect(fake.messages(topic)).to.have.length(30);
    expect(fake.publishCalls() - callsBefore).to.be.below(5);
  });

  it('check(): passes for an existing topic, names a missing topic, names the broker when unreachable', async () => {
    const topic = await createTopic('check');
    sink = makeSink({ topic });
    await sink.check!();
    await sink.close();
    sink = makeSink({ topic: 'pgce_h4_{{ model }}' }); // a template: ListTopics on the project
    await sink.check!();
    await sink.close();
    const missing = newTopicId('nocheck');
    sink = makeSink({ topic: missing });
    let err: unknown = await sink.check!().catch((e: unknown) => e);
    expect(err).to.be.instanceOf(PgceError);
    expect((err as Error).message).to.include(`topic ${missing} does not exist in project ${PROJECT}`);
    await sink.close();
    sink = makeSink({ topic }, { apiEndpoint: `127.0.0.1:${await closedPort()}` }, 1500);
    err = await sink.check!().catch((e: unknown) => e);
    expect(err).to.be.instanceOf(PgceError);
    expect((err as PgceError).code).to.equal(ErrorCodes.SINK_UNREACHABLE);
    expect((err as Error).message).to.match(/broker ps_test .*unreachable/);
  });

  it('close() twice, then a send opens a new client', async () => {
    const topic = await createTopic('reopen');
    sink = makeSink({ topic });
    await sink.send(sampleEvent(1));
    await sink.close();
    await sink.close();
    await sink.send(sampleEvent(2));
    expect(fake.messages(topic)).to.have.length(2);
  });

  it('sendMessage (bare payload): data = the body bytes, attributes content-type and id only, orderingKey = the key with ordering on', async () => {
    const topic = newBareTopicId('bare');
    await admin.createTopic(topic);
    sink = makeSink({ topic, ordering: true, mode: 'structured' });
    const message = plainMessage(1);
    const result = await sink.sendMessage!(message);
    const text = plainMessage(2, { body: Buffer.from('order 2 shipped', 'utf8'), contentType: 'text/plain; charset=utf-8', key: undefined });
    await sink.sendMessage!(text);
    const [m, t] = fake.messages(topic);
    expect(result).to.deep.equal({ messageId: m.messageId });
    expect(m.data.equals(message.body)).to.equal(true);
    expect(m.attributes).to.deep.equal({ 'content-type': 'application/json', id: message.id });
    expect(m.orderingKey).to.equal('shop.order/1');
    expect([t.data.toString('utf8'), t.attributes['content-type'], t.orderingKey]).to.deep.equal(['order 2 shipped', 'text/plain; charset=utf-8', '']);
    await admin.topic(topic).delete();
  });

  it('sendMessage (bare payload): without ordering no orderingKey is set, even with a key', async () => {
    const topic = newBareTopicId('noorder');
    await admin.createTopic(topic);
    sink = makeSink({ topic });
    await sink.sendMessage!(plainMessage(1));
    expect(fake.messages(topic)[0].orderingKey).to.equal('');
    await admin.topic(topic).delete();
  });

  it('sendMessage (bare payload): classification as for events: a topic that does not exist (NOT_FOUND) is final; UNAVAILABLE is retriable', async () => {
    sink = makeSink({ topic: newBareTopicId('missing') });
    const missing = await failure(sink.sendMessage!(plainMessage(1)));
    expect([missing.retriable, missing.code]).to.deep.equal([false, ErrorCodes.SINK_FINAL]);
    expect(missing.detail).to.include({ grpcCode: NOT_FOUND });
    await sink.close();
    const topic = newBareTopicId('unavail');
    await admin.createTopic(topic);
    sink = makeSink({ topic, ordering: true });
    fake.failNext(UNAVAILABLE);
    const unavailable = await failure(sink.sendMessage!(plainMessage(2)));
    expect(unavailable.retriable).to.equal(true);
    await sink.sendMessage!(plainMessage(2)); // the key was resumed after the failure
    expect(fake.messages(topic).map((m) => m.attributes.id)).to.deep.equal([plainMessage(2).id]);
    await admin.topic(topic).delete();
  });
});

/**
 * Google's emulator (Google Cloud SDK component `pubsub-emulator`): found next to a `gcloud` on
 * PATH (<sdk>/bin/gcloud → <sdk>/platform/pubsub-emulator/bin/cloud-pubsub-emulator) or in the
 * usual install folders. It needs Java. Without it the block is skipped, saying so in its title.
 */
function findEmulator(): { path?: string; reason: string } {
  // PGCE_TEST_PUBSUB_EMULATOR names the launcher, or is empty/"none" to leave the emulator out.
  const override = process.env.PGCE_TEST_PUBSUB_EMULATOR;
  if (override !== undefined) {
    const wanted = override === 'none' ? '' : override;
    const path = wanted && existsSync(wanted) ? wanted : undefined;
    return { path, reason: `PGCE_TEST_PUBSUB_EMULATOR=${JSON.stringify(override)} names no emulator launcher` };
  }
  const roots = new Set<string>();
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const gcloud = join(dir, 'gcloud');
    if (existsSync(gcloud)) roots.add(dirname(dirname(realpathSync(gcloud))));
  }
  if (process.env.CLOUDSDK_ROOT_DIR) roots.add(process.env.CLOUDSDK_ROOT_DIR);
  for (const r of ['/usr/lib/google-cloud-sdk', '/usr/share/google-cloud-sdk', '/opt/google-cloud-sdk', '/snap/google-cloud-sdk/current', join(homedir(), 'google-cloud-sdk')]) roots.add(r);
  const looked = [...roots].map((r) => join(r, 'platform', 'pubsub-emulator', 'bin', 'cloud-pubsub-emulator'));
  return {
    path: looked.find((p) => existsSync(p)),
    reason: `cloud-pubsub-emulator is not installed (looked next to gcloud on PATH and at ${looked.join(', ')})`,
  };
}

const emulator = findEmulator();
const emulatorTitle = emulator.path
  ? `sinks/pubsub against Google's emulator (${emulator.path})`
  : `sinks/pubsub against Google's emulator — SKIPPED: ${emulator.reason}`;

describe(emulatorTitle, function () {
  this.timeout(60_000);
  let child: ChildProcess | undefined;
  let host = '';
  let admin: PubSub;
  let subscriber: v1.SubscriberClient;

  before(async function () {
    if (!emulator.path) {
      this.skip();
      return;
    }
    const port = await freePort();
    host = `127.0.0.1:${port}`;
    child = spawn(emulator.path, [`--host=127.0.0.1`, `--port=${port}`], { stdio: 'ignore' });
    await poll(`the emulator listening on ${host}`, 45_000, () => new Promise<true | undefined>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(undefined));
    }));
  });
  useEmulatorEnv(() => host);
  before(async function () {
    if (!emulator.path) return this.skip();
    admin = new PubSub({ projectId: PROJECT });
    // The admin client's resolved options carry the emulator's address and insecure credentials.
    subscriber = new v1.SubscriberClient((await admin.getClientConfig()) as unknown as ConstructorParameters<typeof v1.SubscriberClient>[0]);
  });
  after(async () => {
    await subscriber?.close();
    await admin?.close();
    const proc = child;
    if (proc?.pid && proc.exitCode === null) {
      // The launcher execs java, so the pid we started is the emulator itself.
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      process.kill(proc.pid, 'SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
      if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid, 'SIGKILL');
    }
  });

  it('a topic that does not exist is a final failure (NOT_FOUND from the emulator)', async () => {
    const sink = makeSink({ topic: newTopicId('emu_missing') });
    try {
      const err = await failure(sink.send(sampleEvent(1)));
      expect(err.retriable).to.equal(false);
      expect(err.message).to.match(/NOT_FOUND/);
    } finally {
      await sink.close();
    }
  });

  describeSinkConformance('pubsub (binary mode, ordering, Google emulator)', async (): Promise<ConformanceTarget> => {
    const topic = newTopicId('emu');
    const subName = `projects/${PROJECT}/subscriptions/${topic}_sub`;
    await admin.createTopic(topic);
    await subscriber.createSubscription({ name: subName, topic: `projects/${PROJECT}/topics/${topic}`, enableMessageOrdering: true });
    const received: CloudEvent<unknown>[] = [];
    return {
      sink: async () => makeSink({ topic, ordering: true }),
      readBack: async (count, timeoutMs) => {
        await poll(`${count} messages from ${subName}`, timeoutMs, async () => {
          const [res] = await subscriber.pull({ subscription: subName, maxMessages: 100 });
          const got = res.receivedMessages ?? [];
          for (const r of got) received.push(toEvent({ data: Buffer.from(r.message!.data as Uint8Array), attributes: (r.message!.attributes ?? {}) as Record<string, string> }));
          if (got.length) await subscriber.acknowledge({ subscription: subName, ackIds: got.map((r) => r.ackId!) });
          return received.length >= count ? true : undefined;
        });
        return received.slice(0, count);
      },
      unreachableSink: async () => makeSink({ topic }, { apiEndpoint: `127.0.0.1:${await closedPort()}` }, 2000),
      faultySink: async (timeoutMs) => {
        const faults = await proxyFaults(portOf(process.env.PUBSUB_EMULATOR_HOST!));
        return { faults, sink: makeSink({ topic, ordering: true }, { apiEndpoint: `127.0.0.1:${faults.port}` }, timeoutMs) };
      },
      cleanup: async () => {
        await subscriber.deleteSubscription({ subscription: subName }).catch(() => undefined);
        await admin.topic(topic).delete().catch(() => undefined);
      },
    };
  });
});
