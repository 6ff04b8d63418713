/**
 * The settings an action may have beside its kind's key (README, "Triggers"), checked by key path:
 * `payload` and `rateLimit` for every kind, and `timeout`, `format`, `type` for the kinds that
 * send through a transport of their own (webhook, broker).
 */
import { isDuration, parseDuration } from '../../../config/duration';
import type { ActionOptions, SendingOptions } from '../../../config/types';
import { effectiveTimeout } from '../limits';
import { parseRateLimit } from '../rate-limit';

export const COMMON_OPTIONS = ['payload', 'rateLimit'] as const;
export const SENDING_OPTIONS = [...COMMON_OPTIONS, 'timeout', 'format', 'type'] as const;

/** `where.key: unknown setting …` for every key of `raw` that is neither `kindKey` nor in `allowed`. */
export function unknownKeys(raw: Record<string, unknown>, kindKey: string, allowed: readonly string[], where: string, problems: string[]): void {
  for (const key of Object.keys(raw)) {
    if (key !== kindKey && !allowed.includes(key)) {
      problems.push(`${where}.${key}: unknown setting for a ${kindKey} action (${[kindKey, ...allowed].join(', ')})`);
    }
  }
}

/** `payload` (checked when the rule is compiled) and `rateLimit`. */
export function parseCommonOptions(raw: Record<string, unknown>, where: string, problems: string[]): ActionOptions {
  const out: ActionOptions = {};
  if (raw.payload !== undefined) out.payload = raw.payload;
  if (raw.rateLimit !== undefined) {
    const limit = typeof raw.rateLimit === 'string' ? parseRateLimit(raw.rateLimit) : undefined;
    if (limit) out.rateLimit = limit;
    else problems.push(`${where}.rateLimit: must be N/s or N/m, N from 1 (e.g. 50/s, 10/m), got ${JSON.stringify(raw.rateLimit)}`);
  }
  return out;
}

/** The common options, and `timeout`, `format`, `type`. */
export function parseSendingOptions(raw: Record<string, unknown>, where: string, problems: string[]): SendingOptions {
  const out: SendingOptions = parseCommonOptions(raw, where, problems);
  if (raw.timeout !== undefined) {
    const ms = typeof raw.timeout === 'string' && isDuration(raw.timeout) ? parseDuration(raw.timeout) : undefined;
    if (ms === undefined || ms <= 0) {
      problems.push(`${where}.timeout: must be an ISO 8601 duration longer than zero (e.g. PT5S), got ${JSON.stringify(raw.timeout)}`);
    } else {
      // Kept as asked; limits.maxActionTimeout caps it when the action sends (actionTimeoutMs).
      out.timeoutMs = ms;
    }
  }
  if (raw.format !== undefined) {
    if (raw.format === 'cloudevent') out.format = 'cloudevent';
    else problems.push(`${where}.format: must be cloudevent (absent: the bare payload), got ${JSON.stringify(raw.format)}`);
  }
  if (raw.type !== undefined) {
    if (typeof raw.type !== 'string' || raw.type.trim() === '') problems.push(`${where}.type: must be a non-empty string`);
    else if (raw.format !== 'cloudevent') problems.push(`${where}.type: applies only with format: cloudevent (a bare payload has no type)`);
    else out.type = raw.type;
  }
  return out;
}

/**
 * The timeout an action's send runs with: its own and `limits.maxActionTimeout`, the smaller
 * (limits.ts), else `delivery.timeout`.
 */
export function actionTimeoutMs(action: SendingOptions, maxActionTimeoutMs: number | undefined, deliveryTimeoutMs: number): number {
  return effectiveTimeout(action.timeoutMs, maxActionTimeoutMs) ?? deliveryTimeoutMs;
}

/** The delivery event's type of a sending action: its `type`, else `<typePrefix>.trigger.<rule>`. */
export function sendingType(action: SendingOptions, rule: string, typePrefix: string): string {
  return action.type ?? `${typePrefix}.trigger.${rule}`;
}
