// The statechart of a run, drawn as SVG from the layout the server computed
// (src/cli/ui/graphLayout.ts, ELK's layered algorithm): this file places
// nothing itself, it draws the boxes, lanes, edge routes and labels where the
// layout put them. Plain browser JavaScript: every element is built with DOM
// calls, never HTML strings, so run data cannot inject markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null) continue;
    if (name === 'dataset') Object.assign(element.dataset, value);
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) if (child) element.append(child instanceof Node ? child : String(child));
  return element;
}

/** How far inside a child-run node's box its subroutine bars are drawn. */
const SUBROUTINE_INSET = 9;
/** The radius of an edge's rounded corners (never more than half the shorter segment); a retry's loop is rounder. */
const CORNER = 6;
/** About how wide one character of a node's detail line is (11px sans-serif), to clip it to its box. */
const DETAIL_CHAR = 6.2;

const clip = (text, max) => (text.length > max ? `${text.slice(0, Math.max(1, max - 1))}…` : text);
const clipTo = (text, width) => clip(text, Math.floor((width - 20) / DETAIL_CHAR));

/** An orthogonal route as a path with rounded corners: straight segments, a quarter curve at each bend. */
function routePath(points, corner = CORNER) {
  if (points.length === 0) return '';
  const [first, ...rest] = points;
  let d = `M${first.x},${first.y}`;
  for (let i = 0; i < rest.length; i += 1) {
    const here = rest[i];
    const next = rest[i + 1];
    const prev = i === 0 ? first : rest[i - 1];
    if (next === undefined) {
      d += ` L${here.x},${here.y}`;
      continue;
    }
    const r = Math.min(corner, Math.hypot(here.x - prev.x, here.y - prev.y) / 2, Math.hypot(next.x - here.x, next.y - here.y) / 2);
    const toward = (from, to) => {
      const length = Math.hypot(to.x - from.x, to.y - from.y) || 1;
      return { x: from.x + ((to.x - from.x) / length) * r, y: from.y + ((to.y - from.y) / length) * r };
    };
    const before = toward(here, prev);
    const after = toward(here, next);
    d += ` L${before.x},${before.y} Q${here.x},${here.y} ${after.x},${after.y}`;
  }
  return d;
}

/**
 * The chart of `graph` (buildRunGraph) at the positions of `layout`
 * (layoutRunGraph): every node and end state is a `g.node[data-node]`, a
 * group's box `g.node.parallel` holds its lanes (`g.lane[data-branch]`),
 * every edge a `g.edge.<kind>[data-from][data-to]` with its `.edge-label`.
 */
export function drawChart(graph, layout) {
  const boxes = new Map(layout.nodes.map((box) => [box.id, box]));
  const nodes = [...graph.nodes, ...(graph.ends ?? [])].filter((node) => boxes.has(node.id));
  const { width, height } = layout;
  const root = svg('svg', { class: 'chart', id: 'chart', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': `statechart of ${graph.name}`, dataset: { width } });
  root.append(svg('defs', {},
    svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }))));
  // Groups and their lanes first (outermost first: a group comes before the nodes of its branches), so what is inside is drawn on top.
  for (const node of nodes.filter((n) => n.type === 'parallel')) {
    const { x, y, width: w, height: h } = boxes.get(node.id);
    root.append(svg('g', { class: 'node parallel', dataset: { node: node.id, active: 'false' }, transform: `translate(${x},${y})` },
      svg('title', {}, node.description ?? node.detail),
      svg('rect', { width: w, height: h, rx: 10 }),
      svg('text', { x: 12, y: 20, class: 'node-id group-id' }, node.id),
      svg('text', { x: 12, y: 37, class: 'node-detail group-detail' }, clipTo(node.detail, w))));
    for (const lane of layout.lanes.filter((l) => l.groupId === node.id)) {
      const branch = graph.branches.find((b) => b.id === lane.id);
      root.append(svg('g', { class: 'lane', dataset: { branch: lane.id, group: lane.groupId }, transform: `translate(${lane.x},${lane.y})` },
        svg('title', {}, branch?.description ?? `branch ${lane.id}`),
        svg('rect', { width: lane.width, height: lane.height, rx: 8 }),
        svg('text', { x: 10, y: 18, class: 'lane-label' }, `branch ${lane.id}`)));
    }
  }
  const titles = new Map((graph.endEdges ?? []).map((edge) => [`${edge.from}\u0000${edge.to}`, edge.title]));
  const edges = svg('g', { class: 'edges' });
  for (const edge of layout.edges) {
    if (edge.points.length < 2) continue;
    const group = svg('g', { class: `edge ${edge.kind}`, dataset: { from: edge.from, to: edge.to } }, svg('path', { d: routePath(edge.points, edge.from === edge.to ? 3 * CORNER : CORNER), 'marker-end': 'url(#arrow)' }));
    const title = edge.kind === 'end' ? titles.get(`${edge.from}\u0000${edge.to}`) : undefined;
    if (title) group.append(svg('title', {}, title));
    if (edge.label) {
      const { x, y, width: w, height: h, text } = edge.label;
      group.append(svg('rect', { x, y, width: w, height: h, rx: 3, class: 'edge-label-box' }),
        svg('text', { x: x + w / 2, y: y + h / 2, class: 'edge-label', 'text-anchor': 'middle', 'dominant-baseline': 'central' }, text));
    }
    edges.append(group);
  }
  root.append(edges);
  for (const node of nodes.filter((n) => n.type !== 'parallel')) {
    const { x, y, width: w, height: h } = boxes.get(node.id);
    const final = node.type === 'final';
    const group = svg('g', { class: `node ${node.type}`, dataset: { node: node.id, active: 'false' }, transform: `translate(${x},${y})` });
    group.append(svg('title', {}, node.description ?? node.detail));
    group.append(svg('rect', { width: w, height: h, rx: final ? h / 2 : 8 }));
    // A node that runs child runs (SPEC §12) is drawn as a subroutine: a bar inside each side of its box.
    const childRuns = node.type === 'playbook' || node.type === 'map';
    if (childRuns) {
      for (const bar of [SUBROUTINE_INSET, w - SUBROUTINE_INSET]) group.append(svg('line', { x1: bar, y1: 0, x2: bar, y2: h, class: 'subroutine-bar' }));
    }
    group.append(svg('text', { x: w / 2, y: final ? h / 2 + 5 : 24, class: 'node-id' }, final ? node.detail : node.id));
    if (!final) group.append(svg('text', { x: w / 2, y: 44, class: 'node-detail' }, clipTo(node.detail, childRuns ? w - 2 * SUBROUTINE_INSET : w)));
    root.append(group);
  }
  return root;
}
