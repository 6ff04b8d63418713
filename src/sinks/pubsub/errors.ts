import { DeliveryError, ErrorCodes, errorMessage } from '../../errors';

/** gRPC status codes (grpc/doc/statuscodes.md), by number as the client reports them. */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

const NAMES = Object.fromEntries(Object.entries(GrpcCode).map(([name, code]) => [code, name])) as Record<number, string>;

/**
 * Pub/Sub's own retry table for Publish (the codes google-cloud-pubsub retries: ABORTED,
 * CANCELLED, DEADLINE_EXCEEDED, INTERNAL, RESOURCE_EXHAUSTED, UNAVAILABLE, UNKNOWN). Every other
 * code means the request was refused for good: INVALID_ARGUMENT (bad topic name, message over the
 * limits), NOT_FOUND (no such topic), PERMISSION_DENIED, UNAUTHENTICATED, FAILED_PRECONDITION, ….
 */
const RETRIABLE = new Set<number>([
  GrpcCode.CANCELLED,
  GrpcCode.UNKNOWN,
  GrpcCode.DEADLINE_EXCEEDED,
  GrpcCode.RESOURCE_EXHAUSTED,
  GrpcCode.ABORTED,
  GrpcCode.INTERNAL,
  GrpcCode.UNAVAILABLE,
]);

export function grpcCodeOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** A code-less failure (socket, TLS, auth library) is treated like UNAVAILABLE: retriable. */
export function isRetriableCode(code: number | undefined): boolean {
  return code === undefined || RETRIABLE.has(code);
}

/**
 * A failed publish as a DeliveryError. `neverConnected`: no call to this endpoint has been
 * answered yet, so a connection-type failure is reported as SINK_UNREACHABLE.
 */
export function publishError(err: unknown, where: string, neverConnected: boolean): DeliveryError {
  const code = grpcCodeOf(err);
  const retriable = isRetriableCode(code);
  const name = code === undefined ? undefined : NAMES[code] ?? String(code);
  const unreachable = neverConnected && (code === undefined || code === GrpcCode.UNAVAILABLE || code === GrpcCode.DEADLINE_EXCEEDED);
  const detail = (err as { details?: unknown }).details;
  const text = typeof detail === 'string' && detail ? detail : errorMessage(err);
  const message = `pubsub ${where}: ${unreachable ? 'unreachable: ' : ''}${name ? `${name}: ` : ''}${text}`;
  return new DeliveryError(message, {
    retriable,
    code: unreachable ? ErrorCodes.SINK_UNREACHABLE : undefined,
    cause: err,
    detail: { grpcCode: code, grpcStatus: name },
  });
}
