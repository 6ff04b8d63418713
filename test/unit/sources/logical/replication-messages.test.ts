import { expect } from 'chai';
import { ErrorCodes, PgceError } from '../../../../src/errors';
import { parseReplicationMessage, standbyStatusUpdate } from '../../../../src/sources/logical/replication-messages';

function u64(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v);
  return b;
}

describe('sources/logical/replication-messages', () => {
  it('parses XLogData: three 64-bit headers, then the payload as a view of the chunk', () => {
    const payload = Buffer.from('B-payload');
    const chunk = Buffer.concat([Buffer.from('w'), u64(0x16b3748n), u64(0x1_0000_0010n), u64(123_456_789n), payload]);
    const msg = parseReplicationMessage(chunk);
    expect(msg.kind).to.equal('xlogdata');
    if (msg.kind !== 'xlogdata') return;
    expect(msg.walStart).to.equal(0x16b3748n);
    expect(msg.walEnd).to.equal(0x1_0000_0010n);
    expect(msg.sendTime).to.equal(123_456_789n);
    expect(msg.data.toString()).to.equal('B-payload');
    // A view, not a copy: same memory as the chunk.
    chunk[25] = 'X'.charCodeAt(0);
    expect(msg.data.toString()).to.equal('X-payload');
  });

  it('parses a primary keepalive with and without a reply request', () => {
    const base = Buffer.concat([Buffer.from('k'), u64(0xabcdefn), u64(42n)]);
    const asked = parseReplicationMessage(Buffer.concat([base, Buffer.from([1])]));
    expect(asked).to.deep.equal({ kind: 'keepalive', walEnd: 0xabcdefn, sendTime: 42n, replyRequested: true });
    const quiet = parseReplicationMessage(Buffer.concat([base, Buffer.from([0])]));
    expect(quiet).to.include({ kind: 'keepalive', replyRequested: false });
  });

  it('refuses unknown tags and truncated messages with PGCE_ERR_PROTOCOL', () => {
    for (const bad of [Buffer.from('zzz'), Buffer.alloc(0), Buffer.from('w1234'), Buffer.from('k12')]) {
      expect(() => parseReplicationMessage(bad)).to.throw(PgceError).with.property('code', ErrorCodes.PROTOCOL);
    }
    expect(() => parseReplicationMessage(Buffer.from('zzz'))).to.throw(/"z"/);
  });

  it('builds the standby status update with the clock in µs since 2000-01-01 UTC', () => {
    const now = Date.UTC(2020, 11, 1, 9, 43, 0, 250);
    const buf = standbyStatusUpdate(10n, 9n, 8n, true, now);
    expect(buf.length).to.equal(34);
    expect(String.fromCharCode(buf[0])).to.equal('r');
    expect(buf.readBigUInt64BE(1)).to.equal(10n);
    expect(buf.readBigUInt64BE(9)).to.equal(9n);
    expect(buf.readBigUInt64BE(17)).to.equal(8n);
    const expectedMicros = BigInt(now - Date.UTC(2000, 0, 1)) * 1000n;
    expect(buf.readBigInt64BE(25)).to.equal(expectedMicros);
    expect(buf[33]).to.equal(1);
    expect(standbyStatusUpdate(1n, 1n, 1n)[33]).to.equal(0);
  });
});
