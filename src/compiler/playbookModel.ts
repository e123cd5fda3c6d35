import { parseDuration } from '../playbook/duration.js';
import { adjacency, entryNodeIds } from '../playbook/graph.js';
import type { ErrorHandler, ErrorHandlerTrigger, ParallelNode, PlaybookDefinition, PlaybookEdge, PlaybookNode } from '../playbook/types.js';

/** One branch of a parallel group, indexed. */
export interface BranchModel {
  id: string;
  /** The parallel node that holds the branch. */
  groupId: string;
  /** Position among the group's branches: the join merges outputs in this order. */
  index: number;
  entry: string;
  /** The branch's own nodes (not those of groups nested in it), in file order. */
  nodeIds: readonly string[];
}

/**
 * A validated playbook indexed for the hot path, built once per playbook in
 * O(nodes + edges): every node by id (branches included), outgoing edges by
 * node (explicit edges plus `depends`, within the node's own graph), the entry
 * of the top level and of every branch, and where each node sits.
 */
export interface PlaybookModel {
  definition: PlaybookDefinition;
  /** The top level's entry node. */
  entry: string;
  nodes: ReadonlyMap<string, PlaybookNode>;
  edges: ReadonlyMap<string, readonly PlaybookEdge[]>;
  branches: ReadonlyMap<string, BranchModel>;
  /** The branches enclosing each node, outermost first ([] at the top level). */
  branchChain: ReadonlyMap<string, readonly string[]>;
  /** Every node inside each parallel group, nested groups' nodes included. */
  descendants: ReadonlyMap<string, readonly string[]>;
  /** The handler that applies to each trigger: the first `error_handlers` entry with that `on` (SPEC §13). */
  handlers: Readonly<Partial<Record<ErrorHandlerTrigger, ErrorHandler>>>;
  /**
   * Whether runs of this model check contracts, act on `error_handlers` and
   * let gate policies pass gates (SPEC §13). Runs started before the runtime
   * did fold as they ran: without (`RunStarted.contracts` absent).
   */
  contracts: boolean;
}

/** Options of {@link createPlaybookModel}. */
export interface PlaybookModelOptions {
  /** False for a run started before contracts were enforced (default true). */
  contracts?: boolean;
}

/** Default cap when neither the node nor the run sets one (SPEC §4). */
export const DEFAULT_MAX_ITERATIONS = 3;

/** Indexes a definition that `parsePlaybook` accepted. Pure. */
export function createPlaybookModel(definition: PlaybookDefinition, options: PlaybookModelOptions = {}): PlaybookModel {
  const nodes = new Map<string, PlaybookNode>();
  const edges = new Map<string, readonly PlaybookEdge[]>();
  const branches = new Map<string, BranchModel>();
  const branchChain = new Map<string, readonly string[]>();
  const descendants = new Map<string, string[]>();

  const indexGraph = (graph: { nodes: readonly PlaybookNode[]; edges: readonly PlaybookEdge[] }, chain: readonly string[], groups: readonly string[]): string => {
    for (const [from, out] of adjacency(graph)) edges.set(from, out.map((edge) => ('dependsOf' in edge ? { from: edge.from, to: edge.to } : edge)));
    for (const node of graph.nodes) {
      nodes.set(node.id, node);
      branchChain.set(node.id, chain);
      for (const group of groups) descendants.get(group)?.push(node.id);
      if (node.type === 'parallel') indexGroup(node, chain, groups);
    }
    const [entry] = entryNodeIds(graph);
    if (entry === undefined) throw new TypeError(`playbook '${definition.name}' has a graph without an entry node`);
    return entry;
  };
  const indexGroup = (group: ParallelNode, chain: readonly string[], groups: readonly string[]): void => {
    descendants.set(group.id, []);
    group.branches.forEach((branch, index) => {
      const entry = indexGraph(branch, [...chain, branch.id], [...groups, group.id]);
      branches.set(branch.id, { id: branch.id, groupId: group.id, index, entry, nodeIds: branch.nodes.map((node) => node.id) });
    });
  };

  const entry = indexGraph(definition, [], []);
  const contracts = options.contracts !== false;
  const handlers: Partial<Record<ErrorHandlerTrigger, ErrorHandler>> = {};
  if (contracts) for (const handler of definition.error_handlers) handlers[handler.on] ??= handler;
  return { definition, entry, nodes, edges, branches, branchChain, descendants, handlers, contracts };
}

