import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes } from '../../src/errors';

// fastify's habit: a code that users can meet must be documented, so a missing row fails here.
describe('error codes', () => {
  const readme = readFileSync(join(__dirname, '..', '..', '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Error codes'));

  for (const code of Object.values(ErrorCodes)) {
    it(`${code} is documented in the README's "Error codes" table`, () => {
      expect(section).to.include(`| \`${code}\` |`);
    });
  }

  it('every code is unique and PGCE_ERR_-prefixed', () => {
    const codes = Object.values(ErrorCodes);
    expect(new Set(codes).size).to.equal(codes.length);
    for (const c of codes) expect(c).to.match(/^PGCE_ERR_[A-Z_]+$/);
  });
});
