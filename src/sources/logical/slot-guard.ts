import type { Config } from '../../config/types';
import { ErrorCodes, PgceError } from '../../errors';
import { formatLsn, parseLsn } from '../change';
import type { SlotState } from './setup';
import type { SlotRecord } from '../../pg/slot-record';

/**
 * Is the slot still the one whose position we acknowledged? A slot that is missing, invalidated
 * (wal_status lost) or older than the one we created means changes were committed that can never
 * be delivered: that gap is PGCE_ERR_SLOT_LOST, named by position, until an operator accepts it
 * with `setup --recreate-slot`. Pure functions over what inspect() read, plus the classifier the
 * replication stream calls on the walsender's errors.
 *
 * What cannot be told: a slot dropped and re-created under the same name by something else while
 * no `run` was reading it. PostgreSQL keeps neither a creation time nor an identity for a slot,
 * and a new slot's position is ahead of ours, just as our own slot's would be.
 */

export const RECREATE_SLOT_HINT = 'To accept the gap and capture from now on: pg-cloudevents setup --recreate-slot';

export type SlotLossReason = 'missing' | 'invalidated' | 'different' | 'publication';

export interface SlotDiagnosis {
  errors: PgceError[];
  warnings: string[];
}

/** A warning and its kind (a running process logs each kind once, not every figure of it). */
export interface SlotWarning {
  kind: 'behind' | 'unreserved' | 'retained' | 'keepSize';
  message: string;
}

/** The furthest position known to be delivered, and when it was acknowledged (when known). */
export interface KnownPosition {
  lsn: string;
  at: Date | null;
  /** Nothing was acknowledged since the slot was created: `lsn` is where it began. */
  created: boolean;
}

export interface Acknowledged {
  lsn: bigint;
  at: Date;
}

export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${n} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

const num = (text: string | null | undefined): number | null => (text === null || text === undefined ? null : Number(text));

/**
 * The last position delivered: the furthest of the record's acknowledgement, the slot's confirmed
 * position and (in a running process) the last acknowledgement it sent.
 */
export function lastKnownPosition(slot: SlotState | null, record: SlotRecord | null, acknowledged?: Acknowledged): KnownPosition | null {
  const candidates: KnownPosition[] = [];
  if (record?.createdLsn) candidates.push({ lsn: record.createdLsn, at: record.createdAt, created: true });
  if (record?.acknowledgedLsn) candidates.push({ lsn: record.acknowledgedLsn, at: record.acknowledgedAt, created: false });
  if (slot?.confirmed_flush_lsn) candidates.push({ lsn: slot.confirmed_flush_lsn, at: null, created: false });
  if (acknowledged && acknowledged.lsn > 0n) candidates.push({ lsn: formatLsn(acknowledged.lsn), at: acknowledged.at, created: false });
  let best: KnownPosition | null = null;
  for (const c of candidates) {
    const order = best ? parseLsn(c.lsn) - parseLsn(best.lsn) : 1n;
    if (order > 0n) best = c;
    // The same position from two sources: an acknowledgement time says more than a creation.
    else if (order === 0n && best) best = { lsn: best.lsn, created: best.created && !c.at, at: c.at ?? best.at };
  }
  return best;
}

