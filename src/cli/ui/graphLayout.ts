/**
 * Where the web viewer draws a run's statechart: every box, lane, edge route
 * and edge label, laid out by ELK's layered algorithm (elkjs, docs/adr/0011).
 * The page only draws what this says, so the geometry is tested without a
 * browser and the same graph always gets the same picture.
 */
import type { ELK, ElkExtendedEdge, ElkLabel, ElkNode, LayoutOptions } from 'elkjs/lib/elk.bundled.js';
import type { GraphEdge, GraphNode, RunGraph } from './runView.js';

/** A rectangle in the chart's coordinates (origin top left, y down), as SVG draws it. */
export interface LayoutBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface LayoutPoint {
  x: number;
  y: number;
}

/** A node's box: a state, a parallel group (around its lanes) or an end state. */
export interface NodeLayout extends LayoutBox {
  id: string;
}

/** A branch's lane inside its group's box. */
export interface LaneLayout extends LayoutBox {
  id: string;
  groupId: string;
}

/** One edge of the graph: its route from the source's border to the target's, and where its label goes. */
export interface EdgeLayout {
  from: string;
  to: string;
  kind: GraphEdge['kind'];
  /** The route, first point on the source's border, last on the target's; straight segments between. */
  points: LayoutPoint[];
  /** The label's box (its text centred in it); absent for an edge without a label. */
  label?: LayoutBox & { text: string };
}

/**
 * The statechart's geometry, absolute: `nodes` has one box per graph node and
 * end state (`graph.nodes` then `graph.ends`), `lanes` one per branch, `edges`
 * one per edge (`graph.edges` then `graph.endEdges`, in that order).
 */
export interface RunLayout {
  width: number;
  height: number;
  nodes: NodeLayout[];
  lanes: LaneLayout[];
  edges: EdgeLayout[];
}

/** Sizes the drawing (viewer/chart.js) relies on: text sits inside these boxes at these sizes. */
export const LAYOUT_SIZES = {
  node: { minWidth: 180, maxWidth: 260, height: 58 },
  end: { width: 170, height: 46 },
  /** Room above a group's lanes for its id and detail, and above a lane's nodes for its name. */
  groupHead: 50,
  laneHead: 28,
  padding: 12,
  margin: 16,
  labelHeight: 16,
  labelFont: 11,
  /** The width the drawing allows one character of a node's detail line (11px), clipping longer lines to the box. */
  detailChar: 6.2,
  /** How far inside a child-run node's box its subroutine bars are drawn. */
  subroutineInset: 9,
} as const;

/**
 * ELK's layered algorithm, top-down. Hierarchy is laid out in one pass
 * (INCLUDE_CHILDREN) so a group's size follows from its lanes and edges stay in
 * the graph that holds them; orthogonal routes go around boxes; edge labels
 * are placed by the layout, in the middle of their edge; file order is kept
 * where it costs no crossing. Coordinates come back absolute (json.*Coords ROOT).
 */
const ROOT_OPTIONS: LayoutOptions = {
  'elk.algorithm': 'layered',
  'elk.direction': 'DOWN',
  'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
  'elk.edgeRouting': 'ORTHOGONAL',
  'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES',
  'elk.layered.considerModelOrder.crossingCounterNodeInfluence': '0.1',
  'elk.layered.nodePlacement.strategy': 'NETWORK_SIMPLEX',
  'elk.layered.mergeEdges': 'true',
  'elk.spacing.nodeNode': '36',
  'elk.layered.spacing.nodeNodeBetweenLayers': '44',
  'elk.spacing.edgeNode': '18',
  'elk.layered.spacing.edgeNodeBetweenLayers': '18',
  'elk.spacing.edgeEdge': '12',
  'elk.layered.spacing.edgeEdgeBetweenLayers': '12',
  'elk.spacing.edgeLabel': '4',
  'elk.spacing.labelNode': '8',
  'elk.edgeLabels.inline': 'false',
  'elk.padding': `[top=${LAYOUT_SIZES.margin},left=${LAYOUT_SIZES.margin},bottom=${LAYOUT_SIZES.margin},right=${LAYOUT_SIZES.margin}]`,
  'elk.json.shapeCoords': 'ROOT',
  'elk.json.edgeCoords': 'ROOT',
};

/** One engine for the process: the bundled build runs in this thread (no web worker). */
let engine: ELK | undefined;

/**
 * The engine, loaded on the first layout: the bundle is 1.5 MB of JavaScript,
 * which every other command of the CLI (they all import the viewer's module)
 * would otherwise parse at start.
 */
async function elk(): Promise<ELK> {
  if (engine === undefined) {
    // The bundle is CommonJS: imported from ESM its default is `module.exports`, which carries the class as `default` too.
    const module = (await import('elkjs/lib/elk.bundled.js')).default as unknown as { default: new () => ELK };
    engine = new module.default();
  }
  return engine;
}

