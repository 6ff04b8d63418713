/**
 * Dynamic values in a broker's `conn` (README, "Triggers", "Dynamic values"): `{{ env.NAME }}`,
 * `{{ file:/path }}`, `{{ module:path.js#export }}` in its string values, e.g. a password kept in a
 * Kubernetes Secret: `conn: { url: "redis://:{{ env.REDIS_PASSWORD }}@redis:6379" }`. Each must
 * be listed in `allow.dynamicValues`, checked when the configuration is loaded. They are read once,
 * when a command that delivers starts (a connection is made with them then, and kept), and the
 * resolved values live only in the connection settings given to the broker's client, never in a
 * log or a message.
 */
import type { AllowList } from '../routing/triggers/allow';
import { compileDynamicTree, type DynamicTree } from '../routing/triggers/dynamic';
import { ConfigError } from '../errors';
import type { BrokerConfig, Config } from './types';

/** The conn's string leaves compiled; 'keep': braces that are not a dynamic reference are the value's own (a password may hold them). */
function compileConn(conn: Record<string, unknown>, where: string, allow: AllowList | undefined, problems: string[]): DynamicTree<Record<string, unknown>> {
  return compileDynamicTree(conn, where, { allow, trusted: true }, problems, 'keep');
}

/** Load-time check of every broker's conn: references must parse and pass `allow.dynamicValues`. */
export function checkBrokerConn(brokers: Readonly<Record<string, BrokerConfig>>, allow: AllowList | undefined, problems: string[]): void {
  for (const broker of Object.values(brokers)) compileConn(broker.conn, `brokers.${broker.name}.conn`, allow, problems);
}

/**
 * The configuration with every broker's conn read (dynamic values resolved), for a command that is
 * about to connect; the configuration itself when no conn holds a reference. A value that cannot
 * be read is a ConfigError naming the key path and the reference (never the value).
 */
export async function resolveBrokerConn(config: Config): Promise<Config> {
  const problems: string[] = [];
  const compiled = Object.values(config.brokers).map((b) => [b, compileConn(b.conn, `brokers.${b.name}.conn`, config.allow, problems)] as const);
  if (problems.length > 0) throw new ConfigError(problems);
  if (!compiled.some(([, c]) => c.dynamic)) return config;
  const brokers: Record<string, BrokerConfig> = {};
  for (const [broker, conn] of compiled) {
    try {
      brokers[broker.name] = conn.dynamic ? { ...broker, conn: await conn.resolve() } : broker;
    } catch (err) {
      // A DeliveryError naming the reference: at start it is a configuration problem of this deployment.
      throw new ConfigError([(err as Error).message]);
    }
  }
  return { ...config, brokers };
}
