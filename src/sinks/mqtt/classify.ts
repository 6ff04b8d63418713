/**
 * MQTT 5 reason codes (MQTT 5.0 §2.4, tables in §3.2.2.2 CONNACK and §3.4.2.1 PUBACK) → may
 * retrying help? Refused for good: authentication and authorisation (134/135, MQTT 3.1.1's 4/5),
 * bans (138), an invalid client id or topic (133, 144), a packet too large (149), a payload or
 * option the server does not accept (153–155), protocol errors (129/130). Everything else —
 * 128 unspecified, 131, 136 server unavailable, 137 busy, 151 quota exceeded, 159 rate, socket
 * errors and timeouts — is retriable. 16 "no matching subscribers" is a success (the mqtt
 * package resolves it), as MQTT is publish/subscribe: nobody listening is not a failure.
 */
const FINAL_REASON_CODES = new Set([4, 5, 129, 130, 133, 134, 135, 138, 140, 144, 149, 153, 154, 155]);

export function reasonCodeOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

export function isRetriableMqttError(err: unknown): boolean {
  const code = reasonCodeOf(err);
  return code === undefined || !FINAL_REASON_CODES.has(code);
}
