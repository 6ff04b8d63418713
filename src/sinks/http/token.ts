import { promises as fs } from 'node:fs';
import { DeliveryError, ErrorCodes } from '../../errors';

/**
 * The OIDC token Knative projects at /oidc/token (rotated in place), sent as a bearer token.
 * Re-read whenever the file's mtime or size changes; never logged.
 */
export class TokenFile {
  private cached?: { mtimeMs: number; size: number; token: string | undefined };

  constructor(readonly path: string) {}

  /** The token, or undefined when the file does not exist or is empty. */
  async read(): Promise<string | undefined> {
    let stat;
    try {
      stat = await fs.stat(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.cached = undefined;
        return undefined;
      }
      throw unreadable(this.path, err);
    }
    if (this.cached && this.cached.mtimeMs === stat.mtimeMs && this.cached.size === stat.size) return this.cached.token;
    let text: string;
    try {
      text = await fs.readFile(this.path, 'utf8');
    } catch (err) {
      throw unreadable(this.path, err);
    }
    const token = text.trim() || undefined;
    this.cached = { mtimeMs: stat.mtimeMs, size: stat.size, token };
    return token;
  }
}

function unreadable(path: string, err: unknown): DeliveryError {
  const code = (err as NodeJS.ErrnoException).code ?? 'error';
  // Retriable: a projected volume being swapped is transient; a lasting problem shows in /status.
  return new DeliveryError(`cannot read the OIDC token file ${path} (${code})`, {
    retriable: true,
    code: ErrorCodes.SINK_CONFIG,
    cause: err,
  });
}
