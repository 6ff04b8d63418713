/**
 * Rows of the trigger rules table → rules, by the same checks as the file's (parseTriggerRule,
 * untrusted: the allow-lists apply). A row that fails them is invalid: reported (/status, the log,
 * pgce_trigger_rules) and ignored, never fatal. Two checks only rows need: the row's name must be
 * the rule's, and a file rule's name is taken (file rules are read-only, and one destination name,
 * `trigger:<rule>/<n>`, must mean one rule).
 */
import { parseTriggerRule, type TriggerRulesContext } from '../config/triggers';
import { displayName } from '../config/tables';
import type { TriggerConfig } from '../config/types';
import type { RuleRow } from './store';

export interface TableRule {
  name: string;
  rule: TriggerConfig;
  updatedAt: Date;
}

export interface InvalidRule {
  name: string;
  /** Each `triggers[name=<row>].<key path>: <message>`, as the file's problems read. */
  problems: string[];
  updatedAt: Date;
}

/** One read of the table, checked. */
export interface TableRules {
  valid: TableRule[];
  invalid: InvalidRule[];
  /** Names and rules as read: equal fingerprints are the same rule set. */
  fingerprint: string;
}

export interface RowContext extends Omit<TriggerRulesContext, 'trusted'> {
  /** The configuration file's rule names. */
  fileRules: ReadonlySet<string>;
}

/** The key path prefix of a rule that is not in the file: `triggers[name=big-sale]`. */
export function ruleKeyPath(name: unknown): string {
  return `triggers[name=${typeof name === 'string' && name !== '' ? name : '?'}]`;
}

/** One rule from outside the file (a row, an admin API body) under `name`: the rule, or its problems. */
export function checkRule(name: string, raw: unknown, context: RowContext): { rule?: TriggerConfig; problems: string[] } {
  const at = ruleKeyPath(name);
  const problems: string[] = [];
  const inner = raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? (raw as { name?: unknown }).name : undefined;
  if (inner !== undefined && inner !== name) problems.push(`${at}.name: must equal the row's name ${JSON.stringify(name)} (got ${JSON.stringify(inner)})`);
  if (context.fileRules.has(name)) problems.push(`${at}.name: ${JSON.stringify(name)} is a rule of the configuration file, which the table cannot replace; choose another name`);
  const { fileRules: _fileRules, ...parsing } = context;
  const parsed = parseTriggerRule(raw, at, { ...parsing, trusted: false });
  problems.push(...parsed.problems);
  return problems.length > 0 ? { problems } : { rule: parsed.rule, problems };
}

export function checkRows(rows: readonly RuleRow[], context: RowContext): TableRules {
  const valid: TableRule[] = [];
  const invalid: InvalidRule[] = [];
  for (const row of rows) {
    const { rule, problems } = checkRule(row.name, row.rule, context);
    if (rule) valid.push({ name: row.name, rule, updatedAt: row.updatedAt });
    else invalid.push({ name: row.name, problems, updatedAt: row.updatedAt });
  }
  return { valid, invalid, fingerprint: JSON.stringify(rows.map((r) => [r.name, r.rule])) };
}

/** A resolved rule in its written form (tables as `schema.name`), for listings. */
export function writtenRule(rule: TriggerConfig): Record<string, unknown> {
  if (rule.types !== undefined) {
    // A rule over application events: tables and on do not apply (the schema refuses them empty).
    const { tables: _tables, on: _on, ...rest } = rule;
    return rest;
  }
  return { ...rule, tables: rule.tables.map((t) => displayName(t)) };
}
