import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import {
  KNATIVE_ERROR_DATA_MAX_LENGTH, knativeErrorExtensions, withKnativeError,
} from '../../../src/delivery/dead-letters/knative';
import { DeliveryError } from '../../../src/errors';
import { encodeEvent } from '../../../src/sinks/http/encode';

function answered(status: number, body: Buffer): DeliveryError {
  return new DeliveryError(`sink answered ${status}`, { status, detail: { responseBodyBase64: body.toString('base64') } });
}

describe('dead-letters/knative extensions', () => {
  it('dest without credentials, the status as an integer, the body in base64', () => {
    const ext = knativeErrorExtensions('https://user:secret@sink.example/path?q=1', answered(400, Buffer.from('{"why":"bad"}')), 400);
    expect(ext).to.deep.equal({
      knativeerrordest: 'https://sink.example/path?q=1',
      knativeerrorcode: 400,
      knativeerrordata: Buffer.from('{"why":"bad"}').toString('base64'),
    });
  });

  it('cuts the base64 at 1024 characters, as Knative does (= the body’s first 768 bytes)', () => {
    const body = Buffer.alloc(1024, 0xab);
    const ext = knativeErrorExtensions('http://sink/', answered(500, body), 500);
    expect(ext.knativeerrordata).to.have.length(KNATIVE_ERROR_DATA_MAX_LENGTH);
    expect(Buffer.from(ext.knativeerrordata, 'base64').equals(body.subarray(0, 768))).to.equal(true);
  });

  it('an empty answer gives empty data; no answer at all gives 500 and "dispatch error: …", like Knative’s dispatcher', () => {
    expect(knativeErrorExtensions('http://sink/', answered(400, Buffer.alloc(0)), 400).knativeerrordata).to.equal('');
    const down = knativeErrorExtensions('http://sink/', new DeliveryError('sink http://sink/ unreachable: ECONNREFUSED', { retriable: true }));
    expect(down.knativeerrorcode).to.equal(500);
    expect(Buffer.from(down.knativeerrordata, 'base64').toString()).to.equal('dispatch error: sink http://sink/ unreachable: ECONNREFUSED');
  });

  it('the extended event keeps every original attribute and travels as ce- headers in binary mode', () => {
    const event = new CloudEvent({ id: 'a-1', source: '/s', type: 't', subject: 'DCE:a.b/1', data: { x: 1 }, partitionkey: 'a.b/1' });
    const out = withKnativeError(event, knativeErrorExtensions('http://sink/', answered(422, Buffer.from('no')), 422));
    expect(out.toJSON()).to.deep.include({ ...event.toJSON(), knativeerrorcode: 422, knativeerrordest: 'http://sink/' });
    const { mode, headers } = encodeEvent(out, 'binary');
    expect(mode).to.equal('binary');
    expect(headers['ce-knativeerrorcode']).to.equal('422');
    expect(headers['ce-knativeerrordata']).to.equal(Buffer.from('no').toString('base64'));
  });
});
