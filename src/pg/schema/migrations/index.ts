import { deadLetters } from './000001-dead-letters';
import { exactEvents } from './000002-dead-letters-exact-events';
import { captureSlots } from './000003-capture-slots';
import { deadLettersDestination } from './000004-dead-letters-destination';
import { triggerRules } from './000005-trigger-rules';
import { backfills } from './000006-backfills';
import { journal } from './000007-journal';
import type { SchemaMigration } from './types';

export type { SchemaMigration } from './types';

/**
 * Every migration, in the order they run. Listed here rather than found in the folder, so the
 * compiled code (dist/, .js) runs exactly what the tests ran (.ts). A new one is a module beside
 * these and one line at the end (docs/schema.md).
 */
export const MIGRATIONS: readonly SchemaMigration[] = [deadLetters, exactEvents, captureSlots, deadLettersDestination, triggerRules, backfills, journal];
