/**
 * Shared by the engine tests: an in-memory sink whose every send waits for the test's answer (or
 * an automatic one), changes keyed by a string, and an engine wired to recording hooks. The sink is
 * in memory because these tests are about scheduling, ordering and acknowledgement, not HTTP.
 */
import { CloudEvent } from 'cloudevents';
import type { Change } from '../../../src/sources/change';
import { changeSequence } from '../../../src/sources/change';
import type { Config, DeliveryConfig } from '../../../src/config/types';
import type { DeadLetterHandler, FailedDelivery } from '../../../src/delivery/dead-letter';
import { DeliveryEngine } from '../../../src/delivery/engine';
import type { UndecodableHandler, UndecodableRecord } from '../../../src/delivery/undecodable';
import { DeliveryError } from '../../../src/errors';
import { Lifecycle, type LifecycleEventMap } from '../../../src/lifecycle';
import { createRouter } from '../../../src/routing';
import type { Router } from '../../../src/routing/contract';
import type { Destination, SendResult, Sink } from '../../../src/sinks/types';
import { insertOf, questions } from '../events/fixtures';

export const FAST: DeliveryConfig = {
  backoffPolicy: 'exponential',
  backoffDelayMs: 1,
  backoffMaxMs: 4,
  timeoutMs: 1000,
  maxInFlight: 4,
  maxBufferBytes: 1 << 26,
};

export const unavailable = () => new DeliveryError('sink answered 503', { status: 503, retriable: true });
export const badRequest = () => new DeliveryError('sink answered 400', { status: 400, retriable: false });

/** What the test answers a send with: resolve (optionally with a status) or throw. */
export type Answer = { ok: true; status?: number; skipped?: boolean } | { ok: false; error: Error };

export interface Call {
  events: CloudEvent<unknown>[];
  answer(a?: Answer): void;
  answered: boolean;
}

/**
 * In-memory sink: `respond` decides each call's answer (a promise, so delays and holds are
 * possible); by default every call waits in `waiting` until the test answers it.
 */
export class MemorySink implements Sink {
  readonly name = 'memory';
  readonly calls: Call[] = [];
  readonly waiting: Call[] = [];
  /** Accepted events, in acceptance order. */
  readonly accepted: CloudEvent<unknown>[] = [];
  open = 0;
  maxOpen = 0;
  /** Sends in flight per partition key, to catch two sends of one key at once. */
  readonly openPerKey = new Map<string, number>();
  overlapPerKey = 0;
  respond?: (call: Call, n: number) => Promise<Answer> | Answer;
  sendBatch?: (events: CloudEvent<unknown>[]) => Promise<SendResult | void>;

  constructor(batch = false) {
    if (batch) this.sendBatch = (events) => this.handle(events);
  }

  send(event: CloudEvent<unknown>): Promise<SendResult | void> {
    return this.handle([event]);
  }

  async close(): Promise<void> {}
  describe(): string {
    return 'memory';
  }

  /** Answers the oldest waiting call. */
  answerNext(a: Answer = { ok: true }): Call {
    const call = this.waiting.shift();
    if (!call) throw new Error('no call waiting');
    call.answer(a);
    return call;
  }

  private async handle(events: CloudEvent<unknown>[]): Promise<SendResult | void> {
    const keys = [...new Set(events.map((e) => e.partitionkey as string))];
    for (const k of keys) {
      const n = (this.openPerKey.get(k) ?? 0) + 1;
      if (n > 1) this.overlapPerKey++;
      this.openPerKey.set(k, n);
    }
    this.open++;
    this.maxOpen = Math.max(this.maxOpen, this.open);
    let answer!: (a: Answer) => void;
    const answered = new Promise<Answer>((resolve) => (answer = resolve));
    const call: Call = {
      events,
      answered: false,
      answer: (a = { ok: true }) => {
        call.answered = true;
        answer(a);
      },
    };
    const n = this.calls.push(call) - 1;
    if (this.respond) {
      // Not awaited here: a held answer may also be given by the test through `call.answer`.
      void Promise.resolve(this.respond(call, n)).then((a) => {
        if (!call.answered) call.answer(a);
      });
    } else this.waiting.push(call);
    const a = await answered;
    this.open--;
    for (const k of keys) this.openPerKey.set(k, this.openPerKey.get(k)! - 1);
    if (!a.ok) throw a.error;
    this.accepted.push(...events);
    if (a.skipped) return { skipped: true };
    return a.status === undefined ? undefined : { status: a.status };
  }
}

