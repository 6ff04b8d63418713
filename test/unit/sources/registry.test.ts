import { expect } from 'chai';
import { Pool } from 'pg';
import type { Config } from '../../../src/config/types';
import { ConfigError, ErrorCodes } from '../../../src/errors';
import { Lifecycle } from '../../../src/lifecycle';
import { createChangeSource, knownSources } from '../../../src/sources';
import type { ChangeConsumer, ChangeSourceOptions } from '../../../src/sources/contract';

const consumer: ChangeConsumer = {
  change: () => undefined,
  undecodable: () => undefined,
  commit: () => undefined,
  position: () => undefined,
  reset: async () => undefined,
  stop: async () => undefined,
};

function options(mode: string): ChangeSourceOptions {
  const config = {
    databaseUrl: 'postgres://127.0.0.1:9/x',
    tables: [],
    capture: { mode, slot: 's', publication: 'p', heartbeatIntervalMs: 0 },
    deadLetters: { schema: 'pgcloudevents', table: 'dead_letters' },
  } as unknown as Config;
  // Never connected: building a source opens nothing until `start()`.
  const pool = new Pool({ connectionString: config.databaseUrl });
  return { config, pool, ownPool: pool, consumer, lifecycle: new Lifecycle() };
}

describe('sources registry (capture.mode → a ChangeSource)', () => {
  it('knows logical and trigger, and builds each as a ChangeSource without connecting', () => {
    expect(knownSources()).to.deep.equal(['logical', 'trigger']);
    for (const mode of ['logical', 'trigger']) {
      const source = createChangeSource(options(mode));
      for (const method of ['start', 'stop', 'acknowledge', 'setPressure'] as const) {
        expect(source[method], `${mode}: ${method}`).to.be.a('function');
      }
    }
  });

  it('an unknown mode is a configuration error naming capture.mode and the known modes', () => {
    let error: unknown;
    try {
      createChangeSource(options('journal'));
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(ConfigError);
    expect((error as ConfigError).code).to.equal(ErrorCodes.CONFIG_INVALID);
    expect((error as ConfigError).problems).to.deep.equal(['capture.mode: "journal" is not a known capture mode; known: logical, trigger']);
  });

  it('a name inherited from Object.prototype is no mode either', () => {
    expect(() => createChangeSource(options('toString'))).to.throw(ConfigError, /capture\.mode: "toString"/);
  });
});