/**
 * Lays out a run's graph (`buildRunGraph`) as the viewer draws it: boxes for
 * nodes, a group's box around one lane per branch (nested groups nested), end
 * states in the last layer, orthogonal edge routes that go around boxes and
 * labels placed by the layout so they cover no box. Deterministic for a given
 * graph. Rejects only if ELK does (a programmer error: an edge to a missing node).
 *
 * @example
 * const layout = await layoutRunGraph(buildRunGraph(definition));
 * layout.nodes.find((box) => box.id === '@completed'); // {id, x, y, width, height}
 */
export async function layoutRunGraph(graph: RunGraph): Promise<RunLayout> {
  const key = JSON.stringify(graph);
  const known = laidOut.get(key);
  if (known !== undefined) return known;
  const layout = fromElk(graph, await (await elk()).layout(toElk(graph)));
  // A page is asked for again and again (every refresh of a run); the same graph always gets the same layout.
  if (laidOut.size >= LAYOUT_CACHE_SIZE) laidOut.delete(laidOut.keys().next().value as string);
  laidOut.set(key, layout);
  return layout;
}

const LAYOUT_CACHE_SIZE = 64;
/** The layouts of the graphs seen last, by the graph's JSON, oldest first. */
const laidOut = new Map<string, RunLayout>();

/** Roughly how wide `text` is in the page's sans-serif at `size` px: narrow and wide letters apart, rounded up. */
export function estimateTextWidth(text: string, size: number, bold = false): number {
  let em = 0;
  for (const char of text) {
    if ("il.,:;'|!ijtf ()[]".includes(char)) em += 0.32;
    else if ('mwMW@'.includes(char)) em += 0.88;
    else if (char >= 'A' && char <= 'Z') em += 0.68;
    else em += 0.56;
  }
  return Math.ceil(em * size * (bold ? 1.08 : 1));
}

/** A plain node's width: its id in bold and its detail, within the bounds the drawing clips to. */
function nodeWidth(node: GraphNode): number {
  const { minWidth, maxWidth } = LAYOUT_SIZES.node;
  // A child-run node's subroutine bars take room from its detail line on both sides.
  const bars = node.type === 'playbook' || node.type === 'map' ? 2 * LAYOUT_SIZES.subroutineInset : 0;
  const text = Math.max(estimateTextWidth(node.id, 14, true) + 32, node.detail.length * LAYOUT_SIZES.detailChar + 24 + bars);
  return Math.min(maxWidth, Math.max(minWidth, text));
}

const boxPadding = (top: number): string => `[top=${top},left=${LAYOUT_SIZES.padding},bottom=${LAYOUT_SIZES.padding},right=${LAYOUT_SIZES.padding}]`;

function toElk(graph: RunGraph): ElkNode {
  const byId = new Map(graph.nodes.map((node) => [node.id, node]));
  const branchesOf = new Map<string, RunGraph['branches']>();
  for (const branch of graph.branches) branchesOf.set(branch.groupId, [...(branchesOf.get(branch.groupId) ?? []), branch]);
  // Every edge belongs to the graph holding both its ends: the root or one lane.
  const containerOf = (id: string): string => byId.get(id)?.branch ?? 'root';
  const edgesIn = new Map<string, ElkExtendedEdge[]>();
  const finalIds = new Set([...graph.nodes.filter((node) => node.type === 'final'), ...graph.ends].map((node) => node.id));
  [...graph.edges, ...graph.endEdges].forEach((edge, index) => {
    const labels: ElkLabel[] =
      edge.label === undefined
        ? []
        : [{ id: `label${index}`, text: edge.label, width: estimateTextWidth(edge.label, LAYOUT_SIZES.labelFont) + 6, height: LAYOUT_SIZES.labelHeight, layoutOptions: { 'elk.edgeLabels.placement': 'CENTER' } }];
    const container = containerOf(edge.from);
    const target = finalIds.has(edge.to) ? portOf(edge.to) : edge.to;
    // The main flow decides the layers: a `next` edge points down whenever it can; an escalation
    // (back to an earlier node) is the edge the cycle breaker turns round.
    const layoutOptions: LayoutOptions = { 'elk.layered.priority.direction': edge.kind === 'next' ? '10' : '0' };
    edgesIn.set(container, [...(edgesIn.get(container) ?? []), { id: `edge${index}`, sources: [edge.from], targets: [target], labels, layoutOptions }]);
  });

  const elkNode = (node: GraphNode): ElkNode => {
    if (node.type !== 'parallel') return { id: node.id, width: nodeWidth(node), height: LAYOUT_SIZES.node.height };
    const title = Math.max(estimateTextWidth(node.id, 14, true), estimateTextWidth(node.detail, 11)) + 2 * LAYOUT_SIZES.padding + 8;
    return {
      id: node.id,
      layoutOptions: {
        'elk.padding': boxPadding(LAYOUT_SIZES.groupHead),
        'elk.nodeSize.constraints': 'MINIMUM_SIZE',
        'elk.nodeSize.minimum': `(${Math.min(title, 2 * LAYOUT_SIZES.node.maxWidth)}, 100)`,
        'elk.spacing.nodeNode': '14',
      },
      children: (branchesOf.get(node.id) ?? []).map((branch) => ({
        id: laneId(branch.id),
        layoutOptions: {
          'elk.padding': boxPadding(LAYOUT_SIZES.laneHead),
          'elk.nodeSize.constraints': 'MINIMUM_SIZE',
          'elk.nodeSize.minimum': `(${estimateTextWidth(`branch ${branch.id}`, 12, true) + 2 * LAYOUT_SIZES.padding}, 60)`,
        },
        children: branch.nodes.map((id) => elkNode(byId.get(id) as GraphNode)),
        edges: edgesIn.get(branch.id) ?? [],
      })),
    };
  };

  const top = graph.nodes.filter((node) => node.branch === undefined && node.type !== 'final').map(elkNode);
  const finals: ElkNode[] = [...graph.nodes.filter((node) => node.type === 'final'), ...graph.ends].map((node) => ({
    id: node.id,
    width: Math.max(LAYOUT_SIZES.end.width, estimateTextWidth(node.detail, 14, true) + 36),
    height: LAYOUT_SIZES.end.height,
    // The run's end states side by side below everything else; every edge into one shares its one port on top,
    // so ELK routes the many ways into `failed` as one trunk with branches (merged long-edge dummies), not as parallel lines.
    layoutOptions: { 'elk.layered.layering.layerConstraint': 'LAST', 'elk.portConstraints': 'FIXED_SIDE' },
    ports: [{ id: portOf(node.id), width: 1, height: 1, layoutOptions: { 'elk.port.side': 'NORTH' } }],
  }));
  return { id: 'root', layoutOptions: ROOT_OPTIONS, children: [...top, ...finals], edges: edgesIn.get('root') ?? [] };
}

