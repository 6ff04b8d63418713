import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { forgetViolation, UnitTestNeedsServiceError } from '../no-services';

/** The guard loaded by both mocha configurations (test/no-services.ts): unit tests need no services. */
describe('unit tests need no services (the connection guard)', () => {
  // Compiled to dist/test/unit/, three levels below the repository root.
  const ROOT = path.resolve(__dirname, '../../..');

  for (const config of ['.mocharc.json', '.mocharc.unit.json']) {
    it(`${config} loads the guard before any test file`, () => {
      const { require: required } = JSON.parse(readFileSync(path.join(ROOT, config), 'utf8')) as { require: string[] };
      expect(required).to.include('./dist/test/no-services.js');
    });
  }

  // Port 9 (discard): no test server uses it; without the guard the connection is merely refused.
  const NOT_OURS = 9;

  function refusedByGuard(open: (socket: net.Socket) => void): void {
    const socket = new net.Socket();
    socket.on('error', () => undefined);
    try {
      expect(() => open(socket)).to.throw(UnitTestNeedsServiceError, /127\.0\.0\.1:9,.*move it to test\/integration/);
    } finally {
      socket.destroy();
      forgetViolation(`127.0.0.1:${NOT_OURS}`);
    }
  }

  it('a connection to a server this process did not start throws, in every calling form', () => {
    refusedByGuard((s) => s.connect(NOT_OURS, '127.0.0.1'));
    refusedByGuard((s) => s.connect({ port: NOT_OURS, host: '127.0.0.1' }));
    refusedByGuard(() => net.connect({ port: NOT_OURS, host: '127.0.0.1' }).on('error', () => undefined));
    refusedByGuard(() => net.createConnection(NOT_OURS, '127.0.0.1').on('error', () => undefined));
  });

  it('a connection to an in-process server the test started goes through, and after it closes is refused by the OS', async () => {
    const server = net.createServer((peer) => peer.end('hello'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;

    const client = net.connect(port, '127.0.0.1');
    const [greeting] = (await once(client, 'data')) as [Buffer];
    expect(greeting.toString()).to.equal('hello');
    client.destroy();

    server.close();
    await once(server, 'close');
    const again = net.connect(port, '127.0.0.1');
    const [err] = (await once(again, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).to.equal('ECONNREFUSED');
  });
});
