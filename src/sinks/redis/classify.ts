/**
 * Redis error replies start with an upper-case code (`WRONGTYPE Operation against a key…`). The
 * ones below are temporary states of the server (loading, busy script, out of memory, a replica
 * or a cluster in failover): retriable. Any other reply is the server refusing this command for
 * good (WRONGTYPE, NOPERM, NOAUTH, ERR …): final. Anything that is not a reply — a closed
 * connection, a timeout — is an outage: retriable.
 */
const TEMPORARY_REPLIES = new Set([
  'LOADING', 'BUSY', 'OOM', 'READONLY', 'MASTERDOWN', 'TRYAGAIN', 'CLUSTERDOWN', 'NOREPLICAS', 'MISCONF', 'MOVED', 'ASK',
]);

const AUTH_REPLIES = new Set(['NOAUTH', 'WRONGPASS', 'NOPERM']);

function replyCode(err: unknown): string | undefined {
  if (!(err instanceof Error) || err.name !== 'ReplyError') return undefined;
  return /^([A-Z]+)\b/.exec(err.message)?.[1];
}

export function classifyRedisError(err: unknown): { retriable: boolean } {
  const code = replyCode(err);
  if (code === undefined) return { retriable: true };
  return { retriable: TEMPORARY_REPLIES.has(code) };
}

/** A login or ACL refusal (HTTP 401/403 in Knative's table): final. */
export function isAuthError(err: unknown): boolean {
  const code = replyCode(err);
  return code !== undefined && AUTH_REPLIES.has(code);
}
