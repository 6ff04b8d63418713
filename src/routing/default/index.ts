import type { RouteKind } from '../contract';

/**
 * The default route: every change's default event goes to the configured handler
 * (CLOUDEVENTS_HANDLER / `handler`: K_SINK over HTTP, a broker, a module, the console).
 */
export const defaultRoute: RouteKind = ({ config, buildEvent, destination }) => {
  const to = destination(config.handler);
  return [{ route: (change, deliver) => deliver(to, buildEvent(change)) }];
};
