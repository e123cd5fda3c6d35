import { entryNodeId, outgoingEdges } from '../playbook/graph.js';
import type { PlaybookDefinition, PlaybookEdge, PlaybookNode } from '../playbook/types.js';

/**
 * A validated playbook indexed for the hot path: nodes by id, outgoing edges by
 * node (explicit edges plus `depends`), the entry node. Built once per playbook.
 */
export interface PlaybookModel {
  definition: PlaybookDefinition;
  entry: string;
  nodes: ReadonlyMap<string, PlaybookNode>;
  edges: ReadonlyMap<string, readonly PlaybookEdge[]>;
}

/** Default cap when neither the node nor the run sets one (SPEC §4). */
export const DEFAULT_MAX_ITERATIONS = 3;

/** Indexes a definition that `parsePlaybook` accepted. Pure. */
export function createPlaybookModel(definition: PlaybookDefinition): PlaybookModel {
  const nodes = new Map(definition.nodes.map((node) => [node.id, node] as const));
  const edges = new Map(definition.nodes.map((node) => [node.id, outgoingEdges(definition, node.id)] as const));
  return { definition, entry: entryNodeId(definition), nodes, edges };
}

/** The node's cap: its `max_iterations`, else the run's default. Pure. */
export function capOf(node: PlaybookNode, maxIterationsDefault: number): number {
  return node.on_failure?.max_iterations ?? maxIterationsDefault;
}

/** Looks a node up; throws on an id the model does not have (a programmer error or a corrupt log). */
export function nodeOf(model: PlaybookModel, nodeId: string): PlaybookNode {
  const node = model.nodes.get(nodeId);
  if (!node) throw new TypeError(`playbook '${model.definition.name}' has no node '${nodeId}'`);
  return node;
}
