/**
 * The contract checks of SPEC §13, as pure functions of a folded run: a
 * node's `requires.fields` before an attempt starts; its `ensures`
 * (`outputFiles`, `exitCode`, `schema`) and the `contract.requires` of the
 * edge its success takes, once its output is merged.
 *
 * One rule, one place: `nextSteps` asks {@link entryViolation} whether a
 * start must record a violation first, the runtime asks
 * {@link exitViolation} what to record before a success, and the machine's
 * guards call the same functions to refuse a log that skipped a check (or
 * recorded one that did not fail). `ensures.schema` names a schema from the
 * host's registry, which the log does not hold, so its verdict is what the
 * runtime recorded: the guards check only that no other check failed first.
 */
import { chooseBranch, readPath } from '../compiler/branching.js';
import type { PlaybookModel } from '../compiler/playbookModel.js';
import { readContext } from '../compiler/runState.js';
import type { RunState } from '../compiler/runState.js';
import type { ContractKind, RunContext } from '../events/types.js';
import type { PlaybookEdge, PlaybookNode } from '../playbook/types.js';
import { checkEnsuresSchemaWith } from './ensuresSchema.js';
import type { SchemaRegistry } from './ensuresSchema.js';

/** A failed check, as `ContractViolated` records it (without the node and attempt). */
export interface Violation {
  kind: ContractKind;
  key: string;
  message: string;
  failClosed?: true;
  to?: string;
}

/** A context value counts as present unless it is missing or null. */
function present(value: unknown): boolean {
  return value !== undefined && value !== null;
}

const quote = (text: string) => `'${text}'`;

/**
 * Whether a node has anything to check before it starts (`requires.fields`),
 * in a model that checks contracts. Pure.
 */
export function hasEntryContract(model: PlaybookModel, node: PlaybookNode): boolean {
  return model.contracts && node.type !== 'approval' && (node.requires?.fields?.length ?? 0) > 0;
}

/**
 * Whether a node has anything to check once its output is merged: an
 * `ensures` with keys, an exit code or a schema name, or an outgoing edge with
 * `contract.requires`. Approval nodes are checked by neither (the parser
 * refuses contracts on them). Pure.
 */
export function hasExitContract(model: PlaybookModel, node: PlaybookNode): boolean {
  if (!model.contracts || node.type === 'approval') return false;
  const ensures = node.ensures;
  if ((ensures?.outputFiles?.length ?? 0) > 0 || ensures?.exitCode !== undefined || typeof ensures?.schema === 'string') return true;
  return (model.edges.get(node.id) ?? []).some((edge) => (edge.contract?.requires?.fields?.length ?? 0) > 0);
}

/**
 * The first of the node's `requires.fields` missing from the context it
 * sees, as a violation; undefined when every field is there (or the node
 * requires nothing). Fields are dotted paths (`plan.title`). Pure.
 */
export function entryViolation(model: PlaybookModel, state: RunState, nodeId: string): Violation | undefined {
  const node = model.nodes.get(nodeId);
  if (node === undefined || !hasEntryContract(model, node)) return undefined;
  for (const field of node.requires?.fields ?? []) {
    if (!present(readContext(model, state, nodeId, field))) {
      return { kind: 'requires', key: field, message: `requires on ${quote(nodeId)}: the context has no ${quote(field)}${fromWhom(node)}` };
    }
  }
  return undefined;
}

function fromWhom(node: PlaybookNode): string {
  const from = node.requires?.from;
  return from === undefined ? '' : ` (expected from ${quote(from)})`;
}

/** Reads a field of the context a node sees once `output` is merged into it, without building that context. */
function readerAfter(model: PlaybookModel, state: RunState, nodeId: string, output: RunContext): (field: string) => unknown {
  return (field) => {
    const head = field.split('.', 1)[0] as string;
    return Object.hasOwn(output, head) ? readPath(output, field) : readContext(model, state, nodeId, field);
  };
}

