import { expect } from 'chai';
import { CloudEvent } from 'cloudevents';
import { Writable } from 'node:stream';
import { ConsoleSink } from '../../../src/sinks/console';

describe('sinks/console', () => {
  it('writes one structured JSON event per line', async () => {
    const chunks: string[] = [];
    const out = new Writable({ write: (c, _e, cb) => (chunks.push(String(c)), cb()) });
    const sink = new ConsoleSink(out);
    const a = new CloudEvent({ id: '1', source: '/s', type: 't', subject: 'café', data: { x: 1 } });
    const b = new CloudEvent({ id: '2', source: '/s', type: 't', data: { y: [1, 2] } });
    await sink.send(a);
    await sink.send(b);
    const lines = chunks.join('').split('\n');
    expect(lines).to.have.length(3);
    expect(lines[2]).to.equal('');
    expect(JSON.parse(lines[0])).to.include({ id: '1', subject: 'café', specversion: '1.0' });
    expect(JSON.parse(lines[0]).data).to.deep.equal({ x: 1 });
    expect(JSON.parse(lines[1]).data).to.deep.equal({ y: [1, 2] });
  });

  it('waits for drain when the stream is full (backpressure)', async () => {
    let release: (() => void) | undefined;
    const out = new Writable({
      highWaterMark: 1,
      write: (_c, _e, cb) => {
        release = cb;
      },
    });
    const sink = new ConsoleSink(out);
    let done = false;
    const sending = sink.send(new CloudEvent({ id: '1', source: '/s', type: 't', data: { big: 'x'.repeat(100) } })).then(() => {
      done = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(done, 'resolved before the stream drained').to.equal(false);
    release!();
    await sending;
    expect(done).to.equal(true);
  });

  it('fails the delivery when the stream closes while full', async () => {
    const out = new Writable({ highWaterMark: 1, write: () => undefined });
    const sink = new ConsoleSink(out);
    const sending = sink.send(new CloudEvent({ id: '1', source: '/s', type: 't', data: {} }));
    out.destroy();
    const err = await sending.then(() => undefined, (e: unknown) => e);
    expect((err as Error).message).to.match(/console output/);
  });
});
