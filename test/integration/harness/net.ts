import { connect, createServer, type Server, type Socket } from 'node:net';
import { freePort } from '../support';

/** A loopback port where nothing listens: a broker that is down (see freePort). */
export function closedPort(): Promise<number> {
  return freePort();
}

/** A loopback server that accepts connections and never answers: a broker that hangs. */
export async function silentServer(): Promise<{ port: number; close(): void }> {
  const server = createServer(() => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, close: () => server.close() };
}

/**
 * A loopback TCP proxy to a real server that a test can take down (every connection cut) and
 * bring back on the same port: an outage of the broker as its clients see it. It can also hold
 * the traffic (both ways, connections still accepted): a server that never answers, as a hung
 * broker or a partitioned network looks; release() lets the held bytes through, in order, as TCP
 * would once the peer answers again. The real server is shared by other tests and never touched.
 */
export class TcpProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private held = false;
  private readonly queue: (() => void)[] = [];
  port = 0;
  /** While set, what clients send is dropped: the server never sees it, so never acknowledges. */
  blackhole = false;

  constructor(private readonly targetPort: number) {}

  get running(): boolean {
    return this.server !== undefined;
  }

  /** Chunks held since hold(), either way. */
  get heldChunks(): number {
    return this.queue.length;
  }

  async start(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s)).on('error', () => undefined);
      }
      const pass = (step: () => void) => (this.held ? this.queue.push(step) : step());
      client.on('data', (chunk) => {
        if (!this.blackhole) pass(() => upstream.write(chunk));
      });
      client.on('end', () => pass(() => upstream.end()));
      upstream.on('data', (chunk) => pass(() => client.write(chunk)));
      upstream.on('end', () => pass(() => client.end()));
      client.on('close', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** From now on nothing gets through either way; connections are still accepted. */
  hold(): void {
    this.held = true;
  }

  /** Lets everything held through, in order, and stops holding. */
  release(): void {
    this.held = false;
    for (const step of this.queue.splice(0)) step();
  }

  async stop(): Promise<void> {
    this.held = false;
    this.queue.length = 0;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }
}

/**
 * What the conformance suite does to the way between a sink and its server: `hang` (connections
 * accepted, nothing answered), `down` (connections cut and refused), `up` (back to normal).
 */
export interface Faults {
  hang(): Promise<void>;
  down(): Promise<void>;
  up(): Promise<void>;
  /** Resolves once a request sent during hang() is held (sent, not answered); optional. */
  requestHeld?(): Promise<void>;
  close(): Promise<void>;
}

/** Faults through a TcpProxy to the real server on `targetPort`; `port` is where the sink connects. */
export async function proxyFaults(targetPort: number): Promise<Faults & { port: number }> {
  const proxy = new TcpProxy(targetPort);
  await proxy.start();
  return {
    port: proxy.port,
    hang: async () => proxy.hold(),
    down: () => proxy.stop(),
    up: async () => {
      if (proxy.running) proxy.release();
      else await proxy.start();
    },
    requestHeld: async () => {
      const deadline = Date.now() + 10_000;
      while (proxy.heldChunks === 0) {
        if (Date.now() > deadline) throw new Error('no request reached the proxy while it held the traffic');
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    close: () => proxy.stop(),
  };
}