/**
 * The exit code of a success: what the runner reported beside the output,
 * else the output's own `exitCode`, or `{<nodeId>: {exitCode}}` (a runner
 * that reports it only in the output).
 */
function exitCodeOf(output: RunContext, nodeId: string, reported: number | undefined): unknown {
  if (reported !== undefined) return reported;
  if (Object.hasOwn(output, 'exitCode')) return output.exitCode;
  const own = Object.hasOwn(output, nodeId) ? output[nodeId] : undefined;
  return typeof own === 'object' && own !== null && Object.hasOwn(own, 'exitCode') ? (own as { exitCode: unknown }).exitCode : undefined;
}

/**
 * The first failing check that does not need the host's schema registry, in
 * the order the runtime checks them: `ensures.outputFiles`, `ensures.exitCode`,
 * then the `contract.requires` of the edge the success takes. `output` is the
 * success's output, not yet merged into `state`. Pure.
 */
export function pureExitViolation(model: PlaybookModel, state: RunState, nodeId: string, output: RunContext, exitCode?: number): Violation | undefined {
  const node = model.nodes.get(nodeId);
  if (node === undefined || !hasExitContract(model, node)) return undefined;
  const read = readerAfter(model, state, nodeId, output);
  for (const key of node.ensures?.outputFiles ?? []) {
    if (!present(read(key))) return { kind: 'outputFiles', key, message: `ensures.outputFiles on ${quote(nodeId)}: the output left no ${quote(key)} in the context` };
  }
  const expected = node.ensures?.exitCode;
  if (expected !== undefined) {
    const code = exitCodeOf(output, nodeId, exitCode);
    if (code !== expected) {
      return { kind: 'exitCode', key: 'exitCode', message: `ensures.exitCode on ${quote(nodeId)}: expected exit code ${expected}, found ${code === undefined ? 'none in the output' : JSON.stringify(code)}` };
    }
  }
  const edge = takenEdge(model.edges.get(nodeId) ?? [], read);
  for (const field of edge?.contract?.requires?.fields ?? []) {
    if (!present(read(field))) {
      return { kind: 'edge', key: field, to: edge?.to as string, message: `contract.requires on edge ${quote(nodeId)} -> ${quote(edge?.to as string)}: the context has no ${quote(field)}` };
    }
  }
  return undefined;
}

/** The edge a success takes, as the machine's routing will choose it; undefined when none is taken (exit, no or ambiguous branch). */
function takenEdge(edges: readonly PlaybookEdge[], read: (field: string) => unknown): PlaybookEdge | undefined {
  const choice = chooseBranch(edges, read);
  if (choice.kind !== 'edge') return undefined;
  const guarded = edges.find((edge) => edge.when !== undefined && edge.to === choice.to && chooseBranch([edge], read).kind === 'edge');
  return guarded ?? edges.find((edge) => edge.when === undefined && edge.to === choice.to);
}

/**
 * Every check after a success, in order: the pure ones
 * ({@link pureExitViolation}), then `ensures.schema` against the host's
 * `registry` and the built-ins. Returns the first that fails, or undefined.
 * Pure (the registry's schemas are called, and must be pure too).
 */
export function exitViolation(model: PlaybookModel, state: RunState, nodeId: string, output: RunContext, registry: SchemaRegistry, exitCode?: number): Violation | undefined {
  const first = pureExitViolation(model, state, nodeId, output, exitCode);
  if (first !== undefined) return first;
  const name = model.nodes.get(nodeId)?.ensures?.schema;
  if (typeof name !== 'string') return undefined;
  const checked = checkEnsuresSchemaWith(name, readerAfter(model, state, nodeId, output), registry, { nodeId });
  if (checked.ok) return undefined;
  const { violation } = checked;
  return { kind: 'schema', key: violation.schema, message: violation.message, ...(violation.failClosed ? { failClosed: true as const } : {}) };
}
