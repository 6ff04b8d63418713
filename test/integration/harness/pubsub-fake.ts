/**
 * A Google Cloud Pub/Sub stand-in for integration tests: a real gRPC server on 127.0.0.1:0 built
 * from the protos `@google-cloud/pubsub` ships (build/protos/google/pubsub/v1/pubsub.proto; the
 * google/api and google/protobuf imports resolve from google-gax's build/protos, where the client
 * itself loads them). It implements what the client's publisher and our tests use:
 *
 * - Publisher: CreateTopic, GetTopic, ListTopics, DeleteTopic, Publish (server-assigned message
 *   ids, publish_time, attributes and ordering_key kept; NOT_FOUND for a topic that does not
 *   exist; INVALID_ARGUMENT for messages over the documented limits, as the service answers).
 * - Subscriber: CreateSubscription, DeleteSubscription, Pull, Acknowledge (unary pull; a
 *   subscription sees messages published after it was created, unacknowledged ones again).
 *
 * Faults are injected per call: `failNext(code, times)` answers the next Publish calls with a
 * gRPC status; `stallNext(times)` never answers them (the client's deadline must fire).
 * Point the client at it with `PUBSUB_EMULATOR_HOST=<host>` (and `METADATA_SERVER_DETECTION=none`).
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface StoredMessage {
  topic: string;
  messageId: string;
  data: Buffer;
  attributes: Record<string, string>;
  orderingKey: string;
  publishTime: Date;
}

export interface PubSubFake {
  /** `127.0.0.1:<port>`, for PUBSUB_EMULATOR_HOST or conn.apiEndpoint. */
  host: string;
  /** Messages published to `topic` (short id or `projects/<p>/topics/<id>`), in publish order. */
  messages(topic: string): StoredMessage[];
  /** Publish calls received (successful or not), for asserting retries and batching. */
  publishCalls(): number;
  /** The next `times` (default 1) Publish calls fail with gRPC status `code`. */
  failNext(code: number, times?: number): void;
  /** The next `times` (default 1) Publish calls get no answer at all. */
  stallNext(times?: number): void;
  stop(): Promise<void>;
}

// Limits the service documents (cloud.google.com/pubsub/quotas#resource_limits).
const MAX_ATTRIBUTES = 100;
const MAX_ATTRIBUTE_KEY_BYTES = 256;
const MAX_ATTRIBUTE_VALUE_BYTES = 1024;
const MAX_MESSAGE_BYTES = 10_000_000;

function protoDirs(): { pubsub: string; gax: string } {
  const pubsubPkg = require.resolve('@google-cloud/pubsub/package.json');
  // google-gax does not export its package.json: walk up from its entry point to build/protos.
  let gax = dirname(require.resolve('google-gax', { paths: [dirname(pubsubPkg)] }));
  while (!existsSync(join(gax, 'build', 'protos', 'google', 'api', 'annotations.proto'))) {
    const up = dirname(gax);
    if (up === gax) throw new Error('pubsub-fake: google-gax build/protos (google/api) not found');
    gax = up;
  }
  return { pubsub: join(dirname(pubsubPkg), 'build', 'protos'), gax: join(gax, 'build', 'protos') };
}

type Unary = (call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>) => void; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Subscription {
  topic: string;
  /** Index into the topic's messages from which this subscription sees messages. */
  from: number;
  acked: Set<string>;
}

