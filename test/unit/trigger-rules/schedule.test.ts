import { expect } from 'chai';
import { MAX_SETS, RuleSchedule } from '../../../src/trigger-rules/schedule';
import type { TableRules } from '../../../src/trigger-rules/validate';

const rules = (fingerprint: string): TableRules => ({ valid: [], invalid: [], fingerprint });

describe('trigger-rules/schedule: which table rule set a change meets', () => {
  it('the first set applies to every change; a later one from the position read with it', () => {
    const s = new RuleSchedule();
    expect(s.at(5n)).to.equal(undefined);
    const first = s.install(rules('a'), 100n)!;
    expect(first.from).to.equal(0n);
    expect(s.at(10n)).to.equal(first);
    const second = s.install(rules('b'), 200n)!;
    expect(second.from).to.equal(200n);
    // Lag changes nothing: a change committed before the read meets the old set, whenever routed.
    expect(s.at(150n)).to.equal(first);
    expect(s.at(199n)).to.equal(first);
    expect(s.at(200n)).to.equal(second);
    expect(s.at(120n)).to.equal(first);
  });

  it('an unchanged read installs nothing', () => {
    const s = new RuleSchedule();
    s.install(rules('a'), 100n);
    expect(s.install(rules('a'), 300n)).to.equal(undefined);
    expect(s.kept).to.have.length(1);
  });

  it('a change already routed past the read position keeps its set: the new one starts after it', () => {
    const s = new RuleSchedule();
    const first = s.install(rules('a'), 100n)!;
    expect(s.at(250n)).to.equal(first);
    const second = s.install(rules('b'), 200n)!;
    expect(second.from).to.equal(251n);
    expect(s.at(250n), 'the rest of that transaction').to.equal(first);
    expect(s.at(251n)).to.equal(second);
  });

  it('sets before the acknowledged position are dropped; at most MAX_SETS are kept', () => {
    const s = new RuleSchedule();
    s.install(rules('a'), 1n);
    s.install(rules('b'), 100n);
    const third = s.install(rules('c'), 200n)!;
    const retired: string[] = [];
    s.onRetired = (set) => retired.push(set.rules.fingerprint);
    s.acknowledged(150n);
    expect(s.kept.map((x) => x.rules.fingerprint)).to.deep.equal(['b', 'c']);
    expect(retired, 'a set acknowledgements passed may close its actions').to.deep.equal(['a']);
    s.acknowledged(200n);
    expect(s.kept).to.deep.equal([third]);
    expect(retired).to.deep.equal(['a', 'b']);
    for (let i = 0; i < MAX_SETS + 5; i++) s.install(rules(`n${i}`), 1000n + BigInt(i));
    expect(s.kept).to.have.length(MAX_SETS);
    expect(retired, 'a set pushed out by MAX_SETS may still have changes on their way: not retired').to.deep.equal(['a', 'b']);
    expect(s.current!.rules.fingerprint).to.equal(`n${MAX_SETS + 4}`);
  });

  it('a set read at the same start as the newest replaces it (no change met that one)', () => {
    const s = new RuleSchedule();
    s.install(rules('a'), 1n);
    s.install(rules('b'), 100n);
    s.install(rules('c'), 100n);
    expect(s.kept.map((x) => x.rules.fingerprint)).to.deep.equal(['a', 'c']);
  });
});
