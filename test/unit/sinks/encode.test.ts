import { expect } from 'chai';
import { CloudEvent, HTTP } from 'cloudevents';
import { structuredJson } from '../../../src/events/structured';
import { encodeBatch, encodeEvent, needsStructuredMode } from '../../../src/sinks/http/encode';

const base = {
  id: '00000000016B3748-00000003',
  source: '/pg-cloudevents/app',
  type: 'orm.post_save',
  subject: 'DCE:polls.question/22',
  time: '2020-12-01T09:43:00.250Z',
  datacontenttype: 'application/json',
  data: { data: { id: 22 } },
};

describe('sinks/http/encode (HTTP binding §3.1.3.2)', () => {
  it('plain printable ASCII goes in binary mode', () => {
    const event = new CloudEvent({ ...base, app: 'polls', sequence: 7 });
    expect(needsStructuredMode(event)).to.equal(false);
    const encoded = encodeEvent(event, 'binary');
    expect(encoded.mode).to.equal('binary');
    expect(encoded.headers['ce-sequence']).to.equal('7');
    expect(encoded.headers['content-type']).to.equal('application/json');
  });

  it('a value needing percent-encoding (non-ASCII, space, ", %, control) switches to structured', () => {
    for (const subject of ['DCE:polls.question/café', 'DCE:a.b/x y', 'DCE:a.b/"q"', 'DCE:a.b/50%', 'DCE:a.b/\u0001', 'DCE:a.b/😀']) {
      const event = new CloudEvent({ ...base, subject }, false);
      expect(needsStructuredMode(event), JSON.stringify(subject)).to.equal(true);
      const encoded = encodeEvent(event, 'binary');
      expect(encoded.mode).to.equal('structured');
      expect(encoded.headers['content-type']).to.match(/^application\/cloudevents\+json/);
      expect(JSON.parse(encoded.body as string).subject).to.equal(subject);
    }
    expect(needsStructuredMode(new CloudEvent({ ...base, tenant: 'Zürich' }))).to.equal(true);
  });

  it('datacontenttype with a parameter does not force structured mode (it is the Content-Type)', () => {
    const event = new CloudEvent({ ...base, datacontenttype: 'application/json; charset=utf-8' });
    expect(encodeEvent(event, 'binary').mode).to.equal('binary');
  });

  it('mode structured is always structured', () => {
    expect(encodeEvent(new CloudEvent(base), 'structured').mode).to.equal('structured');
  });
});

describe('sinks/http/encode agrees with the SDK (HTTP.binary / HTTP.structured), which it replaces on the hot path', () => {
  const lower = (headers: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined).map(([k, v]) => [k.toLowerCase(), String(v)]));
  const events: [string, CloudEvent<unknown>][] = [
    ['a row event with extensions', new CloudEvent({ ...base, app: 'polls', sequence: '0001', partitionkey: 'polls.question/22', shard: 7, canary: false })],
    ['no datacontenttype, no subject', new CloudEvent({ id: '1', source: '/s', type: 't', data: { a: [1, 2] } }, false)],
    ['a time not in canonical form', new CloudEvent({ ...base, time: '2020-12-01T10:43:00.25+01:00' }, false)],
    ['data null (a truncate)', new CloudEvent({ ...base, data: null }, false)],
    ['data a string', new CloudEvent({ ...base, datacontenttype: 'text/plain', data: 'plain text' })],
    ['data binary', new CloudEvent({ ...base, datacontenttype: 'application/octet-stream', data: new Uint8Array([0, 1, 254]) })],
    ['no data', new CloudEvent({ id: '1', source: '/s', type: 't' }, false)],
  ];
  for (const [what, event] of events) {
    it(`binary: ${what}`, () => {
      const ours = encodeEvent(event, 'binary');
      const sdk = HTTP.binary(event);
      expect(ours.mode).to.equal('binary');
      expect(ours.headers).to.deep.equal(lower(sdk.headers));
      expect(ours.body).to.deep.equal(sdk.body);
      // and a receiver built on the SDK reads back what it reads from the SDK's own request
      const read = (m: { headers: Record<string, unknown>; body: unknown }) =>
        JSON.parse((HTTP.toEvent({ headers: lower(m.headers), body: m.body }) as CloudEvent<unknown>).toString()) as unknown;
      expect(read(ours)).to.deep.equal(read(sdk));
    });
    it(`batch: ${what}, as JSON.stringify of the events (their toJSON)`, () => {
      expect(encodeBatch([event, event]).body).to.equal(JSON.stringify([event, event]));
      expect(structuredJson(event), 'the structured JSON every broker sink sends').to.equal(JSON.stringify(event));
    });
    it(`structured: ${what}`, () => {
      const ours = encodeEvent(event, 'structured');
      const sdk = HTTP.structured(event);
      expect(ours.headers).to.deep.equal(lower(sdk.headers));
      expect(ours.body).to.equal(sdk.body);
    });
  }
});
