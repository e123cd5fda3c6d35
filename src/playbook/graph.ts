/**
 * Pure graph helpers over a playbook: successors, the entry node, node lookup.
 *
 * Successors come from explicit `edges` and from `depends` (`depends: [x]` on
 * node n is an unguarded edge x -> n). An explicit edge x -> n wins over the
 * `depends`-derived one, so the same pair written both ways counts once.
 */
import { CantbookError, E_PLAYBOOK_RUNTIME_INVALID } from '../errors.js';
import type { PlaybookDefinition, PlaybookEdge, PlaybookNode } from './types.js';

/** The part of an edge the graph helpers read. A guard is any `when` that is not `undefined`. */
export interface EdgeShape {
  readonly from: string;
  readonly to: string;
  readonly when?: unknown;
}

/** The part of a playbook the graph helpers read; a {@link PlaybookDefinition} is one. */
export interface GraphShape<E extends EdgeShape = EdgeShape> {
  readonly nodes: readonly { readonly id: string; readonly depends: readonly string[] }[];
  readonly edges: readonly E[];
}

/** An edge derived from `depends`: unguarded, no contract. */
export interface DependsEdge {
  from: string;
  to: string;
  /** The node whose `depends` list holds `from`, and the position in that list. */
  dependsOf: { nodeIndex: number; dependsIndex: number };
}

const pairKey = (from: string, to: string): string => `${from}\u0000${to}`;

/**
 * Every node's outgoing edges: explicit edges in file order, then
 * `depends`-derived edges (in node order) whose pair no explicit edge covers.
 *
 * Pure. Nodes without successors map to `[]`; edges whose `from` is not a node id
 * are ignored. Duplicate explicit edges are kept (the validator reports them).
 */
export function adjacency<E extends EdgeShape>(graph: GraphShape<E>): Map<string, (E | DependsEdge)[]> {
  const out = new Map<string, (E | DependsEdge)[]>(graph.nodes.map((node) => [node.id, []]));
  const covered = new Set<string>();
  for (const edge of graph.edges) {
    out.get(edge.from)?.push(edge);
    covered.add(pairKey(edge.from, edge.to));
  }
  graph.nodes.forEach((node, nodeIndex) => {
    node.depends.forEach((from, dependsIndex) => {
      const key = pairKey(from, node.id);
      const list = out.get(from);
      if (list === undefined || covered.has(key)) return;
      covered.add(key);
      list.push({ from, to: node.id, dependsOf: { nodeIndex, dependsIndex } });
    });
  });
  return out;
}

/**
 * Ids of the nodes with no predecessor (no edge or `depends` pointing at them from
 * a known node), in file order.
 *
 * Pure. A valid playbook has exactly one.
 */
export function entryNodeIds(graph: GraphShape): string[] {
  const ids = new Set(graph.nodes.map((node) => node.id));
  const hasPredecessor = new Set<string>();
  for (const edge of graph.edges) if (ids.has(edge.from)) hasPredecessor.add(edge.to);
  for (const node of graph.nodes) if (node.depends.some((from) => ids.has(from))) hasPredecessor.add(node.id);
  return graph.nodes.map((node) => node.id).filter((id) => !hasPredecessor.has(id));
}

/**
 * The edges leaving `nodeId`, as the runtime should consider them.
 *
 * Pure. Explicit edges in file order, then `depends`-derived unguarded edges
 * (`{from, to}` only) for pairs no explicit edge covers. Returns `[]` for an
 * unknown id or a node without successors.
 *
 * @example outgoingEdges(definition, 'validate') // [{from: 'validate', to: 'test'}]
 */
export function outgoingEdges(definition: PlaybookDefinition, nodeId: string): PlaybookEdge[] {
  return (adjacency(definition).get(nodeId) ?? []).map((edge) =>
    'dependsOf' in edge ? { from: edge.from, to: edge.to } : edge,
  );
}

/**
 * The id of the playbook's single entry node (the node with no predecessors).
 *
 * Pure. Throws `CantbookError` `E_PLAYBOOK_RUNTIME_INVALID` when there is not
 * exactly one, which cannot happen for a definition `parsePlaybook` returned.
 */
export function entryNodeId(definition: PlaybookDefinition): string {
  const entries = entryNodeIds(definition);
  const [entry] = entries;
  if (entry === undefined || entries.length > 1) {
    throw new CantbookError(
      E_PLAYBOOK_RUNTIME_INVALID,
      `playbook "${definition.name}" must have exactly one entry node, found ${entries.length}${entries.length > 0 ? ` (${entries.map((id) => `"${id}"`).join(', ')})` : ''}`,
      { playbook: definition.name, entries },
    );
  }
  return entry;
}

/** The node with id `id`, or `undefined`. Pure. */
export function findNode(definition: PlaybookDefinition, id: string): PlaybookNode | undefined {
  return definition.nodes.find((node) => node.id === id);
}
