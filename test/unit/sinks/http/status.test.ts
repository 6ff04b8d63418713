import { expect } from 'chai';
import { classifyStatus, finalReason } from '../../../../src/sinks/http/status';

describe('sinks/http/status (Knative SelectiveRetry table)', () => {
  it('2xx is delivered', () => {
    for (const s of [200, 201, 202, 204, 299]) expect(classifyStatus(s), String(s)).to.equal('delivered');
  });

  it('404, 408, 409, 429 and every 5xx are retried', () => {
    for (const s of [404, 408, 409, 429, 500, 502, 503, 504, 599]) expect(classifyStatus(s), String(s)).to.equal('retriable');
  });

  it('other 4xx are final', () => {
    for (const s of [400, 401, 403, 405, 410, 413, 415, 422, 451]) expect(classifyStatus(s), String(s)).to.equal('final');
  });

  it('1xx and 3xx are final, with a reason that says redirects are not followed', () => {
    for (const s of [100, 101, 301, 302, 307, 308]) expect(classifyStatus(s), String(s)).to.equal('final');
    expect(finalReason(302)).to.match(/redirect/);
    expect(finalReason(400)).to.equal(undefined);
  });
});
