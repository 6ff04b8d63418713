/**
 * What every counting end of the bench keeps (the HTTP receiver and the consumers at the brokers):
 * events, distinct ids, messages, first/last arrival and one latency per event (arrival, this
 * process's `Date.now()`, minus the event's `time`, the commit time on the same machine clock).
 */
import { summarize, type LatencySummary } from './stats';

export interface ReceiverStats {
  /** Events received (duplicates included). */
  events: number;
  /** Distinct event ids. */
  unique: number;
  /** Requests (HTTP) or messages (brokers) that carried them. */
  requests: number;
  /** Date.now() of the first and of the latest event since the last reset (0 = none). */
  firstAt: number;
  lastAt: number;
  latency: LatencySummary;
}

/** The counts alone: cheap enough to poll (the latency summary sorts every latency). */
export type Counts = Omit<ReceiverStats, 'latency'>;

export class Tally {
  private ids = new Set<string>();
  private events = 0;
  private requests = 0;
  private firstAt = 0;
  private lastAt = 0;
  private latencies: number[] = [];

  /** One request or broker message arrived (it may carry several events). */
  message(): void {
    this.requests += 1;
  }

  record(id: string | undefined, time: string | undefined, now: number): void {
    this.events += 1;
    if (id !== undefined) this.ids.add(id);
    if (time !== undefined) {
      const t = Date.parse(time);
      if (!Number.isNaN(t)) this.latencies.push(now - t);
    }
    if (this.firstAt === 0) this.firstAt = now;
    this.lastAt = now;
  }

  counts(): Counts {
    return { events: this.events, unique: this.ids.size, requests: this.requests, firstAt: this.firstAt, lastAt: this.lastAt };
  }

  stats(): ReceiverStats {
    return { ...this.counts(), latency: summarize(this.latencies) };
  }

  /** Forget everything counted so far (ids, latencies, timestamps). */
  reset(): void {
    this.ids = new Set();
    this.events = 0;
    this.requests = 0;
    this.firstAt = 0;
    this.lastAt = 0;
    this.latencies = [];
  }
}

/**
 * Every string member `"<name>":"…"` of a JSON text, in order, without JSON.parse. The bench
 * table's columns are a bigint `id` and a text `payload` of 'x'/'y' characters, so the only
 * string-valued "id" and "time" members are the events' own (the row's `"id":123` is a number
 * and never matches).
 */
export function stringMembers(body: string, name: string): string[] {
  const key = `"${name}":"`;
  const out: string[] = [];
  let i = 0;
  for (;;) {
    const at = body.indexOf(key, i);
    if (at < 0) return out;
    const start = at + key.length;
    const end = body.indexOf('"', start);
    out.push(body.slice(start, end));
    i = end + 1;
  }
}

/** The first string member `"<name>":"…"` of one JSON event (see stringMembers), from text or bytes. */
export function firstStringMember(body: string | Buffer, name: string): string | undefined {
  const key = `"${name}":"`;
  const at = body.indexOf(key);
  if (at < 0) return undefined;
  const start = at + key.length;
  if (typeof body === 'string') {
    const end = body.indexOf('"', start);
    return end < 0 ? undefined : body.slice(start, end);
  }
  const end = body.indexOf(0x22, start);
  return end < 0 ? undefined : body.toString('latin1', start, end);
}
