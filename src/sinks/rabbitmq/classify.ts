/**
 * AMQP 0-9-1 reply codes (amqp0-9-1.xml "constants") → may retrying help? Following Knative's
 * table as the HTTP sink does: a destination that is not there (404 NOT_FOUND, 312 NO_ROUTE) may
 * appear, like HTTP 404, and is retried; what the broker refuses for good — permissions (403),
 * a message too large (311, or 406 when RabbitMQ's max_message_size says so), arguments that
 * contradict an existing queue (406), protocol errors (50x, 530, 540) — is final.
 * Codes not listed, and errors without a code (socket errors, timeouts, a nack), are retriable.
 */
const FINAL_REPLY_CODES: Record<number, string> = {
  311: 'CONTENT_TOO_LARGE',
  402: 'INVALID_PATH',
  403: 'ACCESS_REFUSED',
  406: 'PRECONDITION_FAILED',
  501: 'FRAME_ERROR',
  502: 'SYNTAX_ERROR',
  503: 'COMMAND_INVALID',
  504: 'CHANNEL_ERROR',
  505: 'UNEXPECTED_FRAME',
  530: 'NOT_ALLOWED',
  540: 'NOT_IMPLEMENTED',
};

export function replyCodeOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

export function isRetriableAmqpError(err: unknown): boolean {
  // amqplib throws a RangeError from publish() for a headers table over 64 KiB: too large for good.
  if (err instanceof RangeError) return false;
  const code = replyCodeOf(err);
  if (code !== undefined) return !(code in FINAL_REPLY_CODES);
  // The handshake refused the login: amqplib reports it as text, without a numeric code.
  return !/ACCESS[-_]REFUSED/.test(String((err as Error | undefined)?.message ?? ''));
}
