import type { Knex } from 'knex';
import type { Pool } from 'pg';
import { AckRecorder } from '../sources/logical/ack-recorder';
import { PUBLICATION_SQL, SLOT_SQL } from '../pg/catalog-sql';
import type { SlotState } from '../sources/logical/setup';
import { describeGap, lastKnownPosition, RECREATE_SLOT_HINT, sentence, walWarnings, type SlotWarning } from '../sources/logical/slot-guard';
import { inspectSlotRecord } from '../pg/slot-record';
import { knexOn } from '../pg/schema/knex';
import type { Config } from '../config/types';
import type { DeadLetterStore } from '../delivery/dead-letters';
import { ErrorCodes, PgceError, errorMessage } from '../errors';
import type { Lifecycle } from '../lifecycle';
import { logger } from '../logger';
import { journalDepth } from '../sources/journal/setup';
import type { DeliveryStats, PipelineMetrics } from './metrics';

/** How often `run` reads the slot from PostgreSQL for the metrics and the warnings. */
export const SLOT_POLL_MS = 15_000;
/** A warning that persists is logged again this often (its figures change; its kind does not). */
const WARN_REPEAT_MS = 5 * 60_000;
/** `explain` asks the database; a database that does not answer leaves the error as it was. */
const EXPLAIN_TIMEOUT_MS = 5_000;

export interface SlotHealthOptions {
  config: Config;
  pool: Pool;
  lifecycle: Lifecycle;
  metrics: PipelineMetrics;
  deadLetters: Pick<DeadLetterStore, 'count'>;
  delivery: () => DeliveryStats;
  pollIntervalMs?: number;
}

type WarnKind = SlotWarning['kind'] | 'lost';

const num = (text: string | null | undefined) => (text === null || text === undefined ? null : Number(text));

/**
 * The slot as `run` watches it: figures for /status and the metrics (wal_status, safe_wal_size,
 * retained WAL, lag, dead letters), retained-WAL warnings in the log, the acknowledged position
 * kept in the slot record (AckRecorder), and `explain`, which names the gap of a lost slot.
 */
