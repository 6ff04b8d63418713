import { formatLsn } from '../sources/change';
import { logger, scrubSecrets } from '../logger';
import { subscribe, type Lifecycle } from '../lifecycle';

/** Log lines for the pipeline's lifecycle: failures at warn, the per-event path at debug. */
export function logLifecycle(lifecycle: Lifecycle): void {
  const log = logger('delivery');
  subscribe(lifecycle, {
    'delivery:attemptFailed': ({ event, destination, error, status, attempt, willRetry, retryInMs }) =>
      log.warn(
        { id: event.id, subject: event.subject, destination, status, attempt, willRetry, retryInMs, err: scrubSecrets(error.message) },
        willRetry ? 'delivery attempt failed; retrying' : 'delivery attempt failed',
      ),
    'delivery:delivered': ({ event, destination, attempts, latencyMs }) =>
      log.debug({ id: event.id, subject: event.subject, destination, attempts, latencyMs }, 'delivered'),
    'delivery:skipped': ({ event, destination }) =>
      log.debug({ id: event.id, subject: event.subject, destination }, 'nothing to send (the trigger\'s when is false)'),
    'capture:undecodable': ({ change }) =>
      log.error(
        { ...(change.relation ? { table: `${change.relation.schema}.${change.relation.table}` } : { prefix: change.prefix }), kind: change.kind, lsn: formatLsn(change.commitLsn),
          ordinal: change.ordinal, err: scrubSecrets(change.error.message), code: (change.error as { code?: string }).code },
        'a change could not be decoded or built into an event; dead-lettering it with its raw row',
      ),
    'capture:acknowledged': ({ lsn }) => log.debug({ lsn: formatLsn(lsn) }, 'acknowledged'),
    'workflow:input': ({ workflow, session, input, applied, scheduled }) =>
      log.debug({ workflow, session, input, applied, scheduled }, applied ? 'workflow input applied' : 'workflow input already applied (a redelivery)'),
    'workflow:runStarted': ({ workflow, session, instance, attempt }) =>
      (attempt > 1 ? log.info.bind(log) : log.debug.bind(log))({ workflow, session, instance, attempt }, attempt > 1 ? 'workflow run taken over' : 'workflow run started'),
    'workflow:runEnded': ({ workflow, session, instance, outcome, durationMs }) =>
      (outcome === 'finished' ? log.debug.bind(log) : log.warn.bind(log))({ workflow, session, instance, outcome, durationMs }, `workflow run ${outcome}`),
  });
}
