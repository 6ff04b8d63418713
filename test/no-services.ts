import net from 'node:net';
import path from 'node:path';
import Mocha from 'mocha';

/**
 * Unit tests need no services. Loaded by mocha (`require` in .mocharc.json and .mocharc.unit.json):
 * while a test or hook from a file under test/unit runs, a socket may connect only to a server this
 * process listens on (or listened on: "stop the fake, expect a refusal"), on loopback or by IPC path.
 * Any other connection (PostgreSQL, Redis, a broker on its usual port) throws at once, and the run
 * fails at the end naming every offender, in case a library swallowed the throw and retried.
 * A test that needs a service belongs in test/integration.
 */

const UNIT_DIR = `${path.sep}test${path.sep}unit${path.sep}`;
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1|::ffff:127(\.\d{1,3}){3})$/i;

/** Ports and IPC paths of servers started by this process, kept after they close. */
const ownPorts = new Set<number>();
const ownPaths = new Set<string>();
/** The file of the test or hook mocha started last; mocha runs one at a time. */
let currentFile: string | undefined;
let currentTitle = '';
const violations: string[] = [];

export class UnitTestNeedsServiceError extends Error {
  constructor(target: string, where: string) {
    super(
      `a unit test tried to connect to ${target}, which is not a server this process started ` +
        `(${where}); unit tests need no services: move it to test/integration`,
    );
    this.name = 'UnitTestNeedsServiceError';
  }
}

const runnableBegins = (r: Mocha.Runnable): void => {
  currentFile = r.file ?? r.parent?.file;
  currentTitle = r.fullTitle();
};

const run = Mocha.Runner.prototype.run;
Mocha.Runner.prototype.run = function (this: Mocha.Runner, ...args: Parameters<Mocha.Runner['run']>) {
  this.on(Mocha.Runner.constants.EVENT_HOOK_BEGIN, runnableBegins);
  this.on(Mocha.Runner.constants.EVENT_TEST_BEGIN, runnableBegins);
  return run.apply(this, args);
};

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
  this.once('listening', () => {
    const address = this.address();
    if (typeof address === 'string') ownPaths.add(address);
    else if (address) ownPorts.add(address.port);
  });
  return (listen as (...a: unknown[]) => net.Server).apply(this, args);
} as typeof net.Server.prototype.listen;

interface Target {
  port?: number;
  host?: string;
  path?: string;
}

/** The forms net.Socket#connect accepts: (options[, cb]), (path[, cb]), (port[, host][, cb]). */
function targetOf(args: unknown[]): Target {
  // net.connect normalises its arguments into an array and passes it as the first one.
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (typeof first === 'object' && first !== null) {
    const o = first as { port?: number | string; host?: string; path?: string };
    return o.path !== undefined ? { path: o.path } : { port: Number(o.port), host: o.host };
  }
  if (typeof first === 'string' && !/^\d+$/.test(first)) return { path: first };
  return { port: Number(first), host: typeof args[1] === 'string' ? args[1] : undefined };
}

export function isOwnServer(t: Target): boolean {
  if (t.path !== undefined) return ownPaths.has(t.path);
  return ownPorts.has(t.port ?? -1) && LOOPBACK.test(t.host ?? 'localhost');
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
  if (currentFile?.includes(UNIT_DIR)) {
    const target = targetOf(args);
    if (!isOwnServer(target)) {
      const where = `${path.relative(process.cwd(), currentFile)}: ${currentTitle}`;
      const shown = target.path ?? `${target.host ?? 'localhost'}:${target.port}`;
      violations.push(`${shown} from ${where}`);
      throw new UnitTestNeedsServiceError(shown, where);
    }
  }
  return (connect as (...a: unknown[]) => net.Socket).apply(this, args);
} as typeof net.Socket.prototype.connect;

/** For the guard's own test: drop the violation it provoked on purpose, and only that one. */
export function forgetViolation(target: string): void {
  const i = violations.findIndex((v) => v.startsWith(`${target} from `));
  if (i >= 0) violations.splice(i, 1);
}

export const mochaHooks: Mocha.RootHookObject = {
  afterAll() {
    if (violations.length > 0) {
      throw new Error(`unit tests connected to services:\n  ${[...new Set(violations)].join('\n  ')}`);
    }
  },
};
