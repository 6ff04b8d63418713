import { promises as fs } from 'node:fs';
import { DeliveryError, ErrorCodes } from '../../errors';

/**
 * The OIDC token Knative projects at /oidc/token (rotated in place), sent as a bearer token.
 * Re-read whenever the file's mtime or size changes; never logged. The file is looked at most once
 * per `maxAgeMs` (1 s): a stat per request cost 19% of the CPU at full speed — an absent file
 * throws ENOENT each time — while Kubernetes refreshes projected tokens long before they expire.
 */
export interface TokenFileOptions {
  maxAgeMs?: number;
  now?: () => number;
}

export class TokenFile {
  private cached?: { mtimeMs: number; size: number; token: string | undefined };
  private checked?: { at: number; token: string | undefined };
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(readonly path: string, options: TokenFileOptions = {}) {
    this.maxAgeMs = options.maxAgeMs ?? 1000;
    this.now = options.now ?? Date.now;
  }

  /** The token, or undefined when the file does not exist or is empty. */
  async read(): Promise<string | undefined> {
    const now = this.now();
    if (this.checked && now - this.checked.at < this.maxAgeMs) return this.checked.token;
    const token = await this.look();
    this.checked = { at: now, token };
    return token;
  }

  private async look(): Promise<string | undefined> {
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
