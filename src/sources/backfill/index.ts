import type { Knex } from 'knex';
import type { Pool } from 'pg';
import type { Config, TableConfig } from '../../config/types';
import type { Lifecycle } from '../../lifecycle';
import { schemaNames } from '../../pg/schema/names';
import { journalNames } from '../journal/names';
import type { Inspection } from '../logical/setup';
import type { ChangeConsumer, ChangeSource, Position } from '../contract';
import { ChunkReader } from './chunks';
import { BackfillCoordinator, type BackfillRunning } from './coordinator';
import { BackfillStore, DEFAULT_CHUNK_SIZE } from './store';
import { BackfillWindow } from './window';

export { BackfillStore } from './store';
export type { BackfillRunning } from './coordinator';

/**
 * Backfill in the running pipeline (README "Backfill", docs/backfill.md): the store and the chunk
 * reader live as long as the process; each leadership term wraps its engine in a window and runs
 * a coordinator, both gone when the term ends (a standby performs nothing).
 */
export class BackfillRuntime {
  readonly store: BackfillStore;
  private readonly reader: ChunkReader;
  private term?: BackfillTerm;

  /**
   * `knex`: the shared pool's; `readerPool`: sessions with REPLICATION_SESSION_OPTIONS, so values
   * print as in the stream.
   */
  constructor(private readonly config: Config, knex: Knex, readerPool: Pool, private readonly lifecycle: Lifecycle) {
    this.store = new BackfillStore(knex, schemaNames(config), config.capture.slot);
    this.reader = new ChunkReader(readerPool);
  }

  /** The consumer the source feeds this term: the window around `engine`. */
  beginTerm(engine: ChangeConsumer): BackfillTerm {
    this.term = new BackfillTerm(new BackfillWindow(engine));
    return this.term;
  }

  /** Starts the term's coordinator once its source is reading. */
  startTerm(term: BackfillTerm, source: Pick<ChangeSource, 'writeWatermark'>): void {
    term.coordinator = new BackfillCoordinator({
      config: this.config, store: this.store, reader: this.reader, window: term.window, source, lifecycle: this.lifecycle,
    });
    term.coordinator.start();
  }

  async endTerm(term: BackfillTerm): Promise<void> {
    await term.coordinator?.stop();
    if (this.term === term) this.term = undefined;
  }

  /** The backfills this replica performs now (none on a standby). */
  status(): BackfillRunning[] {
    return this.term?.coordinator?.status() ?? [];
  }
}

export class BackfillTerm {
  coordinator?: BackfillCoordinator;
  constructor(readonly window: BackfillWindow) {}

  /** Tee of the engine's acknowledgements: a chunk's progress is recorded once they pass its high watermark. */
  acknowledged(position: Position): void {
    this.window.acknowledged(position);
  }
}

/**
 * The tables with `backfill: onAdd` that join capture by the set-up about to run. Logical mode:
 * the publication is created, or does not list them yet. Trigger mode: the table exists and lacks
 * its journal trigger (the trigger is created by this set-up; the first set-up creates them all).
 */
export function tablesJoining(config: Config, state: Pick<Inspection, 'publication' | 'journal'>): TableConfig[] {
  const onAdd = config.tables.filter((t) => t.backfill === 'onAdd');
  if (onAdd.length === 0) return [];
  if (config.capture.mode === 'trigger') {
    const journal = state.journal;
    if (!journal) return [];
    const { rowTrigger } = journalNames(config);
    const joining = new Set(journal.tables
      .filter((t) => !journal.triggers.some((tr) => tr.relid === t.relid && tr.trigger === rowTrigger))
      .map((t) => `${t.schema}.${t.name}`));
    return onAdd.filter((t) => joining.has(`${t.schema}.${t.name}`));
  }
  // FOR ALL TABLES lists every table already.
  const { publication } = state;
  if (config.capture.mode !== 'logical' || publication.allTables) return [];
  const listed = new Set(publication.exists ? publication.tables : []);
  return onAdd.filter((t) => !listed.has(`${t.schema}.${t.name}`));
}

/**
 * Requests a backfill (origin on_add) of each table, unless one of it is already pending or
 * running: set-up and a leader's start may both see the table join, or run twice.
 */
export async function requestOnAdd(store: BackfillStore, tables: readonly TableConfig[]): Promise<string[]> {
  if (tables.length === 0) return [];
  const active = await store.active();
  const busy = new Set(active.map((b) => `${b.schema}.${b.table}`));
  const wanted = tables.filter((t) => !busy.has(`${t.schema}.${t.name}`));
  if (wanted.length === 0) return [];
  const rows = await store.request(wanted.map((t) => ({ schema: t.schema, table: t.name, chunkSize: DEFAULT_CHUNK_SIZE, origin: 'on_add' as const })));
  return rows.map((r) => `${r.schema}.${r.table}: backfill ${r.id}`);
}
