import { parseDuration } from '../../config/duration';

// A date, or a date and time with an explicit zone: a time without one would depend on the
// machine's time zone, which differs between a laptop and a pod.
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?))?$/i;

/**
 * `purge --before T`: an ISO 8601 timestamp (`2024-05-01`, `2024-05-01T12:00:00Z`) or an ISO 8601
 * duration meaning "older than now minus it" (`P7D`, `PT12H`). Throws with a usage message.
 */
export function parseBefore(text: string, now: Date = new Date()): Date {
  const value = text.trim();
  if (/^P/i.test(value)) {
    let ms: number;
    try {
      ms = parseDuration(value.toUpperCase());
    } catch (err) {
      throw new Error(`--before: ${(err as Error).message}`);
    }
    return new Date(now.getTime() - ms);
  }
  const at = TIMESTAMP.test(value) ? Date.parse(value.replace(' ', 'T')) : NaN;
  if (Number.isNaN(at)) {
    throw new Error(
      `--before: ${JSON.stringify(text)} is neither an ISO 8601 timestamp with a zone (2024-05-01T00:00:00Z, 2024-05-01) ` +
        'nor a duration (P7D, PT12H)',
    );
  }
  return new Date(at);
}