/** A change to the row `key`, number `seq` of that row, in the transaction committing at `lsn`. */
export function change(key: string, seq: number, lsn: bigint, ordinal = 0, extra: Record<string, unknown> = {}): Change {
  return { ...insertOf(questions, { id: seq, question_text: key, ...extra }), commitLsn: lsn, ordinal };
}

export function buildEvent(c: Change): CloudEvent<unknown> {
  const row = (c as { new: Record<string, unknown> }).new;
  return new CloudEvent<unknown>(
    {
      id: changeSequence(c),
      source: '/test',
      type: 'test.change',
      subject: `${row.question_text}#${row.id}`,
      partitionkey: row.question_text as string,
      data: row,
    },
    false,
  );
}

export const keyOf = (e: CloudEvent<unknown>) => e.partitionkey as string;
export const seqOf = (e: CloudEvent<unknown>) => (e.data as { id: number }).id;

export interface Harness {
  engine: DeliveryEngine;
  sink: MemorySink;
  lifecycle: Lifecycle;
  acks: { lsn: bigint; idle: boolean }[];
  pressure: boolean[];
  deadLettered: FailedDelivery[];
  undecodable: UndecodableRecord[];
  events: { [K in keyof LifecycleEventMap]?: LifecycleEventMap[K][] };
}

export function harness(
  sink: MemorySink,
  opts: {
    policy?: Partial<DeliveryConfig>;
    batchSize?: number;
    deadLetter?: DeadLetterHandler;
    undecodable?: UndecodableHandler;
    onAcknowledge?: (lsn: bigint) => void;
    onPressure?: (full: boolean) => void;
    buildEvent?: (c: Change) => CloudEvent<unknown>;
    /** Replaces the default route to `sink` (tests of several destinations). */
    router?: Router;
  } = {},
): Harness {
  const lifecycle = new Lifecycle();
  const h: Harness = { engine: undefined as never, sink, lifecycle, acks: [], pressure: [], deadLettered: [], undecodable: [], events: {} };
  for (const name of ['delivery:delivered', 'delivery:skipped', 'delivery:attemptFailed', 'delivery:deadLettered'] as const) {
    const list: unknown[] = (h.events[name] = []);
    lifecycle.on(name, (p) => list.push(p));
  }
  const destination: Destination = { name: 'memory', sink, batchSize: opts.batchSize ?? 1 };
  const router = opts.router ?? createRouter({
    config: { handler: 'memory' } as Config,
    buildEvent: opts.buildEvent ?? buildEvent,
    destination: () => destination,
  });
  h.engine = new DeliveryEngine({
    router,
    policy: { ...FAST, ...opts.policy },
    lifecycle,
    deadLetter:
      opts.deadLetter ??
      (async (failed) => {
        h.deadLettered.push(failed);
      }),
    undecodable:
      opts.undecodable ??
      (async (record) => {
        h.undecodable.push(record);
      }),
    feedback: {
      acknowledge: (lsn, idle) => {
        opts.onAcknowledge?.(lsn);
        h.acks.push({ lsn, idle });
      },
      setPressure: (full) => {
        opts.onPressure?.(full);
        h.pressure.push(full);
      },
    },
  });
  return h;
}

export const lastAck = (h: Harness): bigint | undefined => h.acks[h.acks.length - 1]?.lsn;

export async function until(what: string, fn: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Lets every pending microtask and I/O callback run, to show that something does NOT happen. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setTimeout(r, 2));
}

/** A deterministic pseudo-random source (mulberry32), so a failing property run can be replayed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
