/**
 * The action-kind registry. A new kind is one module in this folder exporting an ActionKind
 * (./contract.ts) and one line in ACTION_KINDS; its key then names it in `actions:` entries.
 */
import type { TriggerActionConfig } from '../../../config/types';
import { brokerAction } from './broker';
import { cloudeventAction } from './cloudevent';
import type { ActionKind, ActionParseContext } from './contract';
import { webhookAction } from './webhook';

const ACTION_KINDS: readonly ActionKind<never>[] = [
  cloudeventAction,
  webhookAction,
  brokerAction,
] as ActionKind<never>[];

const has = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/** The kind of a resolved action (the one kind key it has). */
export function actionKindOf(action: TriggerActionConfig): ActionKind {
  const kind = ACTION_KINDS.find((k) => has(action, k.key));
  if (kind === undefined) throw new Error(`a trigger action with no known kind key: ${Object.keys(action).join(', ')}`);
  return kind as unknown as ActionKind;
}

/**
 * One action as written (its key path `where`): exactly one kind key, then the kind's own checks.
 * Problems go to `problems`; the result is undefined when there were any.
 */
export function parseAction(raw: Record<string, unknown>, where: string, context: ActionParseContext, problems: string[]): TriggerActionConfig | undefined {
  const keys = ACTION_KINDS.filter((k) => has(raw, k.key));
  if (keys.length === 1) return (keys[0] as unknown as ActionKind).parse(raw, where, context, problems);
  if (keys.length > 1) {
    problems.push(`${where}: has ${keys.map((k) => k.key).join(' and ')}; an action is of one kind (write one action for each)`);
  } else {
    const got = Object.keys(raw);
    problems.push(`${where}: must be one of ${ACTION_KINDS.map((k) => k.usage).join(', ')} (got ${got.length ? got.join(', ') : 'an empty object'})`);
  }
  return undefined;
}

export type { ActionKind, ActionParseContext, ActionRuntime, ActionTarget } from './contract';
