import type { Client } from 'pg';
import type { Config } from '../../config/types';
import { connect } from '../../pg/db';
import { resolveCaptureNames } from './names';
import { inspect, raiseErrors, verify, type Inspection, type Verdict, type VerifyOptions } from './setup';

/**
 * Runs `fn` with a plain connection, always closed afterwards, and the configuration with the
 * slot and publication names resolved on it (the defaults are per database: sources/logical/names.ts).
 */
export async function withDatabase<T>(config: Config, fn: (client: Client, config: Config) => Promise<T>): Promise<T> {
  const client = await connect(config.databaseUrl);
  try {
    return await fn(client, await resolveCaptureNames(client, config));
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Inspects the database and throws when capture cannot work; returns the state and warnings. */
export async function inspectAndVerify(
  client: Client, config: Config, options: VerifyOptions = {},
): Promise<{ state: Inspection; verdict: Verdict }> {
  const state = await inspect(client, config);
  const verdict = verify(state, config, options);
  raiseErrors(verdict);
  return { state, verdict };
}
