import type { ChangeSource, ChangeSourceOptions } from '../contract';
import { JournalSource } from './source';

/**
 * The trigger-journal source (`capture.mode: trigger`): changes written by triggers into
 * pgcloudevents.journal, read in commit-safe rounds (./source.ts). Needs neither wal_level =
 * logical nor REPLICATION. A preview (`tail`) reads what commits from now on and deletes nothing.
 */
export function createJournalSource(options: ChangeSourceOptions): ChangeSource {
  return new JournalSource({
    config: options.config, pool: options.ownPool, consumer: options.consumer, lifecycle: options.lifecycle, preview: options.preview,
  });
}
