/**
 * The timeout an action runs with: its own and the configured maximum, the smaller of those
 * present (5 s asked under a 10 s cap → 5 s; 15 s asked → 10 s), undefined when neither is set.
 * The cap bounds rules from the database or an admin API that ask for more.
 */
export function effectiveTimeout(actionMs?: number, maxMs?: number): number | undefined {
  if (actionMs === undefined) return maxMs;
  if (maxMs === undefined) return actionMs;
  return Math.min(actionMs, maxMs);
}
