import { expect } from 'chai';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { ErrorCodes, PgceError } from '../../../src/errors';
import { Lifecycle } from '../../../src/lifecycle';
import { startServer } from '../../../src/server';
import { listenError } from '../../../src/server/listen-error';
import { createMetrics } from '../../../src/server/metrics';
import { StatusTracker } from '../../../src/server/status';

describe('server: a port it cannot listen on', () => {
  let holder: Server;
  before(async () => {
    holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  });
  after(async () => new Promise<void>((resolve) => holder.close(() => resolve())));

  it('a port in use is a typed error that names the port and PORT', async () => {
    const port = (holder.address() as AddressInfo).port;
    const lifecycle = new Lifecycle();
    let failure: unknown;
    try {
      const server = await startServer({ port, host: '127.0.0.1', metrics: createMetrics(lifecycle), status: new StatusTracker(lifecycle) });
      await server.close();
    } catch (err) {
      failure = err;
    }
    expect(failure).to.be.instanceOf(PgceError);
    expect((failure as PgceError).code).to.equal(ErrorCodes.LISTEN);
    expect((failure as PgceError).retriable).to.equal(false);
    expect((failure as PgceError).message).to.equal(
      `health/metrics server: port ${port} is already in use (127.0.0.1:${port}): stop what listens there, or set PORT to a free port`,
    );
    expect(((failure as PgceError).cause as NodeJS.ErrnoException).code).to.equal('EADDRINUSE');
  });

  it('a privileged port says so; other failures keep Node\'s words', () => {
    const denied = Object.assign(new Error('listen EACCES: permission denied 0.0.0.0:80'), { code: 'EACCES' });
    expect(listenError(denied, 80, '0.0.0.0').message).to.include('port 80 may not be opened by this user (0.0.0.0:80): set PORT');
    const other = Object.assign(new Error('getaddrinfo ENOTFOUND nowhere'), { code: 'ENOTFOUND' });
    expect(listenError(other, 8080, 'nowhere').message).to.equal('health/metrics server: cannot listen on nowhere:8080: getaddrinfo ENOTFOUND nowhere');
  });
});
