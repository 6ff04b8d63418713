import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { SCRIPT_NAMES, scriptSources } from '../../../src/workflows/scripts';

describe('workflows: the Lua scripts', () => {
  it('are copied beside the compiled module and each is prefixed with lib.lua', () => {
    const sources = scriptSources();
    expect([...sources.keys()]).to.deep.equal([...SCRIPT_NAMES]);
    for (const [name, text] of sources) {
      expect(text, name).to.include('local function fire(meta, graph, input, ref, now)');
      expect(text, name).to.include(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'src', 'workflows', 'lua', `${name}.lua`), 'utf8'));
    }
  });

  it('touch one key only, KEYS[1], so that each runs on one Redis Cluster slot', () => {
    for (const [name, text] of scriptSources()) {
      const keys = new Set(text.match(/KEYS\[[^\]]*\]/g) ?? []);
      expect([...keys], name).to.deep.equal(['KEYS[1]']);
      // a key built from an argument would escape the slot: every redis.call names H, the session hash
      for (const call of text.match(/redis\.call\('[A-Z]+', [^,)]+/g) ?? []) {
        if (!/^redis\.call\('TIME'/.test(call)) expect(call, `${name}: ${call}`).to.match(/, H$/);
      }
    }
  });
});
