import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import { ConfigError } from '../../../../src/errors';
import { compileFilters } from '../../../../src/routing/triggers/filters';

// The event and values of Knative's own test tables (pkg/eventfilter/subscriptionsapi/*_test.go).
const eventType = 'dev.knative.example';
const eventSource = 'knativesource';
const extensionName = 'myextension';
const extensionValue = 'my-extension-value';

const makeEvent = () => new CloudEvent({ type: eventType, source: eventSource, id: '1234' });
const makeEventWithExtension = (name: string, value: string) =>
  new CloudEvent({ type: eventType, source: eventSource, id: '1234', [name]: value });

function matches(filters: unknown, event: CloudEvent<unknown> = makeEvent()): boolean {
  return compileFilters(filters, 'triggers[0].filters')(event);
}

function problemsOf(filters: unknown): string[] {
  try {
    compileFilters(filters, 'triggers[0].filters');
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('trigger filters: exact (exact_filter_test.go TestExactMatchFilter)', () => {
  const cases: [string, string, string, CloudEvent<unknown> | undefined, boolean][] = [
    ['Wrong type', 'type', 'some-other-type', undefined, false],
    ['Wrong source', 'source', 'some-other-source', undefined, false],
    ['Wrong extension', extensionName, 'some-other-extension', undefined, false],
    ['Match type', 'type', eventType, undefined, true],
    ['Match extension', extensionName, extensionValue, makeEventWithExtension(extensionName, extensionValue), true],
  ];
  for (const [name, attribute, value, event, want] of cases) {
    it(`${name} → ${want ? 'pass' : 'fail'}`, () => {
      expect(matches([{ exact: { [attribute]: value } }], event)).to.equal(want);
    });
  }

  // TestMultipleExactMatchFilters: every entry of the map must match.
  const multiple: [string, Record<string, string>, CloudEvent<unknown> | undefined, boolean][] = [
    ['Wrong type and source', { type: 'some-other-type', source: 'some-other-source' }, undefined, false],
    ['Match type and wrong source', { type: eventType, source: 'some-other-source' }, undefined, false],
    ['Match type and match source', { type: eventType, source: eventSource }, undefined, true],
    ['Match type and miss extension', { type: eventType, [extensionName]: extensionValue }, undefined, false],
    ['Match type and match extension', { type: eventType, [extensionName]: extensionValue }, makeEventWithExtension(extensionName, extensionValue), true],
  ];
  for (const [name, exact, event, want] of multiple) {
    it(`${name} → ${want ? 'pass' : 'fail'}`, () => {
      expect(matches([{ exact }], event)).to.equal(want);
    });
  }

  it('is case-sensitive in the value and matches the whole value only', () => {
    expect(matches([{ exact: { type: 'DEV.KNATIVE.EXAMPLE' } }])).to.equal(false);
    expect(matches([{ exact: { type: 'dev.knative' } }])).to.equal(false);
  });
});

describe('trigger filters: prefix (prefix_filter_test.go TestPrefixFilter, TestMultiplePrefixFilters)', () => {
  const cases: [string, Record<string, string>, CloudEvent<unknown> | undefined, boolean][] = [
    ['Missing attribute', { someotherattribute: 'wrong.prefix' }, undefined, false],
    ['Wrong type prefix', { type: 'wrong.prefix' }, undefined, false],
    ['Wrong source prefix', { source: 'wrong.prefix' }, undefined, false],
    ['Wrong extension prefix', { [extensionName]: 'wrong.prefix' }, undefined, false],
    ['Match type prefix', { type: 'dev.knative' }, undefined, true],
    ['Match extension prefix', { [extensionName]: 'my-extension' }, makeEventWithExtension(extensionName, extensionValue), true],
    ['Match type and wrong source', { type: 'dev.knative', source: 'wrong.prefix' }, undefined, false],
    ['Match type and match source', { type: 'dev.knative', source: 'knative' }, undefined, true],
    ['Match type and missing extension', { type: 'dev.knative', [extensionName]: 'attri.prefix' }, undefined, false],
    ['Contained but not at the start', { type: 'knative' }, undefined, false],
  ];
  for (const [name, prefix, event, want] of cases) {
    it(`${name} → ${want ? 'pass' : 'fail'}`, () => {
      expect(matches([{ prefix }], event)).to.equal(want);
    });
  }
});

describe('trigger filters: suffix (suffix_filter_test.go TestSuffixFilter)', () => {
  const cases: [string, Record<string, string>, CloudEvent<unknown> | undefined, boolean][] = [
    ['Missing attribute', { someotherattribute: 'wrong.suffix' }, undefined, false],
    ['Wrong type suffix', { type: 'wrong.suffix' }, undefined, false],
    ['Wrong source suffix', { source: 'wrong.suffix' }, undefined, false],
    ['Wrong extension suffix', { [extensionName]: 'wrong.suffix' }, undefined, false],
    ['Match type suffix', { type: '.knative.example' }, undefined, true],
    ['Match extension suffix', { [extensionName]: 'extension-value' }, makeEventWithExtension(extensionName, extensionValue), true],
    ['Contained but not at the end', { type: 'knative' }, undefined, false],
  ];
  for (const [name, suffix, event, want] of cases) {
    it(`${name} → ${want ? 'pass' : 'fail'}`, () => {
      expect(matches([{ suffix }], event)).to.equal(want);
    });
  }
});

// all_filter_test.go / any_filter_test.go / not_filter_test.go build trees of pass/fail filters;
// ours are exact filters that pass or fail on the same event.
const PASS = { exact: { type: eventType } };
const FAIL = { exact: { type: 'some-other-type' } };

describe('trigger filters: all, any, not (all_filter_test.go, any_filter_test.go, not_filter_test.go)', () => {
  const cases: [string, unknown, boolean][] = [
    ['All(Pass)', { all: [PASS] }, true],
    ['All(Fail)', { all: [FAIL] }, false],
    ['All(Pass,Fail)', { all: [PASS, FAIL] }, false],
    ['All(Pass,Pass)', { all: [PASS, PASS] }, true],
    ['All(Pass,All(Pass,Fail))', { all: [PASS, { all: [PASS, FAIL] }] }, false],
    ['All(Pass,All(Pass,Pass))', { all: [PASS, { all: [PASS, PASS] }] }, true],
    ['Any(Pass)', { any: [PASS] }, true],
    ['Any(Fail)', { any: [FAIL] }, false],
    ['Any(Pass,Fail)', { any: [PASS, FAIL] }, true],
    ['Any(Fail,Fail)', { any: [FAIL, FAIL] }, false],
    ['Any(Fail,Any(Pass,Fail))', { any: [FAIL, { any: [PASS, FAIL] }] }, true],
    ['Any(Fail,Any(Fail,Fail))', { any: [FAIL, { any: [FAIL, FAIL] }] }, false],
    ['Not(Pass)', { not: PASS }, false],
    ['Not(Fail)', { not: FAIL }, true],
    ['Not(Not(Pass))', { not: { not: PASS } }, true],
    ['Not(Any(Fail,Fail))', { not: { any: [FAIL, FAIL] } }, true],
    ['All(Any(Fail,Pass),Not(Fail))', { all: [{ any: [FAIL, PASS] }, { not: FAIL }] }, true],
  ];
  for (const [name, filter, want] of cases) {
    it(`${name} → ${want ? 'pass' : 'fail'}`, () => {
      expect(matches([filter])).to.equal(want);
    });
  }

  it('a missing attribute fails exact, prefix and suffix, so not(…) of it passes', () => {
    for (const dialect of ['exact', 'prefix', 'suffix']) {
      expect(matches([{ [dialect]: { subject: 'x' } }]), dialect).to.equal(false);
      expect(matches([{ not: { [dialect]: { subject: 'x' } } }]), dialect).to.equal(true);
    }
  });
});

describe('trigger filters: the filters list', () => {
  it('every entry must match (create.go wraps the list in an all-filter)', () => {
    expect(matches([PASS, PASS])).to.equal(true);
    expect(matches([PASS, FAIL])).to.equal(false);
    expect(matches([FAIL, PASS])).to.equal(false);
  });

  it('an empty or absent list matches every event, as a Trigger without filters does', () => {
    expect(matches([])).to.equal(true);
    expect(matches(undefined)).to.equal(true);
  });

  it('extensions are attributes: a Django app/model event is filtered by them', () => {
    const event = new CloudEvent({ type: 'orm.post_save', source: '/db', app: 'polls', model: 'question', subject: 'DCE:polls.question/1' });
    const f = [{ exact: { app: 'polls' } }, { any: [{ exact: { model: 'question' } }, { exact: { model: 'choice' } }] }, { prefix: { subject: 'DCE:polls.' } }];
    expect(matches(f, event)).to.equal(true);
    expect(matches([{ exact: { app: 'auth' } }], event)).to.equal(false);
  });

  it('reads non-string extensions as their text (as in a binary-mode HTTP header)', () => {
    const event = new CloudEvent({ type: 't', source: '/s', attempt: 3, flag: true });
    expect(matches([{ exact: { attempt: '3' } }], event)).to.equal(true);
    expect(matches([{ exact: { flag: 'true' } }], event)).to.equal(true);
  });

  it('never reads the data as an attribute', () => {
    const event = new CloudEvent({ type: 't', source: '/s', data: 'hello' });
    expect(matches([{ exact: { data: 'hello' } }], event)).to.equal(false);
  });

  it('works on plain attribute objects too', () => {
    expect(compileFilters([{ prefix: { type: 'orm.' } }], 'f')({ type: 'orm.post_save' })).to.equal(true);
  });
});

describe('trigger filters: invalid input is a configuration error naming the key path', () => {
  it('more than one dialect in one filter (trigger_validation.go ValidateOneOf)', () => {
    const p = problemsOf([{ exact: { type: 'a' }, prefix: { source: 'b' } }]);
    expect(p).to.have.length(1);
    expect(p[0]).to.match(/^triggers\[0\]\.filters\[0\]: has "exact" and "prefix"; a filter can have only one dialect/);
  });

  it('names the nested path of the offending entry', () => {
    const p = problemsOf([PASS, { any: [{ exact: { type: '' } }] }]);
    expect(p).to.deep.equal(['triggers[0].filters[1].any[0].exact.type: must be a non-empty string']);
    expect(problemsOf([{ not: { all: [PASS, { sufix: { type: 'x' } }] } }])[0]).to.match(
      /^triggers\[0\]\.filters\[0\]\.not\.all\[1\]: unknown filter dialect "sufix"/,
    );
  });

  it('empty values and empty maps are refused, as Knative refuses empty attribute or value', () => {
    expect(problemsOf([{ prefix: { type: '' } }])[0]).to.equal('triggers[0].filters[0].prefix.type: must be a non-empty string');
    expect(problemsOf([{ suffix: {} }])[0]).to.match(/^triggers\[0\]\.filters\[0\]\.suffix: names no attribute/);
    expect(problemsOf([{ exact: { type: 7 } }])[0]).to.equal('triggers[0].filters[0].exact.type: must be a non-empty string');
  });

  it('attribute names must be lower-case letters and digits starting with a letter', () => {
    expect(problemsOf([{ exact: { Type: 'a' } }])[0]).to.match(/^triggers\[0\]\.filters\[0\]\.exact\.Type: attribute names are lower-case/);
    expect(problemsOf([{ exact: { 'my-ext': 'a' } }])[0]).to.match(/exact\.my-ext: attribute names/);
    expect(problemsOf([{ exact: { '1a': 'a' } }])[0]).to.match(/exact\.1a: attribute names/);
  });

  it('empty all/any lists and empty filter objects are refused rather than guessed', () => {
    expect(problemsOf([{ all: [] }])[0]).to.match(/^triggers\[0\]\.filters\[0\]\.all: an empty list/);
    expect(problemsOf([{ any: [] }])[0]).to.match(/^triggers\[0\]\.filters\[0\]\.any: an empty list/);
    expect(problemsOf([{}])[0]).to.match(/^triggers\[0\]\.filters\[0\]: an empty filter/);
  });

  it('cesql is refused at compile time as not supported', () => {
    expect(problemsOf([{ any: [{ cesql: "type = 'x'" }] }])[0]).to.match(
      /^triggers\[0\]\.filters\[0\]\.any\[0\]\.cesql: CloudEvents SQL filters are not supported/,
    );
  });

  it('wrong shapes: not a list, not an object, a dialect of the wrong type', () => {
    expect(problemsOf({ exact: { type: 'a' } })[0]).to.match(/^triggers\[0\]\.filters: must be a list/);
    expect(problemsOf(['type=a'])[0]).to.match(/^triggers\[0\]\.filters\[0\]: must be an object/);
    expect(problemsOf([{ all: PASS }])[0]).to.match(/^triggers\[0\]\.filters\[0\]\.all: must be a list/);
    expect(problemsOf([{ exact: ['type'] }])[0]).to.match(/^triggers\[0\]\.filters\[0\]\.exact: must be an object/);
    expect(problemsOf([{ not: [] }])[0]).to.match(/^triggers\[0\]\.filters\[0\]\.not: must be an object/);
  });

  it('lists every problem at once', () => {
    expect(problemsOf([{ exact: { type: '' } }, { cesql: 'x' }])).to.have.length(2);
  });
});
