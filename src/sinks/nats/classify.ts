import { classifyStatus } from '../http/status';

/**
 * NATS failures against Knative's table. A JetStream API error carries an HTTP-like code and is
 * classified exactly like an HTTP answer (503 "JetStream temporarily unavailable" retried, 400
 * "message size exceeds maximum allowed" final, …).
 *
 * "No responders" (503 on the core request) means no JetStream stream captures the subject right
 * now. It is retried, like Knative's 404: the stream may be created or restored by its operator,
 * and in a JetStream cluster it is also what a publish sees during a stream leader election.
 * Retrying keeps the event; a deployment that wants such events dead-lettered sets `retry`.
 *
 * Refusals for good: permissions, authentication, a payload over the server's max_payload, a
 * subject or header the protocol cannot carry.
 */
const FINAL_CODES = new Set([
  'PERMISSIONS_VIOLATION', 'AUTHORIZATION_VIOLATION', 'AUTHENTICATION_EXPIRED', 'ACCOUNT_EXPIRED', 'BAD_AUTHENTICATION',
  'BAD_CREDS', 'MAX_PAYLOAD_EXCEEDED', 'BAD_SUBJECT', 'BAD_HEADER', 'BAD_PAYLOAD', 'INVALID_PAYLOAD',
]);

const AUTH_CODES = new Set(['AUTHORIZATION_VIOLATION', 'AUTHENTICATION_EXPIRED', 'ACCOUNT_EXPIRED', 'BAD_AUTHENTICATION', 'BAD_CREDS']);

export interface NatsFailure {
  retriable: boolean;
  /** True when nothing could be sent because the connection is down or was never made. */
  unreachable: boolean;
  reason: string;
}

interface NatsLikeError {
  code?: string;
  message?: string;
  api_error?: { code: number; err_code?: number; description: string };
}

export function classifyNatsError(err: unknown): NatsFailure {
  const e = (err ?? {}) as NatsLikeError;
  const message = e.message ?? String(err);
  if (e.api_error) {
    const { code, err_code: errCode, description } = e.api_error;
    return {
      retriable: classifyStatus(code) !== 'final',
      unreachable: false,
      reason: `JetStream answered ${code}${errCode ? ` (err_code ${errCode})` : ''}: ${description}`,
    };
  }
  if (e.code === '503') return { retriable: true, unreachable: false, reason: 'no responders: no JetStream stream captures the subject' };
  if (e.code === 'TIMEOUT') return { retriable: true, unreachable: false, reason: 'no PubAck before the timeout' };
  if (e.code && FINAL_CODES.has(e.code)) return { retriable: false, unreachable: false, reason: message };
  const unreachable = e.code === 'CONNECTION_REFUSED' || e.code === 'CONNECTION_TIMEOUT' || e.code === 'CONNECTION_CLOSED' ||
    e.code === 'DISCONNECT' || (err as { code?: string })?.code === 'ECONNREFUSED';
  return { retriable: true, unreachable, reason: e.code && !message.includes(e.code) ? `${e.code}: ${message}` : message };
}

export function isNatsAuthError(err: unknown): boolean {
  const code = (err as NatsLikeError | undefined)?.code;
  return code !== undefined && AUTH_CODES.has(code);
}
