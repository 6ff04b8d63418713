import { DEFAULT_DESTINATION } from '../../sinks';
import type { RouteKind } from '../contract';

/**
 * The default route: every change's default event goes to the configured handler
 * (CLOUDEVENTS_HANDLER / `handler`: K_SINK over HTTP, a broker, a module, the console), through
 * the destination named DEFAULT_DESTINATION, so what it dead-letters is replayed to the handler;
 * nothing when `events.enabled` is false.
 */
export const defaultRoute: RouteKind = ({ config, buildEvent, destination }) => {
  // `events.enabled: false`: a trigger-only install (README, "Triggers").
  if (config.events?.enabled === false) return [];
  const to = destination(DEFAULT_DESTINATION);
  return [{ route: (change, deliver) => deliver(to, buildEvent(change)) }];
};
