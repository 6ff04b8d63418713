import Ajv, { type ErrorObject } from 'ajv';
import type { BrokerConfig, Config } from '../config/types';
import type { Sink } from './types';

/**
 * A broker type (kafka, redis, …) is one module in src/sinks/<type>/ exporting a BrokerType, and
 * one line in src/sinks/index.ts. The registry validates `conn` and `params` with the type's JSON
 * Schemas before anything connects, reporting every problem at once by key path.
 */
export interface BrokerType {
  readonly type: string;
  /** JSON Schema (draft-07) for `conn`: how to connect. */
  readonly connSchema: object;
  /** JSON Schema (draft-07) for `params`: where and how to publish. */
  readonly paramsSchema: object;
  /** Builds the sink; may connect lazily (on first send or in check()). */
  create(broker: BrokerConfig, config: Config): Sink;
}

const ajv = new Ajv({ allErrors: true, strict: false });

/**
 * `brokers.<name>.conn.brokers: must be array`-style lines, one per problem. `paths` names the
 * parts otherwise (a trigger action's params merged over the broker's: its own key path).
 */
export function validateBroker(def: BrokerType, broker: BrokerConfig, paths: { conn?: string; params?: string } = {}): string[] {
  const problems: string[] = [];
  for (const part of ['conn', 'params'] as const) {
    const validate = ajv.compile(part === 'conn' ? def.connSchema : def.paramsSchema);
    if (!validate(broker[part])) {
      for (const e of validate.errors ?? []) problems.push(describe(paths[part] ?? `brokers.${broker.name}.${part}`, e));
    }
  }
  return problems;
}

function describe(base: string, e: ErrorObject): string {
  const path = e.instancePath.replace(/^\//, '').split('/').filter(Boolean).map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`)).join('');
  if (e.keyword === 'required') return `${base}${path}.${(e.params as { missingProperty: string }).missingProperty}: is required`;
  if (e.keyword === 'additionalProperties') {
    return `${base}${path}.${(e.params as { additionalProperty: string }).additionalProperty}: unknown key`;
  }
  return `${base}${path}: ${e.message ?? 'is invalid'}`;
}
