import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenFile } from '../../../src/sinks/http/token';

describe('the OIDC token file (clock injected)', () => {
  it('is looked at once per maxAgeMs: a change shows after the window, not before', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgce-token-'));
    const path = join(dir, 'token');
    let now = 1_000_000;
    const token = new TokenFile(path, { maxAgeMs: 1000, now: () => now });
    expect(await token.read()).to.equal(undefined);
    writeFileSync(path, 'first\n');
    now += 999;
    expect(await token.read(), 'still within the window: no look at the file').to.equal(undefined);
    now += 1;
    expect(await token.read()).to.equal('first');
    writeFileSync(path, 'second-longer\n');
    now += 1000;
    expect(await token.read()).to.equal('second-longer');
    rmSync(path);
    now += 1000;
    expect(await token.read()).to.equal(undefined);
    rmSync(dir, { recursive: true, force: true });
  });
});