function status(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

export async function startPubSubFake(): Promise<PubSubFake> {
  const dirs = protoDirs();
  const definition = protoLoader.loadSync(join(dirs.pubsub, 'google', 'pubsub', 'v1', 'pubsub.proto'), {
    includeDirs: [dirs.pubsub, dirs.gax],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    google: { pubsub: { v1: { Publisher: grpc.ServiceClientConstructor; Subscriber: grpc.ServiceClientConstructor } } };
  };
  const v1 = loaded.google.pubsub.v1;

  const topics = new Map<string, StoredMessage[]>();
  const subscriptions = new Map<string, Subscription>();
  let nextId = 1;
  let calls = 0;
  const faults: Array<{ code: number } | 'stall'> = [];
  const stalled: Array<grpc.sendUnaryData<unknown>> = [];

  const publisher: Record<string, Unary> = {
    CreateTopic(call, cb) {
      const name = call.request.name as string;
      if (topics.has(name)) return cb(status(grpc.status.ALREADY_EXISTS, `Topic already exists: ${name}`));
      topics.set(name, []);
      cb(null, { name });
    },
    GetTopic(call, cb) {
      const name = call.request.topic as string;
      if (!topics.has(name)) return cb(status(grpc.status.NOT_FOUND, `Topic not found: ${name}`));
      cb(null, { name });
    },
    ListTopics(call, cb) {
      const prefix = `${call.request.project as string}/topics/`;
      cb(null, { topics: [...topics.keys()].filter((t) => t.startsWith(prefix)).map((name) => ({ name })), nextPageToken: '' });
    },
    DeleteTopic(call, cb) {
      const name = call.request.topic as string;
      if (!topics.delete(name)) return cb(status(grpc.status.NOT_FOUND, `Topic not found: ${name}`));
      cb(null, {});
    },
    Publish(call, cb) {
      calls++;
      const fault = faults.shift();
      if (fault === 'stall') {
        stalled.push(cb);
        return;
      }
      if (fault) return cb(status(fault.code, `injected failure (code ${fault.code})`));
      const name = call.request.topic as string;
      const stored = topics.get(name);
      if (!stored) return cb(status(grpc.status.NOT_FOUND, `Topic not found: ${name}`));
      const incoming = (call.request.messages ?? []) as Array<{ data: Buffer; attributes: Record<string, string>; orderingKey: string }>;
      if (incoming.length === 0) return cb(status(grpc.status.INVALID_ARGUMENT, 'The request contains no messages'));
      for (const m of incoming) {
        const problem = limitProblem(m);
        if (problem) return cb(status(grpc.status.INVALID_ARGUMENT, problem));
      }
      const publishTime = new Date();
      const ids = incoming.map((m) => {
        const messageId = String(nextId++);
        stored.push({
          topic: name,
          messageId,
          data: Buffer.from(m.data ?? Buffer.alloc(0)),
          attributes: { ...(m.attributes ?? {}) },
          orderingKey: m.orderingKey ?? '',
          publishTime,
        });
        return messageId;
      });
      cb(null, { messageIds: ids });
    },
  };

  const subscriber: Record<string, Unary> = {
    CreateSubscription(call, cb) {
      const name = call.request.name as string;
      const topic = call.request.topic as string;
      if (subscriptions.has(name)) return cb(status(grpc.status.ALREADY_EXISTS, `Subscription already exists: ${name}`));
      const stored = topics.get(topic);
      if (!stored) return cb(status(grpc.status.NOT_FOUND, `Topic not found: ${topic}`));
      subscriptions.set(name, { topic, from: stored.length, acked: new Set() });
      cb(null, { name, topic, ackDeadlineSeconds: 10, enableMessageOrdering: Boolean(call.request.enableMessageOrdering) });
    },
    DeleteSubscription(call, cb) {
      if (!subscriptions.delete(call.request.subscription as string)) {
        return cb(status(grpc.status.NOT_FOUND, `Subscription not found: ${call.request.subscription as string}`));
      }
      cb(null, {});
    },
    Pull(call, cb) {
      const sub = subscriptions.get(call.request.subscription as string);
      if (!sub) return cb(status(grpc.status.NOT_FOUND, `Subscription not found: ${call.request.subscription as string}`));
      const max = Number(call.request.maxMessages) || 100;
      const pending = (topics.get(sub.topic) ?? []).slice(sub.from).filter((m) => !sub.acked.has(m.messageId)).slice(0, max);
      cb(null, {
        receivedMessages: pending.map((m) => ({
          ackId: m.messageId,
          deliveryAttempt: 0,
          message: {
            data: m.data,
            attributes: m.attributes,
            messageId: m.messageId,
            orderingKey: m.orderingKey,
            publishTime: { seconds: String(Math.floor(m.publishTime.getTime() / 1000)), nanos: (m.publishTime.getTime() % 1000) * 1e6 },
          },
        })),
      });
    },
    Acknowledge(call, cb) {
      const sub = subscriptions.get(call.request.subscription as string);
      if (!sub) return cb(status(grpc.status.NOT_FOUND, `Subscription not found: ${call.request.subscription as string}`));
      for (const id of call.request.ackIds as string[]) sub.acked.add(id);
      cb(null, {});
    },
  };

  const server = new grpc.Server();
  server.addService(v1.Publisher.service, publisher);
  server.addService(v1.Subscriber.service, subscriber);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
  });
  const host = `127.0.0.1:${port}`;

  return {
    host,
    messages(topic) {
      if (topic.includes('/')) return [...(topics.get(topic) ?? [])];
      return [...topics.entries()].filter(([name]) => name.endsWith(`/topics/${topic}`)).flatMap(([, m]) => m);
    },
    publishCalls: () => calls,
    failNext(code, times = 1) {
      for (let i = 0; i < times; i++) faults.push({ code });
    },
    stallNext(times = 1) {
      for (let i = 0; i < times; i++) faults.push('stall');
    },
    stop() {
      // Stalled calls are answered so the server can shut down; their clients gave up already.
      for (const cb of stalled.splice(0)) cb(status(grpc.status.UNAVAILABLE, 'fake stopping'));
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

function limitProblem(m: { data?: Buffer; attributes?: Record<string, string>; orderingKey?: string }): string | undefined {
  const attrs = Object.entries(m.attributes ?? {});
  if (attrs.length > MAX_ATTRIBUTES) return `Too many attributes: ${attrs.length} > ${MAX_ATTRIBUTES}`;
  let size = m.data?.length ?? 0;
  for (const [k, v] of attrs) {
    const kb = Buffer.byteLength(k);
    const vb = Buffer.byteLength(v);
    if (kb > MAX_ATTRIBUTE_KEY_BYTES) return `Attribute key too long: ${k.slice(0, 40)}…`;
    if (vb > MAX_ATTRIBUTE_VALUE_BYTES) return `Attribute value too long for key ${k}: ${vb} bytes > ${MAX_ATTRIBUTE_VALUE_BYTES}`;
    size += kb + vb;
  }
  if (Buffer.byteLength(m.orderingKey ?? '') > 1024) return 'Ordering key too long';
  if (size > MAX_MESSAGE_BYTES) return `Message too large: ${size} bytes`;
  return undefined;
}
