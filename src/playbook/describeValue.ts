/**
 * Short, quotable descriptions of YAML values for issue messages.
 */

const maxQuoted = 60;

/** `text` cut to `max` characters with a marker saying how much was cut. Pure. */
export function clipText(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length - max} more characters)` : text;
}

/** Quotes a string as JSON, shortened to keep messages on one line. Pure. */
export function quote(text: string): string {
  const short = text.length > maxQuoted ? `${text.slice(0, maxQuoted)}…` : text;
  return JSON.stringify(short);
}

/** Quotes a list of ids for a message: `"a", "b", "c"` (at most ten, then `…`). Pure. */
export function quoteList(items: readonly string[]): string {
  if (items.length === 0) return '(none)';
  const shown = items.slice(0, 10).map(quote).join(', ');
  return items.length > 10 ? `${shown}, … (${items.length} in all)` : shown;
}

/**
 * Describes what was found: `"abc"`, `the number 1.0`, `a list`, `nothing`.
 *
 * Pure. `sourceText`, when given, is the exact text of a scalar in the file,
 * used so that `1.0` is not shown as `1`.
 */
export function describeValue(value: unknown, sourceText?: string): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value (null)';
  if (typeof value === 'string') return quote(value);
  if (typeof value === 'number' || typeof value === 'bigint') return `the number ${sourceText ?? String(value)}`;
  if (typeof value === 'boolean') return `the boolean ${String(value)}`;
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  if (value instanceof Uint8Array) return 'binary data';
  if (typeof value === 'object') return 'a map';
  return `a ${typeof value}`;
}
