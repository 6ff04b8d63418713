/**
 * Which table rules apply to a change (README "Rules at runtime", the activation point). Each read
 * of the table that found a different rule set is installed from the WAL position read with it
 * (one statement: the rows are those committed before that position): it applies to every change
 * whose commit LSN is at or after that position, and earlier changes keep the set that was in
 * force, however late the stream routes them. So lag (a paused or slow pipeline, a backlog after
 * an outage) never changes which rules a change meets.
 *
 * One refinement keeps it exact: a change already routed when the read returns (the stream was
 * caught up and passed the position while the answer travelled) keeps its set, so a set starts
 * at max(read position, last routed commit LSN + 1): a transaction is never routed with two sets.
 *
 * Sets stay until the acknowledged position passes the next one's start (a restart of the stream
 * re-routes only changes after it), at most MAX_SETS of them.
 *
 * In capture.mode trigger a change's commitLsn is its journal row's id, and a set's position is
 * one more than the largest id committed at the read (store.ts): rows written after the read meet
 * the new set. Ids are taken when a row is written, not at commit, so a transaction already
 * writing during the read meets the old set with the rows it wrote before it (docs/journal.md).
 */
import type { TableRules } from './validate';

export interface RuleSet {
  /** 1, 2, … per install in this process. */
  readonly version: number;
  /** The first commit LSN the set applies to (0: every change, the set read at start). */
  readonly from: bigint;
  /** The position read with the rows. */
  readonly readLsn: bigint;
  readonly readAt: Date;
  readonly rules: TableRules;
}

/** Kept sets at most: older ones merge into the next (a backlog this long of rule changes is rare). */
export const MAX_SETS = 100;

export class RuleSchedule {
  private sets: RuleSet[] = [];
  private version = 0;
  /** The highest commit LSN routed so far. */
  private routed = -1n;

  /**
   * Installs the rules read at `readLsn` when they differ from the newest set; returns the new set
   * (undefined when nothing changed). The first set applies to every change.
   */
  install(rules: TableRules, readLsn: bigint, readAt = new Date()): RuleSet | undefined {
    const newest = this.sets[this.sets.length - 1];
    if (newest !== undefined && newest.rules.fingerprint === rules.fingerprint) return undefined;
    const from = newest === undefined ? 0n : max(readLsn, this.routed + 1n, newest.from);
    const set: RuleSet = { version: ++this.version, from, readLsn, readAt, rules };
    // A set starting where the newest does replaces it: no change can have met that one.
    if (newest !== undefined && newest.from === from) this.sets[this.sets.length - 1] = set;
    else this.sets.push(set);
    if (this.sets.length > MAX_SETS) this.sets.shift();
    return set;
  }

  /** The set in force for a change committed at `commitLsn` (undefined before the first read). Hot path. */
  at(commitLsn: bigint): RuleSet | undefined {
    if (commitLsn > this.routed) this.routed = commitLsn;
    const { sets } = this;
    for (let i = sets.length - 1; i >= 0; i--) if (sets[i].from <= commitLsn) return sets[i];
    return sets[0];
  }

  /**
   * Told of each set that acknowledgements passed: every change it routed is delivered or
   * dead-lettered, so what it opened (its actions' targets) may close. A set pushed out by
   * MAX_SETS is not told: changes it routed may still be on their way.
   */
  onRetired: ((set: RuleSet) => void) | undefined;

  /** The stream will not hand over changes at or before `lsn` again: sets before it are done. */
  acknowledged(lsn: bigint): void {
    while (this.sets.length > 1 && this.sets[1].from <= lsn) {
      const retired = this.sets.shift()!;
      this.onRetired?.(retired);
    }
  }

  /** The newest set (what the table says now). */
  get current(): RuleSet | undefined {
    return this.sets[this.sets.length - 1];
  }

  /** Every set kept, oldest first. */
  get kept(): readonly RuleSet[] {
    return this.sets;
  }
}

function max(...values: bigint[]): bigint {
  return values.reduce((a, b) => (b > a ? b : a));
}
