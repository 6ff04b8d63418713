/**
 * Trigger rules compiled: what the routing stage matches per change (synchronously: table,
 * operation, columns, or an application event's type; filters) and what an action's destination evaluates when it sends (`when`,
 * then the payload or transform). README, "Triggers".
 */
import type { TriggerActionConfig, TriggerConfig, TriggerOperation } from '../../config/types';
import { changedColumns } from '../../events/update-fields';
import { ConfigError } from '../../errors';
import type { Change } from '../../sources/change';
import { tableKey } from '../../config/tables';
import { actionKindOf, type ActionKind } from './actions';
import type { TriggerContext } from './context';
import { compileTransform, compileWhen, type CompiledExpression } from './expressions';
import { compileFilters, type EventFilter } from './filters';
import { compilePayload, type Placeholder } from './payload';

export const KINDS_BY_OPERATION: Record<TriggerOperation, readonly Change['kind'][]> = {
  post_save: ['insert', 'update'],
  post_delete: ['delete'],
  post_truncate: ['truncate'],
  insert: ['insert'],
  update: ['update'],
  delete: ['delete'],
};

/** The change kinds that `on` (post_save, insert, …) selects. */
export function kindsOf(on: readonly TriggerOperation[]): Set<Change['kind']> {
  return new Set(on.flatMap((op) => KINDS_BY_OPERATION[op]));
}

/** What matching a change reads of a rule (a workflow's input selector is one too). */
export interface ChangeSelector {
  readonly active: boolean;
  /** `tableKey`s. */
  readonly tables: ReadonlySet<string>;
  readonly kinds: ReadonlySet<Change['kind']>;
  readonly columns?: readonly string[];
  /** Application event types; set, the selector reads application events only (its tables are empty). */
  readonly types?: ReadonlySet<string>;
}

export interface CompiledAction {
  /** The action's delivery event's `type` (the derived event's). */
  readonly type: string;
  readonly kind: ActionKind;
  readonly config: TriggerActionConfig;
  /** The action's own payload, when it has one: it wins over the rule's. */
  readonly payload?: (context: TriggerContext) => Promise<unknown>;
  /** The own payload's placeholders (the relations to fetch before it), when it has one. */
  readonly placeholders?: readonly Placeholder[];
}

export interface CompiledRule extends ChangeSelector {
  readonly name: string;
  /** Its key path (`triggers[0]`), for messages. */
  readonly at: string;
  /** Over the change's default event (its attributes and extensions). */
  readonly filter: EventFilter;
  readonly when?: CompiledExpression<boolean>;
  /** The payload for one change: the transform's result, or the template rendered. */
  payload(context: TriggerContext): Promise<unknown>;
  /** The payload template's placeholders (none with a transform): the relations to fetch before `payload`. */
  readonly placeholders: readonly Placeholder[];
  readonly actions: readonly CompiledAction[];
}

/**
 * Whether `change` can fire `rule` before its event is looked at: active, and for an application
 * event one of its types; for a table change one of its tables, one of its operations, and for an
 * update, one of `columns` changed. Without the whole previous row (REPLICA IDENTITY DEFAULT: `old`
 * absent or key-only) what changed is unknown, so the rule fires.
 */
export function matchesChange(rule: ChangeSelector, change: Change): boolean {
  if (change.kind === 'message') return rule.active && rule.types !== undefined && rule.types.has(change.event.type);
  if (!rule.active || !rule.kinds.has(change.kind)) return false;
  if (!rule.tables.has(tableKey({ schema: change.relation.schema, name: change.relation.table }))) return false;
  if (rule.columns === undefined || change.kind !== 'update') return true;
  if (change.old === undefined || change.oldIsKeyOnly) return true;
  const changed = changedColumns(change.old, change.new);
  return rule.columns.some((c) => changed.includes(c));
}

/**
 * Compiles rule `index` of `triggers` (its key path `at`, default `triggers[index]`, names every problem). The
 * loader has checked the shape (config/schema.json and src/config/load.ts); this compiles what
 * the schema cannot check: filters, JSONata, templates. Throws one ConfigError listing them all.
 */
export function compileRule(rule: TriggerConfig, index: number, typePrefix: string, at = `triggers[${index}]`): CompiledRule {
  const problems: string[] = [];
  const attempt = <T>(fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ConfigError) problems.push(...err.problems);
      else throw err;
      return undefined;
    }
  };
  const filter = attempt(() => compileFilters(rule.filters, `${at}.filters`));
  const when = rule.when === undefined ? undefined : attempt(() => compileWhen(rule.when, `${at}.when`));
  if (rule.payload !== undefined && rule.transform !== undefined) {
    problems.push(`${at}: payload and transform are exclusive (transform computes the payload); keep one`);
  }
  const transform = rule.transform === undefined ? undefined : attempt(() => compileTransform(rule.transform, `${at}.transform`));
  const template = attempt(() => compilePayload(rule.payload, `${at}.payload`));
  const actions = rule.actions.map((config, a): CompiledAction => {
    const kind = actionKindOf(config);
    const own = config.payload === undefined ? undefined : attempt(() => compilePayload(config.payload, `${at}.actions[${a}].payload`));
    return {
      type: kind.type(config, rule.name, typePrefix),
      kind,
      config,
      ...(own !== undefined && { payload: async (context: TriggerContext) => own.render(context), placeholders: own.placeholders }),
    };
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    name: rule.name,
    at,
    active: rule.active,
    tables: new Set(rule.tables.map(tableKey)),
    kinds: kindsOf(rule.on),
    columns: rule.columns,
    ...(rule.types !== undefined && { types: new Set(rule.types) }),
    filter: filter!,
    when,
    payload: transform !== undefined ? (context) => transform.evaluate(context) : async (context) => template!.render(context),
    placeholders: transform !== undefined ? [] : template!.placeholders,
    actions,
  };
}
