/**
 * Trigger rules (README, "Triggers"), from their written form to a TriggerConfig: tables resolved
 * like `tables` (or application event `types` instead), `active` defaulted, actions checked by their kind (src/routing/triggers/actions), and the rule compiled once so that filters,
 * JSONata and templates are reported by key path. The configuration file's rules come through
 * `resolveTriggers` (after config/schema.json checked the whole file); a rule from elsewhere (the
 * database table, the admin API) through `parseTriggerRule`, which applies the same schema first.
 */
import { ConfigError, errorMessage } from '../errors';
import { compileRule } from '../routing/triggers/rules';
import { validateTriggerRule } from './schema';
import { displayName, parseTableName, tableKey } from './tables';
import type { AllowList } from '../routing/triggers/allow';
import { parseAction } from '../routing/triggers/actions';
import type { BrokerConfig, LimitsConfig, TableConfig, TriggerConfig } from './types';

/** A `triggers` entry as config/schema.json allows it (actions checked by their kind). */
export type FileTrigger = Omit<TriggerConfig, 'active' | 'tables' | 'on' | 'actions'> & {
  active?: boolean;
  tables?: string[];
  on?: TriggerConfig['on'];
  actions: Record<string, unknown>[];
};

/** What resolving a rule needs from the rest of the configuration. */
export interface TriggerRulesContext {
  /** The captured tables: a rule may only read these. */
  captured: readonly TableConfig[];
  typePrefix: string;
  /**
   * false for rules from the triggers table or the admin API: they must pass the allow-lists
   * (`allow.webhookUrls`, `allow.dynamicValues`), which refuse them when a list is absent.
   * File rules are trusted (default true) and checked only against lists that are present.
   */
  trusted?: boolean;
  /** The compiled `allow` settings; absent: no lists. */
  allow?: AllowList;
  /** The configured brokers, which broker actions name; absent: none. */
  brokers?: Readonly<Record<string, BrokerConfig>>;
  limits?: LimitsConfig;
}

/** A rule's defaults (config/schema.json repeats them as `default`). */
export const TRIGGER_DEFAULTS = { active: true } as const;

/**
 * The file's trigger rules, resolved and compiled once to report what is wrong by key path
 * (`triggers[i]…`) into `problems`; the routing stage compiles them again for each run.
 */
export function resolveTriggers(rules: FileTrigger[], context: TriggerRulesContext, problems: string[]): TriggerConfig[] {
  const names = new Map<string, number>();
  return rules.map((rule, i) => {
    const at = `triggers[${i}]`;
    const seen = names.get(rule.name);
    if (seen !== undefined) problems.push(`${at}.name: ${JSON.stringify(rule.name)} is already the name of triggers[${seen}]; names must be unique`);
    else names.set(rule.name, i);
    return resolveTrigger(rule, at, i, context, problems);
  });
}

/**
 * One rule that did not come from the file (a row of the triggers table, an admin API body):
 * checked with the file's JSON Schema for a `triggers` entry, then resolved like the file's.
 * Problems are named from `at` (`triggers[name=big-sale].when: …`).
 */
export function parseTriggerRule(raw: unknown, at: string, context: TriggerRulesContext): { rule?: TriggerConfig; problems: string[] } {
  const problems = validateTriggerRule(raw, at);
  if (problems.length > 0) return { problems };
  const rule = resolveTrigger(raw as FileTrigger, at, 0, context, problems);
  return problems.length > 0 ? { problems } : { rule, problems };
}

/**
 * What a rule selects: table changes (`tables` with `on`, optionally `columns`) or application
 * events (`types`), never both, so its templates read either a row or an application event's data.
 * config/schema.json states the shapes (and `on` required with `tables`); the other combinations
 * are checked here, by key path.
 */
function checkSelection(rule: FileTrigger, at: string, problems: string[]): void {
  if (rule.tables !== undefined && rule.types !== undefined) {
    problems.push(`${at}: tables and types are exclusive (a rule reads either table changes or application events); keep one, or write two rules`);
  } else if (rule.tables === undefined && rule.types === undefined) {
    problems.push(`${at}: required: tables (with on) for table changes, or types for application events`);
  } else if (rule.types !== undefined) {
    for (const key of ['on', 'columns'] as const) {
      if (rule[key] !== undefined) problems.push(`${at}.${key}: does not apply to application events (types); remove it`);
    }
  }
}

function resolveTrigger(rule: FileTrigger, at: string, index: number, context: TriggerRulesContext, problems: string[]): TriggerConfig {
  checkSelection(rule, at, problems);
  const capturedKeys = new Set(context.captured.map(tableKey));
  const tables = (rule.tables ?? []).flatMap((text, t) => {
    try {
      const name = parseTableName(text);
      if (!capturedKeys.has(tableKey(name))) {
        problems.push(`${at}.tables[${t}]: ${displayName(name)} is not captured; add it to tables (or PG_CLOUDEVENTS_TABLES)`);
      }
      return [name];
    } catch (err) {
      problems.push(`${at}.tables[${t}]: ${errorMessage(err)}`);
      return [];
    }
  });
  const actionContext = { allow: context.allow, trusted: context.trusted ?? true, brokers: context.brokers, limits: context.limits };
  // A placeholder for an action with problems: the rest of the rule is still compiled, to report everything at once.
  const actions = rule.actions.map((action, a) =>
    parseAction(action, `${at}.actions[${a}]`, actionContext, problems) ?? { cloudevent: {} });
  const resolved: TriggerConfig = {
    name: rule.name,
    active: rule.active ?? TRIGGER_DEFAULTS.active,
    tables,
    on: rule.types !== undefined ? [] : rule.on ?? [],
    ...(rule.types !== undefined && { types: rule.types }),
    ...(rule.columns !== undefined && { columns: rule.columns }),
    ...(rule.filters !== undefined && { filters: rule.filters }),
    ...(rule.when !== undefined && { when: rule.when }),
    ...(rule.payload !== undefined && { payload: rule.payload }),
    ...(rule.transform !== undefined && { transform: rule.transform }),
    actions,
  };
  try {
    compileRule(resolved, index, context.typePrefix, at);
  } catch (err) {
    if (err instanceof ConfigError) problems.push(...err.problems);
    else throw err;
  }
  return resolved;
}
