import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import { encodeEvent, needsStructuredMode } from '../../../src/sinks/http/encode';

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
