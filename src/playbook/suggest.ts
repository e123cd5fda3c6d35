/**
 * "Did you mean ...?" for misspelt keys and ids: a small edit distance and the
 * rule for when a candidate is close enough to name.
 */

/**
 * The optimal-string-alignment distance between `a` and `b`: the fewest
 * insertions, deletions, substitutions and swaps of two adjacent characters
 * that turn one into the other (`skil` -> `skill` is 1, `agnet` -> `agent` is 1).
 *
 * Pure; O(|a|·|b|) time, O(|b|) memory per row kept.
 *
 * @example editDistance('kitten', 'sitting') // 3
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  let before: number[] = [];
  let previous: number[] = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current: number[] = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, (before[j - 2] ?? 0) + 1);
      current.push(best);
    }
    before = previous;
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/**
 * The candidate closest to `word`, when it is close enough to be a likely
 * misspelling; else `undefined`.
 *
 * Pure. Case is ignored when comparing (`Skill` suggests `skill`). Close enough
 * means a distance of at most a third of the word's length (at least 1), and
 * less than the word's length, so a one-letter id never "suggests" another
 * one-letter id. Ties go to the earlier candidate; `word` itself is never
 * suggested.
 *
 * @example closestMatch('skil', ['agent', 'skill', 'role']) // 'skill'
 * @example closestMatch('x', ['a', 'b'])                    // undefined
 */
export function closestMatch(word: string, candidates: readonly string[]): string | undefined {
  const limit = Math.min(Math.max(1, Math.floor(word.length / 3)), word.length - 1);
  let best: string | undefined;
  let bestDistance = Infinity;
  const lower = word.toLowerCase();
  for (const candidate of candidates) {
    if (candidate === word) continue;
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance <= limit && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** `; did you mean \`skill\`?` for a close candidate, else `''`. Pure. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const match = closestMatch(word, candidates);
  return match === undefined ? '' : `; did you mean \`${match}\`?`;
}