/** The ELK id of an end state's one port. */
const portOf = (endId: string): string => `${endId}:in`;

/** A lane's ELK id: branch ids and node ids share one namespace, so the lane gets a prefix no id can have. */
const laneId = (branchId: string): string => `@lane:${branchId}`;

function fromElk(graph: RunGraph, root: ElkNode): RunLayout {
  const shapes = new Map<string, ElkNode>();
  const edges = new Map<string, ElkExtendedEdge>();
  const walk = (node: ElkNode): void => {
    shapes.set(node.id, node);
    for (const edge of node.edges ?? []) edges.set(edge.id, edge);
    for (const child of node.children ?? []) walk(child);
  };
  walk(root);
  const box = (id: string): LayoutBox => {
    const shape = shapes.get(id);
    if (shape === undefined) throw new Error(`the layout has no box for '${id}'`);
    return { x: shape.x ?? 0, y: shape.y ?? 0, width: shape.width ?? 0, height: shape.height ?? 0 };
  };
  // ELK centres lanes of different heights in their layer; drawn, a group's lanes line up top and bottom.
  const laneBox = (groupId: string, branchId: string): LayoutBox => {
    const siblings = graph.branches.filter((branch) => branch.groupId === groupId).map((branch) => box(laneId(branch.id)));
    const top = Math.min(...siblings.map((lane) => lane.y));
    const bottom = Math.max(...siblings.map((lane) => lane.y + lane.height));
    return { ...box(laneId(branchId)), y: top, height: bottom - top };
  };
  return {
    width: Math.ceil(root.width ?? 0),
    height: Math.ceil(root.height ?? 0),
    nodes: [...graph.nodes, ...graph.ends].map((node) => ({ id: node.id, ...box(node.id) })),
    lanes: graph.branches.map((branch) => ({ id: branch.id, groupId: branch.groupId, ...laneBox(branch.groupId, branch.id) })),
    edges: [...graph.edges, ...graph.endEdges].map((edge, index) => {
      const laid = edges.get(`edge${index}`);
      const label = laid?.labels?.[0];
      return {
        from: edge.from,
        to: edge.to,
        kind: edge.kind,
        points: routeOf(laid),
        ...(label === undefined || edge.label === undefined ? {} : { label: { text: edge.label, x: label.x ?? 0, y: label.y ?? 0, width: label.width ?? 0, height: label.height ?? 0 } }),
      };
    }),
  };
}

/** An edge's sections joined into one polyline (ELK gives one section per edge here; several are chained in order). */
function routeOf(edge: ElkExtendedEdge | undefined): LayoutPoint[] {
  const points: LayoutPoint[] = [];
  for (const section of edge?.sections ?? []) {
    for (const point of [section.startPoint, ...(section.bendPoints ?? []), section.endPoint]) {
      const last = points[points.length - 1];
      if (last === undefined || last.x !== point.x || last.y !== point.y) points.push({ x: point.x, y: point.y });
    }
  }
  return points;
}
