import { ErrorCodes, PgceError } from '../errors';

/**
 * Node's `listen EADDRINUSE: address already in use 0.0.0.0:8080` as something a person can act
 * on: which port, and that PORT chooses another. Other listen failures keep Node's words.
 */
export function listenError(err: Error, port: number, host: string): PgceError {
  const code = (err as NodeJS.ErrnoException).code;
  const address = `${host}:${port}`;
  const reason =
    code === 'EADDRINUSE'
      ? `port ${port} is already in use (${address}): stop what listens there, or set PORT to a free port`
      : code === 'EACCES'
        ? `port ${port} may not be opened by this user (${address}): set PORT to a port above 1023`
        : `cannot listen on ${address}: ${err.message}`;
  return new PgceError(ErrorCodes.LISTEN, `health/metrics server: ${reason}`, { cause: err, detail: { port, host } });
}
