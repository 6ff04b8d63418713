/**
 * The Kafka stand-in for tests: librdkafka's mock cluster (kafka-mock.c, built into
 * .tmp/kafka-mock by scripts/ensure-kafka-mock.sh). It has no CreateTopics, so every topic a test
 * uses is created here, up front, with its partition count.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { Kafka, logLevel, type Consumer, type KafkaMessage } from 'kafkajs';
import { REPO_ROOT } from './process';

export const KAFKA_MOCK_PATH = path.join(REPO_ROOT, '.tmp', 'kafka-mock');

export interface KafkaMockTopic {
  name: string;
  partitions: number;
}

export interface KafkaMock {
  /** `127.0.0.1:port[,127.0.0.1:port…]`, one entry per mock broker. */
  bootstrap: string;
  /** The bootstrap list as kafkajs wants it. */
  brokers: string[];
  /**
   * A fault for the next requests (kafka-mock.c's stdin commands): `produce-error 10 1`,
   * `topic-error <topic> 29`, `broker-down 1`, `broker-up 1`. Resolves with the answer, or
   * rejects when the mock answers `error: …`.
   */
  control(command: string): Promise<string>;
  /** Stops the cluster (SIGTERM) and resolves once the process has exited; idempotent. */
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;

/** Starts a mock cluster of `brokerCount` brokers holding `topics`; resolves with its address. */
export function startKafkaMock(topics: KafkaMockTopic[], brokerCount = 1): Promise<KafkaMock> {
  if (!existsSync(KAFKA_MOCK_PATH)) {
    return Promise.reject(new Error(`${KAFKA_MOCK_PATH} is missing: run scripts/ensure-kafka-mock.sh (make services)`));
  }
  const args = ['--brokers', String(brokerCount), ...topics.map((t) => `${t.name}:${t.partitions}`)];
  // stdin stays a pipe: when this process dies, the pipe closes and the mock exits too.
  const child = spawn(KAFKA_MOCK_PATH, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  return new Promise<KafkaMock>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`kafka-mock printed no bootstrap address within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    function fail(err: Error): void {
      clearTimeout(timer);
      child.kill('SIGTERM');
      reject(new Error(`${err.message}${stderr ? `\nkafka-mock stderr:\n${stderr}` : ''}`));
    }
    child.once('error', (err) => fail(err));
    const early = (code: number | null, signal: NodeJS.Signals | null) =>
      fail(new Error(`kafka-mock exited (${signal ?? code}) before printing its address`));
    child.once('exit', early);
    child.stdout.setEncoding('utf8').on('data', function onData(s: string) {
      out += s;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', early);
      const bootstrap = out.slice(0, nl).trim();
      // Later lines answer control commands, in order.
      const waiting: Array<(line: string) => void> = [];
      let rest = out.slice(nl + 1);
      child.stdout.on('data', (more: string) => {
        rest += more;
        for (let i = rest.indexOf('\n'); i >= 0; i = rest.indexOf('\n')) {
          const line = rest.slice(0, i);
          rest = rest.slice(i + 1);
          waiting.shift()?.(line);
        }
      });
      let stopped: Promise<void> | undefined;
      resolve({
        bootstrap,
        brokers: bootstrap.split(','),
        control(command) {
          return new Promise<string>((ok, ko) => {
            if (child.exitCode !== null || child.signalCode !== null) return ko(new Error('kafka-mock has exited'));
            waiting.push((line) => (line.startsWith('error') ? ko(new Error(`kafka-mock ${command}: ${line}`)) : ok(line)));
            child.stdin.write(`${command}\n`);
          });
        },
        stop() {
          stopped ??= (async () => {
            if (child.exitCode === null && child.signalCode === null) {
              child.stdin.end();
              child.kill('SIGTERM');
            }
            await exited;
          })();
          return stopped;
        },
      });
    });
  });
}

/** One record read back from the mock cluster: the raw value bytes, headers as strings. */
export interface KafkaRecord {
  partition: number;
  offset: number;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
  message: KafkaMessage;
}

/** Reads a topic from the beginning with a kafkajs consumer until `count` records arrived. */
export async function readKafkaRecords(mock: KafkaMock, topic: string, count: number, timeoutMs = 15_000): Promise<KafkaRecord[]> {
  const kafka = new Kafka({ clientId: 'pgce-h3-reader', brokers: mock.brokers, logLevel: logLevel.NOTHING });
  const consumer: Consumer = kafka.consumer({ groupId: `${topic}_reader_${Date.now()}`, sessionTimeout: 10_000, heartbeatInterval: 500 });
  const got: KafkaRecord[] = [];
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read ${got.length} of ${count} records from ${topic} within ${timeoutMs} ms`)), timeoutMs);
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            const headers: Record<string, string> = {};
            for (const [k, v] of Object.entries(message.headers ?? {})) if (v !== undefined) headers[k] = String(v);
            got.push({ partition, offset: Number(message.offset), key: message.key?.toString() ?? null, value: message.value, headers, message });
            if (got.length >= count) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return got;
}