/** The node's cap: its `max_iterations`, else the run's default. Pure. */
export function capOf(node: PlaybookNode, maxIterationsDefault: number): number {
  return node.on_failure?.max_iterations ?? maxIterationsDefault;
}

/** What a node's failure leads to (SPEC §4 "Attempts and caps", §10 `retryable: false`). */
export type FailureDecision = 'retry' | 'escalate' | 'exhaust' | 'give_up';

/**
 * The failure policy, in one place: the compiler's guards, `nextSteps`, the CLI
 * export and the viewer all read it from here.
 *
 * Without `inject_into` a node is retried in place while its attempts since it
 * was (re)entered are fewer than max(cap, 1), unless the failure said it is
 * not worth retrying (`retryable: false`): then it gives up. With
 * `inject_into` it hands control back at most `cap` times in a run (a
 * non-retryable failure escalates too: escalation is not a retry in place).
 * Anything else exhausts it.
 *
 * Pure.
 */
export function decideFailure(node: PlaybookNode, counts: { attempts: number; escalations: number; retryable?: boolean }, maxIterationsDefault: number): FailureDecision {
  const cap = capOf(node, maxIterationsDefault);
  if (node.on_failure?.inject_into === undefined) {
    if (counts.attempts >= Math.max(cap, 1)) return 'exhaust';
    return counts.retryable === false ? 'give_up' : 'retry';
  }
  return counts.escalations < cap ? 'escalate' : 'exhaust';
}

/**
 * How long a node waits before its next in-place attempt (SPEC §10), given the
 * attempts it made since it was (re)entered: `min(max, initial *
 * factor^(done - 1))` milliseconds, or 0 without `on_failure.backoff` or
 * before its first attempt. Pure.
 */
export function backoffDelayMs(node: PlaybookNode, attemptsDone: number): number {
  const backoff = node.on_failure?.backoff;
  if (backoff === undefined || attemptsDone < 1) return 0;
  const initial = parseDuration(backoff.initial) ?? 0;
  const delay = initial * (backoff.factor ?? 2) ** (attemptsDone - 1);
  const max = backoff.max === undefined ? Infinity : (parseDuration(backoff.max) ?? Infinity);
  return Math.round(Math.min(max, delay));
}

/** How long one attempt of a node may run (agentic `timeout`, deterministic `timeout_ms`), or null for no limit. Pure. */
export function attemptTimeoutMs(node: PlaybookNode): number | null {
  if (node.type === 'agentic' && node.timeout !== undefined) return parseDuration(node.timeout);
  if (node.type === 'deterministic' && node.timeout_ms !== undefined && node.timeout_ms > 0) return node.timeout_ms;
  return null;
}

/**
 * The failure policy as words, for the CLI and the viewer: "2 attempt(s)" or
 * "1 escalation(s) to 'implement'". Pure.
 */
export function describeFailurePolicy(node: PlaybookNode, maxIterationsDefault: number): string {
  const cap = capOf(node, maxIterationsDefault);
  const target = node.on_failure?.inject_into;
  return target !== undefined ? `${cap} escalation(s) to '${target}'` : `${Math.max(cap, 1)} attempt(s)`;
}

/** The action of the handler for `on`, or undefined when the playbook declares none. Pure. */
export function handlerAction(model: PlaybookModel, on: ErrorHandlerTrigger): ErrorHandler['action'] | undefined {
  return model.handlers[on]?.action;
}

/** Looks a node up; throws on an id the model does not have (a programmer error or a corrupt log). */
export function nodeOf(model: PlaybookModel, nodeId: string): PlaybookNode {
  const node = model.nodes.get(nodeId);
  if (!node) throw new TypeError(`playbook '${model.definition.name}' has no node '${nodeId}'`);
  return node;
}

/** The parallel groups enclosing a node, outermost first. Pure. */
export function enclosingGroups(model: PlaybookModel, nodeId: string): string[] {
  return (model.branchChain.get(nodeId) ?? []).map((branchId) => model.branches.get(branchId)?.groupId as string);
}

/** The branch a node belongs to directly, or undefined at the top level. Pure. */
export function branchOf(model: PlaybookModel, nodeId: string): BranchModel | undefined {
  const chain = model.branchChain.get(nodeId) ?? [];
  const last = chain[chain.length - 1];
  return last === undefined ? undefined : model.branches.get(last);
}
