import { expect } from 'chai';
import { parseAppEvent } from '../../../src/sources/app-event';
import { buildAppEvent } from '../../../src/events/app-event';
import { stringifyJson } from '../../../src/events/json-text';
import type { MessageChange } from '../../../src/sources/change';

const change = (content: string, ordinal = 3): MessageChange => ({
  kind: 'message', prefix: 'pgcloudevents', event: parseAppEvent(content),
  commitLsn: 0x16b3748n, commitTime: new Date('2024-05-01T10:00:00.000Z'), xid: 7, ordinal,
});

describe('application events: message content and the event built from it', () => {
  it('parses what emit() writes, numbers exact', () => {
    const e = parseAppEvent('{"specversion":"1.0","type":"com.example.signup","subject":"user/42","data":{"n":12345678901234567890,"p":1.50},"extensions":{"tenant":"acme","tier":2,"beta":true}}');
    expect(e.type).to.equal('com.example.signup');
    expect(e.subject).to.equal('user/42');
    expect(stringifyJson(e.data)).to.equal('{"n":12345678901234567890,"p":1.50}');
    expect(e.extensions).to.deep.equal({ tenant: 'acme', tier: 2, beta: true });
  });

  for (const [content, reason] of [
    ['not json', 'not JSON'],
    ['[1]', 'not a JSON object'],
    ['{"type":""}', '"type" must be a non-empty string'],
    ['{"subject":"s"}', '"type" must be a non-empty string'],
    ['{"type":"t","subject":5}', '"subject" must be a string or null'],
    ['{"type":"t","extensions":{"Bad":1}}', 'extension name "Bad"'],
    ['{"type":"t","extensions":{"id":"x"}}', 'extension name "id" is an attribute pg-cloudevents sets'],
    ['{"type":"t","extensions":{"n":1.5}}', 'extension "n" must be a string, a boolean or a 32-bit integer'],
    ['{"type":"t","extra":1}', 'unknown key "extra"'],
    ['{"type":"t","specversion":"0.3"}', 'specversion "0.3"'],
  ] as const) {
    it(`refuses ${content} with PGCE_ERR_APP_EVENT naming the problem`, () => {
      expect(() => parseAppEvent(content)).to.throw(/malformed application event/).with.property('code', 'PGCE_ERR_APP_EVENT');
      expect(() => parseAppEvent(content)).to.throw(reason);
    });
  }

  it('builds the CloudEvent: id from the position, commit time, source, subject as partition key, extensions over overrides', () => {
    const c = change('{"type":"com.example.signup","subject":"user/42","data":{"n":12345678901234567890},"extensions":{"tenant":"acme"}}');
    const event = buildAppEvent(c, { source: '/pg-cloudevents/shop', overrides: { tenant: 'default', region: 'eu' } }) as unknown as Record<string, unknown>;
    expect(event.id).to.equal('00000000016B3748-00000003');
    expect(event.sequence).to.equal(event.id);
    expect(event.type).to.equal('com.example.signup');
    expect(event.source).to.equal('/pg-cloudevents/shop');
    expect(event.subject).to.equal('user/42');
    expect(event.time).to.equal('2024-05-01T10:00:00.000Z');
    expect(event.partitionkey).to.equal('user/42');
    expect(event.tenant).to.equal('acme');
    expect(event.region).to.equal('eu');
    expect(stringifyJson(event.data)).to.equal('{"n":12345678901234567890}');
    // Deterministic: the same message at the same position gives the same event.
    expect(buildAppEvent(c, { source: '/pg-cloudevents/shop', overrides: {} }).id).to.equal(event.id);
  });

  it('without a subject, the type is the partition key and there is no subject', () => {
    const event = buildAppEvent(change('{"type":"t.x","subject":null,"data":null}'), { source: '/s', overrides: {} }) as unknown as Record<string, unknown>;
    expect(event.subject).to.equal(undefined);
    expect(event.partitionkey).to.equal('t.x');
  });
});
