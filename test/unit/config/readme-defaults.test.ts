import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import YAML from 'yaml';
import { DEFAULTS } from '../../../src/config/load';
import { findPackageRoot } from '../../../src/config/schema';

/** `a.b` → value for every leaf of a plain object (arrays and nulls are leaves). */
function leaves(value: unknown, prefix = ''): Map<string, unknown> {
  const out = new Map<string, unknown>();
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    out.set(prefix, value);
    return out;
  }
  for (const [key, child] of Object.entries(value)) {
    for (const [k, v] of leaves(child, prefix === '' ? key : `${prefix}.${key}`)) out.set(k, v);
  }
  return out;
}

/** The README's "### File" block: every key, with its default. */
function readmeFileBlock(): Map<string, unknown> {
  const readme = fs.readFileSync(path.join(findPackageRoot(), 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n### File'));
  const block = /```yaml\n([\s\S]*?)```/.exec(section);
  expect(block, 'README "### File" has a yaml block').to.not.equal(null);
  return leaves(YAML.parse(block![1]));
}

describe('README configuration defaults agree with the code', () => {
  it('every key the README block sets that has a default in the loader shows that default', () => {
    const block = readmeFileBlock();
    const defaults = leaves(DEFAULTS);
    let compared = 0;
    for (const [key, value] of block) {
      if (!defaults.has(key)) continue;
      expect(value, `README "File" block, ${key}`).to.deep.equal(defaults.get(key));
      compared++;
    }
    expect(compared, 'keys compared').to.be.greaterThan(20);
  });

  it('delivery.retry and delivery.retryAfterMax have no default (keep retrying, no cap): the block leaves them unset', () => {
    const block = readmeFileBlock();
    const defaults = leaves(DEFAULTS);
    for (const key of ['delivery.retry', 'delivery.retryAfterMax']) {
      expect(defaults.has(key), `${key} in DEFAULTS`).to.equal(false);
      expect(block.has(key), `README "File" block sets ${key}, which reads as its default`).to.equal(false);
    }
  });
});
