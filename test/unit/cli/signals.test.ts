import { expect } from 'chai';
import pino from 'pino';
import { StopRequested, unlessStopped, watchSignals } from '../../../src/cli/signals';

const silent = pino({ level: 'silent' });
const tick = () => new Promise((r) => setImmediate(r));

/** Signals are delivered with process.emit: the handlers run as for a real SIGTERM, nothing is killed. */
describe('cli/signals: SIGTERM is always honoured', () => {
  it('the first SIGTERM aborts the stop signal; a second one exits at once with 128 + 15', () => {
    const exits: number[] = [];
    const signals = watchSignals(silent, 60_000, (code) => exits.push(code));
    try {
      expect(signals.signal.aborted).to.equal(false);
      process.emit('SIGTERM', 'SIGTERM');
      expect(signals.signal.aborted).to.equal(true);
      expect(exits).to.deep.equal([]);
      process.emit('SIGTERM', 'SIGTERM');
      expect(exits).to.deep.equal([143]);
    } finally {
      signals.dispose();
    }
  });

  it('exits with 1 when the shutdown outlives its deadline', async () => {
    const exits: number[] = [];
    const signals = watchSignals(silent, 10, (code) => exits.push(code));
    try {
      process.emit('SIGTERM', 'SIGTERM');
      const deadline = Date.now() + 5_000;
      while (!exits.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect(exits).to.deep.equal([1]);
    } finally {
      signals.dispose();
    }
  });

  it('dispose removes the handlers and the deadline', async () => {
    const before = process.listenerCount('SIGTERM');
    const exits: number[] = [];
    const signals = watchSignals(silent, 10, (code) => exits.push(code));
    expect(process.listenerCount('SIGTERM')).to.equal(before + 1);
    process.emit('SIGTERM', 'SIGTERM');
    signals.dispose();
    expect(process.listenerCount('SIGTERM')).to.equal(before);
    await new Promise((r) => setTimeout(r, 50));
    expect(exits).to.deep.equal([]);
  });

  it('unlessStopped gives up on work that cannot watch the signal, and passes results through', async () => {
    const controller = new AbortController();
    const hung = unlessStopped(new Promise(() => undefined), controller.signal);
    let outcome: unknown;
    hung.catch((err) => (outcome = err));
    await tick();
    expect(outcome).to.equal(undefined);
    controller.abort();
    await tick();
    expect(outcome).to.be.instanceOf(StopRequested);
    expect(await unlessStopped(Promise.resolve(7), new AbortController().signal)).to.equal(7);
    let failure: unknown;
    await unlessStopped(Promise.reject(new Error('boom')), new AbortController().signal).catch((e) => (failure = e));
    expect((failure as Error).message).to.equal('boom');
  });
});
