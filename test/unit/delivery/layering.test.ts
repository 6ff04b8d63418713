import { expect } from 'chai';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Delivery asks the error (`retriable`, `retryAfterMs`), never an answer table: which HTTP statuses
 * are retried and how Retry-After reads are properties of the HTTP binding (src/sinks/http/).
 */
describe('delivery/ layering', () => {
  const root = join(process.cwd(), 'src', 'delivery');
  const files = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
    });

  it('no file under src/delivery/ imports the HTTP answer table or Retry-After parsing', () => {
    const offenders = files(root).filter((file) =>
      /from '[^']*sinks\/http\/(status|retry-after|answer)'/.test(readFileSync(file, 'utf8')));
    expect(offenders).to.deep.equal([]);
  });

  it('the answer table and Retry-After parsing are not in src/delivery/ any more', () => {
    const names = files(root).map((f) => f.slice(root.length + 1));
    expect(names).to.not.include.members(['classify.ts', 'retry-after.ts']);
  });
});