export class SlotHealth {
  private readonly log = logger('capture');
  private readonly acks: AckRecorder;
  /** The slot record through knex, on the same pool. */
  private readonly knex: Knex;
  private readonly warned = new Map<WarnKind, number>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly opts: SlotHealthOptions) {
    this.knex = knexOn(opts.pool);
    this.acks = new AckRecorder({ knex: this.knex, config: opts.config, lifecycle: opts.lifecycle });
  }

  start(): void {
    // Trigger mode has no slot: no acknowledged LSN to record.
    if (this.opts.config.capture.mode !== 'trigger') this.acks.start();
    void this.status().catch(() => undefined);
    this.timer = setInterval(() => this.status().catch(() => undefined), this.opts.pollIntervalMs ?? SLOT_POLL_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.acks.stop();
  }

  /** Slot and dead-letter figures for /status (and the metrics), read from PostgreSQL now. */
  readonly status = async (): Promise<Record<string, unknown>> => {
    const { config, pool, metrics } = this.opts;
    const { rows } = await pool.query(SLOT_SQL, [config.capture.slot]);
    const deadLetterCount = await this.opts.deadLetters.count().catch(() => null);
    if (deadLetterCount !== null) metrics.setDeadLetterCount(deadLetterCount);
    const stats = this.opts.delivery();
    const oldest = stats.oldestUndeliveredCommitTime;
    const deliveryReport = {
      inFlight: stats.inFlight, buffered: stats.buffered, bufferedBytes: stats.bufferedBytes,
      oldestUndeliveredAgeSeconds: oldest ? (Date.now() - oldest.getTime()) / 1000 : null,
    };
    if (config.capture.mode === 'trigger') {
      // The journal's depth and the age of its oldest row, instead of a slot's figures.
      const journal = await journalDepth((sql, params) => pool.query(sql, params), config).catch(() => null);
      return { deadLetters: deadLetterCount, delivery: deliveryReport, slot: null, journal };
    }
    const slot = rows[0] as SlotState | undefined;
    // A missing or invalidated slot holds no WAL back: 0, not the last figure seen.
    const retained = num(slot?.retained_bytes);
    metrics.setSlotRetainedBytes(retained ?? 0);
    metrics.setSlotWalStatus(slot?.wal_status ?? null, num(slot?.safe_wal_size));
    const warnings = this.warnings(slot);
    if (!slot) return { slot: null, deadLetters: deadLetterCount, delivery: deliveryReport };
    return {
      deadLetters: deadLetterCount,
      delivery: deliveryReport,
      slot: {
        name: slot.slot_name, active: slot.active, confirmedFlushLsn: slot.confirmed_flush_lsn,
        retainedWalBytes: retained, lagBytes: num(slot.lag_bytes),
        walStatus: slot.wal_status, safeWalSizeBytes: num(slot.safe_wal_size), maxSlotWalKeepBytes: num(slot.max_slot_wal_keep_bytes),
        warnings: warnings.map((w) => w.message),
      },
    };
  };

  /**
   * A PGCE_ERR_SLOT_LOST raised from the replication stream, completed with what the stream could
   * not know: where the gap begins (this process's last acknowledgement, the slot record, the
   * slot) and, for a publication the slot cannot decode, whether it exists now. Other errors, and
   * this one when the database does not answer, are returned unchanged.
   */
  async explain(err: unknown): Promise<unknown> {
    if (!(err instanceof PgceError) || err.code !== ErrorCodes.SLOT_LOST || typeof err.detail.headline !== 'string') return err;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<unknown>((resolve) => (timer = setTimeout(() => resolve(err), EXPLAIN_TIMEOUT_MS)));
    try {
      return await Promise.race([this.complete(err), timeout]);
    } catch (e) {
      this.log.warn({ err: errorMessage(e) }, 'could not read the slot to name the gap');
      return err;
    } finally {
      clearTimeout(timer);
    }
  }

  private async complete(err: PgceError): Promise<PgceError> {
    const { config, pool } = this.opts;
    const slot = ((await pool.query(SLOT_SQL, [config.capture.slot])).rows[0] as SlotState | undefined) ?? null;
    const record = (await inspectSlotRecord(this.knex, config)).record;
    const position = lastKnownPosition(slot, record, this.acks.lastAcknowledged);
    let note = '';
    if (err.detail.reason === 'publication') {
      const name = String(err.detail.publication);
      const exists = Boolean((await pool.query(PUBLICATION_SQL, [name])).rowCount);
      note = exists
        ? ` Publication "${name}" exists now: it was dropped and re-created after the slot's position.`
        : ` Publication "${name}" does not exist now.`;
    }
    const gap = describeGap(position);
    const message =
      `${err.detail.headline}.${note} ${sentence(gap)} were never delivered and cannot be ` +
      `(PostgreSQL: ${err.detail.postgres}). ${RECREATE_SLOT_HINT}`;
    return new PgceError(ErrorCodes.SLOT_LOST, message, { retriable: false, cause: err.cause ?? err, detail: { ...err.detail, after: position?.lsn } });
  }

  /** Warnings for the slot, each kind logged when it appears and again every WARN_REPEAT_MS. */
  private warnings(slot: SlotState | undefined): SlotWarning[] {
    const name = this.opts.config.capture.slot;
    const now = Date.now();
    const current = new Map<WarnKind, string>();
    // A missing slot is no warning here: the first run creates it after this poller starts.
    if (slot?.wal_status === 'lost') current.set('lost', `replication slot "${name}" was invalidated (wal_status lost)`);
    const warnings = slot ? walWarnings(slot, this.opts.config) : [];
    for (const w of warnings) current.set(w.kind, w.message);
    for (const [kind, message] of current) {
      const last = this.warned.get(kind);
      if (last !== undefined && now - last < WARN_REPEAT_MS) continue;
      this.warned.set(kind, now);
      if (kind === 'lost') this.log.error({ slot: name }, message);
      else this.log.warn({ slot: name, kind }, message);
    }
    for (const kind of [...this.warned.keys()]) {
      if (current.has(kind)) continue;
      this.warned.delete(kind);
      this.log.info({ slot: name, kind }, 'replication slot warning cleared');
    }
    return warnings;
  }
}
