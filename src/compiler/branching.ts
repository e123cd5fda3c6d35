import { canonicalJson } from '../events/canonicalJson.js';
import type { RunContext } from '../events/types.js';
import type { EdgeCondition, PlaybookEdge } from '../playbook/types.js';

/** Reads `a.b.c` from the context; undefined when any step is missing. Pure. */
export function readPath(context: RunContext, field: string): unknown {
  let value: unknown = context;
  for (const key of field.split('.')) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** JSON equality: deep, key-order-insensitive. */
function jsonEquals(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return canonicalJson(a) === canonicalJson(b);
}

/** Reads a `a.b.c` path of the context a node sees (see `readContext` in runState.ts). */
export type PathReader = (field: string) => unknown;

/** A PathReader over one plain context object. Pure. */
export function readerOf(context: RunContext): PathReader {
  return (field) => readPath(context, field);
}

/** Whether an edge's `when` holds on the context. Pure. */
export function conditionHolds(condition: EdgeCondition, read: PathReader): boolean {
  const value = read(condition.field);
  if ('equals' in condition) return jsonEquals(value, condition.equals);
  if ('notEquals' in condition) return !jsonEquals(value, condition.notEquals);
  if ('exists' in condition) return (value !== undefined) === condition.exists;
  if ('in' in condition) return condition.in.some((candidate) => jsonEquals(value, candidate));
  return Boolean(value) === condition.truthy;
}

/** Where control goes after a node finishes (SPEC §4 "Branching"). */
export type BranchChoice =
  | { kind: 'edge'; to: string }
  | { kind: 'exit' }
  | { kind: 'no_branch' }
  | { kind: 'ambiguous_branch'; candidates: string[] };

/**
 * Chooses the outgoing edge to take: the one guarded edge whose `when` holds;
 * else the unguarded (default) edge; a node with no edges exits the graph.
 * None holding without a default, or two guarded edges holding, is a choice
 * the run cannot make: it fails rather than dangle.
 *
 * Pure.
 */
export function chooseBranch(edges: readonly PlaybookEdge[], read: PathReader): BranchChoice {
  if (edges.length === 0) return { kind: 'exit' };
  const held = edges.filter((edge) => edge.when !== undefined && conditionHolds(edge.when, read));
  if (held.length > 1) return { kind: 'ambiguous_branch', candidates: held.map((edge) => edge.to) };
  const chosen = held[0] ?? edges.find((edge) => edge.when === undefined);
  return chosen ? { kind: 'edge', to: chosen.to } : { kind: 'no_branch' };
}
