import { ConfigError } from '../errors';
import type { ChangeSource, ChangeSourceFactory, ChangeSourceOptions } from './contract';
import { createJournalSource } from './journal';
import { createLogicalSource } from './logical';

/**
 * The change-source registry: `capture.mode` names the source. A new mode is one folder
 * (src/sources/<mode>/ exporting a ChangeSourceFactory; src/sources/contract.ts says what it must
 * keep) and one line here.
 */
const SOURCES: Record<string, ChangeSourceFactory> = {
  logical: createLogicalSource,
  trigger: createJournalSource,
};

export function knownSources(): string[] {
  return Object.keys(SOURCES);
}

export function createChangeSource(options: ChangeSourceOptions): ChangeSource {
  const mode: string = options.config.capture.mode;
  if (!Object.prototype.hasOwnProperty.call(SOURCES, mode)) {
    throw new ConfigError([`capture.mode: ${JSON.stringify(mode)} is not a known capture mode; known: ${knownSources().join(', ')}`]);
  }
  return SOURCES[mode](options);
}
