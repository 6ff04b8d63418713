/**
 * A broker the bench counts at: one small object per broker type (bench/brokers/<type>.ts),
 * listed in bench/brokers/index.ts. `prepare` makes one run's destination of its own; `consume`
 * counts what arrives there into a Tally, in whichever process runs it (bench/brokers/process.ts
 * in a child, or the bench itself).
 */
import type { Tally } from '../tally';

export type BrokerKind = 'redis' | 'nats' | 'kafka';

/** What a consumer needs, as plain JSON: it crosses to the child process on its command line. */
export interface ConsumerSpec {
  kind: BrokerKind;
  /** Where the broker listens (a URL, or Kafka's bootstrap host:port list); loopback only. */
  servers: string[];
  /** The run's stream (Redis, NATS) or topic (Kafka). */
  destination: string;
}

export interface PreparedDestination {
  spec: ConsumerSpec;
  /** `${name}` values for the scenario's configuration lines (bench/scenarios.ts renderConfig). */
  vars: Record<string, string>;
  /** Removes the run's stream, or stops the run's Kafka mock cluster; idempotent. */
  cleanup(): Promise<void>;
}

/** A consumer that is counting: everything published from now on will be seen. */
export interface RunningConsumer {
  close(): Promise<void>;
}

export interface BrokerBench {
  kind: BrokerKind;
  /** `run` is a fresh name ([a-z0-9_]) of this run's own: stream, subject and topic derive from it. */
  prepare(run: string): Promise<PreparedDestination>;
  /** Starts counting; resolves once positioned at the start of the destination. */
  consume(spec: ConsumerSpec, tally: Tally): Promise<RunningConsumer>;
}
