/**
 * Durations as written in playbooks: `<integer><unit>` with unit `ms`, `s`, `m`,
 * `h` or `d`, e.g. `500ms`, `30m`, `72h`, `7d`.
 */

const unitMs: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

const durationPattern = /^(\d+)(ms|s|m|h|d)$/;

/**
 * Converts a duration such as `72h` to milliseconds.
 *
 * Pure. Returns `null` for anything that is not exactly `<digits><unit>` (no
 * spaces, signs, fractions or compound forms like `1h30m`) or whose value exceeds
 * `Number.MAX_SAFE_INTEGER` milliseconds. `0s` is a valid (zero) duration.
 *
 * @example parseDuration('30m') // 1_800_000
 */
export function parseDuration(text: string): number | null {
  if (typeof text !== 'string') return null;
  const match = durationPattern.exec(text);
  if (match === null) return null;
  const [, digits = '', unit = ''] = match;
  const factor = unitMs[unit];
  if (factor === undefined) return null;
  const ms = Number(digits) * factor;
  return Number.isSafeInteger(ms) ? ms : null;
}
