import { hash } from 'node:crypto';

/**
 * Canonical JSON: object keys sorted, no whitespace, `undefined` members dropped
 * (as JSON.stringify does). Two values that are deep-equal as JSON always give
 * the same text, so hashes over it are stable across processes and versions.
 *
 * Pure. Throws TypeError on values JSON cannot hold (bigint, cycles).
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortDeep(value, new Set()));
}

function sortDeep(value: unknown, seen: Set<object>): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return sortDeep((value as { toJSON: () => unknown }).toJSON(), seen);
  }
  if (seen.has(value)) throw new TypeError('canonicalJson: value has a cycle');
  seen.add(value);
  let out: unknown;
  if (Array.isArray(value)) {
    out = value.map((item) => (item === undefined ? null : sortDeep(item, seen)));
  } else {
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const member = (value as Record<string, unknown>)[key];
      if (member !== undefined && typeof member !== 'function') sorted[key] = sortDeep(member, seen);
    }
    out = sorted;
  }
  seen.delete(value);
  return out;
}

/** SHA-256 hex of a string (UTF-8). */
export function sha256Hex(text: string): string {
  // One-shot crypto.hash (Node >= 20.12) avoids a Hash object per call: this runs for every event.
  return hash('sha256', text, 'hex');
}
