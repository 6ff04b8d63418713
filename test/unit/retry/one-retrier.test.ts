import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';

const SRC = path.join(__dirname, '..', '..', '..', '..', 'src');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

describe('retry: every loop that waits and tries again uses src/retry (source scan)', () => {
  const files = sources(SRC).filter((f) => !f.startsWith(path.join(SRC, 'retry')));

  it('no other module defines a sleep or pause helper', () => {
    const helpers = files.filter((f) => /function\s+(sleep|sleepFor|pause|delay|wait)\s*\(/.test(fs.readFileSync(f, 'utf8')));
    expect(helpers.map((f) => path.relative(SRC, f))).to.deep.equal([]);
  });

  it('delivery, dead-letter storage, the engine, leader polling and the replication reconnect import the retrier', () => {
    const users = ['delivery/deliver.ts', 'delivery/dead-letters/handler.ts', 'delivery/engine.ts', 'pg/leader.ts', 'sources/logical/source.ts'];
    for (const u of users) {
      expect(fs.readFileSync(path.join(SRC, u), 'utf8'), u).to.match(/from '(\.\.\/)+retry'/);
    }
  });
});