/** Capitalised, to start a sentence. */
export function sentence(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** "changes committed after LSN 0/16B3748 (last acknowledged at …)": what the gap starts with. */
export function describeGap(position: KnownPosition | null): string {
  if (!position) return 'the changes committed since its last acknowledged position (not recorded)';
  const when = position.at ? position.at.toISOString() : null;
  const how = position.created
    ? `where the slot began${when ? ` on ${when}` : ''}; nothing was acknowledged after it`
    : when ? `last acknowledged at ${when}` : 'its last confirmed position';
  return `the changes committed after LSN ${position.lsn} (${how})`;
}

function lost(reason: SlotLossReason, message: string, detail: Record<string, unknown> = {}): PgceError {
  return new PgceError(ErrorCodes.SLOT_LOST, message, { retriable: false, detail: { reason, ...detail } });
}

/** Errors (a gap: PGCE_ERR_SLOT_LOST) and warnings (retained WAL) for capture.slot. */
export function diagnoseSlot(slot: SlotState | null, record: SlotRecord | null, database: string, config: Config): SlotDiagnosis {
  const name = config.capture.slot;
  const errors: PgceError[] = [];
  const warnings: string[] = [];
  const gap = () => `${sentence(describeGap(lastKnownPosition(slot, record)))} were never delivered and cannot be. ${RECREATE_SLOT_HINT}`;
  const keep = num(slot?.max_slot_wal_keep_bytes);

  if (!slot) {
    if (record) {
      const origin = record.createdLsn
        ? `pg-cloudevents created it at LSN ${record.createdLsn} on ${record.createdAt.toISOString()}`
        : `pg-cloudevents recorded it on ${record.createdAt.toISOString()}`;
      const where = record.database !== database ? ` in database "${record.database}"` : '';
      errors.push(lost('missing',
        `replication slot "${name}" is gone (${origin}${where}): it was dropped, or the database was restored or ` +
        `copied without it. ${gap()}`));
    }
    return { errors, warnings };
  }

  if (slot.wal_status === 'lost') {
    const why = keep !== null ? `, as it retained more than max_slot_wal_keep_size = ${formatBytes(keep)}` : '';
    errors.push(lost('invalidated',
      `replication slot "${name}" was invalidated (wal_status lost): PostgreSQL removed WAL it still needed${why}. ${gap()}`));
    return { errors, warnings };
  }

  if (record?.createdLsn && slot.confirmed_flush_lsn && parseLsn(slot.confirmed_flush_lsn) < parseLsn(record.createdLsn)) {
    errors.push(lost('different',
      `replication slot "${name}" is not the one pg-cloudevents created at LSN ${record.createdLsn} on ` +
      `${record.createdAt.toISOString()}: its position ${slot.confirmed_flush_lsn} is older than that, so it was ` +
      `created elsewhere (or the record comes from another cluster). ${RECREATE_SLOT_HINT}`));
    return { errors, warnings };
  }

  if (record?.acknowledgedLsn && slot.confirmed_flush_lsn && parseLsn(slot.confirmed_flush_lsn) < parseLsn(record.acknowledgedLsn)) {
    warnings.push(
      `replication slot "${name}" is at ${slot.confirmed_flush_lsn}, behind the last acknowledged position ` +
      `${record.acknowledgedLsn}: PostgreSQL saves a slot's position at checkpoints, so after a crash it can go back; ` +
      `the changes in between are delivered again (at least once)`);
  }
  warnings.push(...walWarnings(slot, config).map((w) => w.message));
  return { errors, warnings };
}

/** Retained-WAL warnings: PostgreSQL's own "unreserved", and the configured thresholds. */
export function walWarnings(slot: SlotState, config: Config): SlotWarning[] {
  const name = config.capture.slot;
  const { retainedWalWarnBytes, retainedWalWarnFraction } = config.capture;
  const warnings: SlotWarning[] = [];
  const warn = (kind: SlotWarning['kind'], message: string) => warnings.push({ kind, message });
  const retained = num(slot.retained_bytes);
  const keep = num(slot.max_slot_wal_keep_bytes);
  const safe = num(slot.safe_wal_size);
  if (slot.wal_status === 'unreserved') {
    warn('unreserved',
      `replication slot "${name}" has wal_status unreserved: it holds more WAL than max_slot_wal_keep_size allows, and ` +
      `the next checkpoint invalidates it (the changes not yet delivered are then lost) unless capture catches up`);
  }
  if (retained === null) return warnings;
  if (retainedWalWarnBytes > 0 && retained > retainedWalWarnBytes) {
    warn('retained',
      `replication slot "${name}" retains ${formatBytes(retained)} of WAL (more than capture.retainedWalWarnBytes = ` +
      `${formatBytes(retainedWalWarnBytes)}): capture or the sink is behind, or no run reads the slot; PostgreSQL keeps ` +
      `this WAL on disk until it is acknowledged`);
  }
  if (keep !== null && keep > 0 && retainedWalWarnFraction > 0 && retained > keep * retainedWalWarnFraction) {
    warn('keepSize',
      `replication slot "${name}" retains ${formatBytes(retained)}, ${Math.round((retained / keep) * 100)}% of ` +
      `max_slot_wal_keep_size = ${formatBytes(keep)} (capture.retainedWalWarnFraction = ${retainedWalWarnFraction})` +
      `${safe !== null ? `; ${formatBytes(Math.max(0, safe))} more WAL` : '; a little more WAL'} and PostgreSQL ` +
      `invalidates it, losing the changes not yet delivered`);
  }
  return warnings;
}

interface PgError {
  message: string;
  code?: string;
  detail?: string;
  hint?: string;
  where?: string;
}

/** PostgreSQL's own words: the message with its DETAIL and HINT, which the walsender puts there. */
export function postgresText(e: PgError): string {
  return [e.message, e.detail && `DETAIL: ${e.detail}`, e.hint && `HINT: ${e.hint}`].filter(Boolean).join(' ');
}

/**
 * The walsender's errors that mean the slot can never be read again: invalidated, dropped, or
 * unable to decode because the publication was dropped under it. Retrying cannot help, so these
 * end capture (non-retriable) as PGCE_ERR_SLOT_LOST; anything else is undefined (not ours).
 */
export function slotStreamError(err: unknown): PgceError | undefined {
  const e = err as PgError | undefined;
  if (!e || typeof e.message !== 'string' || err instanceof PgceError) return undefined;
  const postgres = postgresText(e);
  const detail = { postgres, sqlstate: e.code };
  let m: RegExpExecArray | null;
  if (e.code === '55000' && (m = /(?:cannot read from|can no longer get changes from) (?:logical )?replication slot "([^"]+)"/.exec(e.message))) {
    const headline = `replication slot "${m[1]}" was invalidated and can no longer be read`;
    return lost('invalidated', `${headline} (PostgreSQL: ${postgres}). ${RECREATE_SLOT_HINT}`, { ...detail, slot: m[1], headline });
  }
  if (e.code === '42704' && (m = /^replication slot "([^"]+)" does not exist/.exec(e.message))) {
    const headline = `replication slot "${m[1]}" was dropped while pg-cloudevents was reading it`;
    return lost('missing', `${headline} (PostgreSQL: ${postgres}). ${RECREATE_SLOT_HINT}`, { ...detail, slot: m[1], headline });
  }
  if (e.code === '42704' && (m = /^publication "([^"]+)" does not exist/.exec(e.message))) {
    const slot = /slot "([^"]+)"/.exec(e.where ?? '')?.[1];
    const at = /associated LSN ([0-9A-F]+\/[0-9A-F]+)/i.exec(e.where ?? '')?.[1];
    const headline =
      `replication slot${slot ? ` "${slot}"` : ''} cannot decode the change${at ? ` at LSN ${at}` : ''}: publication ` +
      `"${m[1]}" did not exist there. It was dropped while the slot still had changes to read, and PostgreSQL decodes ` +
      `each change with the catalog of its time, so creating the publication again does not help this slot`;
    return lost('publication', `${headline} (PostgreSQL: ${postgres}). ${RECREATE_SLOT_HINT} (it creates the publication too when missing)`, {
      ...detail, slot, publication: m[1], lsn: at, headline,
    });
  }
  return undefined;
}
