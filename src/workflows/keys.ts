/**
 * Redis key names (docs/workflows.md, "Keys"). A session's state is one hash whose name is a
 * Redis Cluster hash tag, `{wf:<workflow>:<session>}`, so every script (which touches only that
 * key) runs on one slot, and any key added to a session later can join the slot. The work stream
 * is per workflow and outside any session's slot: only plain commands touch it.
 */

/** Braces would move the hash tag, `%` is the escape itself. */
function escapeSession(session: string): string {
  return session.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

export function unescapeSession(text: string): string {
  return text.replace(/%(7B|7D|25)/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** Escapes glob characters for SCAN MATCH. */
function globLiteral(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

export class WorkflowKeys {
  constructor(
    readonly prefix: string,
    readonly workflow: string,
  ) {
    if (/[{}]/.test(prefix)) throw new Error(`a key prefix must not contain { or } (got ${JSON.stringify(prefix)})`);
  }

  /** The session's state hash. */
  session(session: string): string {
    return `${this.prefix}{wf:${this.workflow}:${escapeSession(session)}}`;
  }

  /** SCAN MATCH pattern for every session hash of this workflow. */
  sessionPattern(): string {
    return `${globLiteral(this.prefix)}{wf:${globLiteral(this.workflow)}:*}`;
  }

  /** The shared stream of work pointers the runners read through a consumer group. */
  work(): string {
    return `${this.prefix}wf:${this.workflow}:work`;
  }
}
