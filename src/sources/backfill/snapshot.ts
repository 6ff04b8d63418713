/**
 * Which transactions a chunk's snapshot saw, from `pg_current_snapshot()` (`xmin:xmax:xip,…`,
 * 64-bit xids), asked of the stream's 32-bit xids (pgoutput's Begin). A transaction the snapshot
 * did not see is one listed in progress (`xip`) or one at or after `xmax`; everything older was
 * finished when the snapshot was taken.
 */
export class SnapshotVisibility {
  private readonly inProgress: Set<number>;
  private readonly xmax32: number;

  constructor(readonly text: string, xmax: bigint, xip: readonly bigint[]) {
    this.xmax32 = Number(xmax & 0xffffffffn);
    this.inProgress = new Set(xip.map((x) => Number(x & 0xffffffffn)));
  }

  static parse(text: string): SnapshotVisibility {
    const m = /^(\d+):(\d+):([\d,]*)$/.exec(text.trim());
    if (!m) throw new Error(`not a snapshot: ${JSON.stringify(text)}`);
    const xip = m[3] === '' ? [] : m[3].split(',').map((x) => BigInt(x));
    return new SnapshotVisibility(text, BigInt(m[2]), xip);
  }

  /** True when the transaction `xid` (32-bit, as the stream gives it) was not visible to the snapshot. */
  invisible(xid: number): boolean {
    if (this.inProgress.has(xid)) return true;
    // Modulo 2^32, as PostgreSQL compares xids: "at or after xmax" within half the xid space.
    return ((xid - this.xmax32) >>> 0) < 0x80000000;
  }
}
