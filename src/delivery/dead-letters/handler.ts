import type { Config, DeliveryConfig } from '../../config/types';
import { ErrorCodes, PgceError, errorMessage } from '../../errors';
import { logger } from '../../logger';
import { deadLetterDestination } from '../../sinks';
import type { Destination } from '../../sinks/types';
import { deliveryBackoff } from '../backoff';
import type { DeadLetterHandler, FailedDelivery } from '../dead-letter';
import { DeliveryAbortedError, deliverWithRetry, type Sleep } from '../deliver';
import { retry, sleep as sleepFor } from '../../retry';
import { withoutCredentials } from '../../logger';
import type { Lifecycle } from '../../lifecycle';
import { knativeErrorExtensions, withKnativeError } from './knative';
import type { DeadLetterStore } from './store';
import { SupersededTracker } from './superseded';

/**
 * A dead-letter sink that stays down must not hold the stream forever: it gets this many retries
 * (5 attempts) when `delivery.retry` is unset (= retry forever for the real sink), and at most
 * this many otherwise. The row in the table is the durable record either way.
 */
export const DEAD_LETTER_SINK_MAX_RETRIES = 4;

export interface DeadLetterHandlerOptions {
  config: Config;
  store: DeadLetterStore;
  /**
   * Where final failures are also sent; default: `delivery.deadLetterSink` through the sinks
   * registry (closed by `close()` then), none when that is unset.
   */
  deadLetterDestination?: Destination;
  /** Timer between storage attempts; must reject when the signal aborts (tests inject one). */
  sleep?: Sleep;
  /**
   * The pipeline's lifecycle: when given, deliveries of partition keys that have dead letters are
   * recorded on those rows (./superseded.ts), so `dead-letters replay` warns about newer state.
   */
  lifecycle?: Lifecycle;
}

export interface ClosableDeadLetterHandler extends DeadLetterHandler {
  /** Closes the dead-letter sink's connections. */
  close(): Promise<void>;
}

/**
 * Knative's dead-letter semantics plus a durable record: the event goes to `deadLetterSink`
 * (when configured) with the knativeerror* extensions, then ALWAYS into the dead-letter table.
 * Resolves only once the row is stored, so the caller may acknowledge the event's position; a
 * database that refuses the row is retried with the delivery backoff until it accepts it or the
 * signal aborts (then it rejects, and nothing must be acknowledged). The caller (the delivery
 * engine) emits `delivery:deadLettered` once this resolves, so it is not emitted here.
 */
export function createDeadLetterHandler(opts: DeadLetterHandlerOptions): ClosableDeadLetterHandler {
  const { config, store } = opts;
  const log = logger('dead-letters');
  const sleep = opts.sleep ?? sleepFor;
  const ownDestination = opts.deadLetterDestination ? undefined : deadLetterDestination(config);
  const dls = (opts.deadLetterDestination ?? ownDestination)?.sink;
  const superseded = opts.lifecycle ? new SupersededTracker(store) : undefined;
  if (superseded && opts.lifecycle) superseded.subscribe(opts.lifecycle);
  const dlsDelivery = opts.deadLetterDestination?.policy ?? config.delivery;
  const dlsPolicy: DeliveryConfig = {
    ...dlsDelivery,
    retry: Math.min(dlsDelivery.retry ?? DEAD_LETTER_SINK_MAX_RETRIES, DEAD_LETTER_SINK_MAX_RETRIES),
  };

  async function toDeadLetterSink(failed: FailedDelivery, signal: AbortSignal): Promise<void> {
    if (!dls) return;
    // The destination's sink says where (an HTTP sink: its URL, credentials removed).
    const destination = withoutCredentials(failed.destination.sink.describe());
    const event = withKnativeError(failed.event, knativeErrorExtensions(destination, failed.error, failed.status));
    try {
      const { attempts } = await deliverWithRetry(dls, event, dlsPolicy, { signal, sleep });
      log.info({ id: event.id, deadLetterSink: dls.describe(), attempts }, 'sent to the dead-letter sink');
    } catch (err) {
      if (err instanceof DeliveryAbortedError || signal.aborted) throw aborted(err);
      // The table still gets the row: it is the record `replay` works from.
      log.error(
        { id: event.id, deadLetterSink: dls.describe(), err: errorMessage(err), attempts: (err as { attempts?: number }).attempts },
        'the dead-letter sink did not accept the event; it is kept in the dead-letter table only',
      );
    }
  }

  /** Every database error is retried here: the row must be stored before the position moves. */
  async function toTable(failed: FailedDelivery, signal: AbortSignal): Promise<string> {
    try {
      return await retry(() => store.insert(failed), {
        policy: deliveryBackoff(config.delivery),
        signal,
        sleep,
        retriable: () => true,
        onFailure: ({ attempt, retryInMs, error }) => {
          if (signal.aborted) return;
          log.error(
            { id: failed.event.id, table: store.tableName, attempt, retryInMs, err: errorMessage(error) },
            'could not store the dead letter; retrying (its position stays unacknowledged)',
          );
        },
      });
    } catch (err) {
      throw aborted(err);
    }
  }

  const handler = (async (failed: FailedDelivery, signal: AbortSignal) => {
    await toDeadLetterSink(failed, signal);
    const id = await toTable(failed, signal);
    // Before this resolves, so before the key's next event can be sent (per-key order).
    superseded?.watch(failed.event, failed.destination.name);
    log.warn(
      { id: failed.event.id, subject: failed.event.subject, row: id, status: failed.status, attempts: failed.attempts, err: errorMessage(failed.error) },
      `delivery failed for good; stored in ${store.tableName}`,
    );
  }) as ClosableDeadLetterHandler;
  handler.close = async () => {
    superseded?.unsubscribe();
    await superseded?.idle();
    await ownDestination?.sink.close();
  };
  return handler;
}

function aborted(cause: unknown): PgceError {
  return new PgceError(ErrorCodes.DELIVERY_ABORTED, 'dead-lettering abandoned: shutting down before the dead letter was stored', {
    retriable: true,
    cause,
  });
}
