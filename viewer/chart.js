// The statechart of a run, drawn as SVG. Plain browser JavaScript: every
// element is built with DOM calls, never HTML strings, so run data cannot
// inject markup.

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

// The layout: each graph (the top level, and every branch of a parallel group)
// is layered top-to-bottom by its longest path from the entry. A group is a box whose branches are
// lanes side by side, each lane a graph of its own; sizes are measured inside out, so boxes never overlap.
const BOX = { width: 200, height: 58, gapX: 40, gapY: 62, margin: 28, side: 130 };
/** Room for a retry loop's label (left of a box) and an escalation's curve (right of it) inside a lane. */
const LANE = { head: 26, pad: 14, gap: 14, gutter: 16, retry: 150, escalate: 130 };
const GROUP = { head: 44, pad: 12 };
/** How far inside a child-run node's box its subroutine bars are drawn. */
const SUBROUTINE_INSET = 9;

function layout(graph) {
  const byId = new Map(graph.nodes.map((node) => [node.id, node]));
  const lanesOf = new Map();
  for (const branch of graph.branches ?? []) {
    if (!lanesOf.has(branch.groupId)) lanesOf.set(branch.groupId, []);
    lanesOf.get(branch.groupId).push(branch);
  }
  const place = new Map();
  const lanes = [];

  /** Measures one graph (its own nodes only); returns its size and a function that places it at (x, y). */
  function measureGraph(ids, gutters) {
    const inside = new Set(ids);
    const next = graph.edges.filter((edge) => edge.kind === 'next' && inside.has(edge.from) && inside.has(edge.to) && edge.from !== edge.to);
    const layer = new Map(ids.map((id) => [id, 0]));
    const incoming = new Map(ids.map((id) => [id, 0]));
    for (const edge of next) incoming.set(edge.to, incoming.get(edge.to) + 1);
    const queue = ids.filter((id) => incoming.get(id) === 0);
    while (queue.length > 0) {
      const id = queue.shift();
      for (const edge of next.filter((e) => e.from === id)) {
        layer.set(edge.to, Math.max(layer.get(edge.to), layer.get(id) + 1));
        incoming.set(edge.to, incoming.get(edge.to) - 1);
        if (incoming.get(edge.to) === 0) queue.push(edge.to);
      }
    }
    const rows = [];
    for (const id of ids) (rows[layer.get(id)] ??= []).push(id);
    const dense = rows.filter((row) => row !== undefined);
    const sizes = new Map(ids.map((id) => [id, measureNode(id)]));
    const rowWidth = (row) => row.reduce((sum, id) => sum + sizes.get(id).w, 0) + (row.length - 1) * BOX.gapX;
    const rowHeight = (row) => Math.max(...row.map((id) => sizes.get(id).h));
    const inner = Math.max(0, ...dense.map(rowWidth));
    const left = gutters.left(ids);
    const right = gutters.right(ids);
    const height = dense.reduce((sum, row) => sum + rowHeight(row), 0) + Math.max(0, dense.length - 1) * BOX.gapY;
    return {
      w: left + inner + right,
      h: height,
      arrange(x0, y0) {
        let y = y0;
        for (const row of dense) {
          let x = x0 + left + (inner - rowWidth(row)) / 2;
          for (const id of row) {
            const { w, h, arrange } = sizes.get(id);
            place.set(id, { x, y, w, h });
            arrange?.(x, y);
            x += w + BOX.gapX;
          }
          y += rowHeight(row) + BOX.gapY;
        }
      },
    };
  }

  const laneGutters = {
    left: (ids) => (graph.edges.some((edge) => edge.kind === 'retry' && ids.includes(edge.from)) ? LANE.retry : LANE.gutter),
    right: (ids) => (graph.edges.some((edge) => edge.kind === 'escalate' && ids.includes(edge.from)) ? LANE.escalate : LANE.gutter),
  };

  /** A plain node is a box; a group is a box holding one lane per branch, side by side, all as tall as the tallest. */
  function measureNode(id) {
    if (byId.get(id)?.type !== 'parallel') return { w: BOX.width, h: BOX.height };
    const branches = lanesOf.get(id) ?? [];
    const inner = branches.map((branch) => ({ branch, graph: measureGraph(branch.nodes, laneGutters) }));
    const laneHeight = LANE.head + Math.max(0, ...inner.map((lane) => lane.graph.h)) + LANE.pad;
    const width = 2 * GROUP.pad + inner.reduce((sum, lane) => sum + lane.graph.w, 0) + Math.max(0, inner.length - 1) * LANE.gap;
    return {
      w: Math.max(width, BOX.width),
      h: GROUP.head + laneHeight + GROUP.pad,
      arrange(x0, y0) {
        let x = x0 + GROUP.pad;
        for (const lane of inner) {
          lanes.push({ ...lane.branch, x, y: y0 + GROUP.head, w: lane.graph.w, h: laneHeight });
          lane.graph.arrange(x, y0 + GROUP.head + LANE.head);
          x += lane.graph.w + LANE.gap;
        }
      },
    };
  }

  const top = graph.nodes.filter((node) => node.branch === undefined).map((node) => node.id);
  const root = measureGraph(top, { left: () => BOX.side, right: () => BOX.side });
  root.arrange(0, BOX.margin);
  return { place, lanes, width: root.w, height: root.h + 2 * BOX.margin };
}

function edgePath(edge, a, b) {
  if (edge.kind === 'retry') {
    const x1 = a.x;
    const y1 = a.y + 16;
    const y2 = a.y + Math.min(a.h, BOX.height) - 16;
    return { d: `M${x1},${y1} C${x1 - 46},${y1 - 10} ${x1 - 46},${y2 + 10} ${x1},${y2}`, at: { x: x1 - 40, y: (y1 + y2) / 2 + 4 }, anchor: 'end' };
  }
  if (edge.kind === 'escalate') {
    const x1 = a.x + a.w;
    const y1 = a.y + Math.min(a.h, BOX.height) / 2;
    const x2 = b.x + b.w;
    const y2 = b.y + Math.min(b.h, BOX.height) / 2;
    const bulge = 60 + Math.abs(y1 - y2) * 0.15;
    return { d: `M${x1},${y1} C${x1 + bulge},${y1} ${x2 + bulge},${y2} ${x2},${y2}`, at: { x: Math.max(x1, x2) + bulge * 0.75, y: (y1 + y2) / 2 }, anchor: 'start' };
  }
  const x1 = a.x + a.w / 2;
  const y1 = a.y + a.h;
  const x2 = b.x + b.w / 2;
  const y2 = b.y;
  const mid = (y1 + y2) / 2;
  return { d: `M${x1},${y1} C${x1},${mid} ${x2},${mid} ${x2},${y2}`, at: { x: (x1 + x2) / 2 + 6, y: mid }, anchor: 'start' };
}

const clip = (text, max) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

export function drawChart(graph) {
  const { place, lanes, width, height } = layout(graph);
  const root = svg('svg', { class: 'chart', id: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `statechart of ${graph.name}`, dataset: { width } });
  root.append(svg('defs', {},
    svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }))));
  // Groups and their lanes first (outermost first, as measured), so edges and boxes inside them are drawn on top.
  for (const node of graph.nodes.filter((n) => n.type === 'parallel')) {
    const { x, y, w, h } = place.get(node.id);
    root.append(svg('g', { class: 'node parallel', dataset: { node: node.id, active: 'false' }, transform: `translate(${x},${y})` },
      svg('title', {}, node.description ?? node.detail),
      svg('rect', { width: w, height: h, rx: 10 }),
      svg('text', { x: 14, y: 20, class: 'node-id group-id' }, node.id),
      svg('text', { x: 14, y: 36, class: 'node-detail group-detail' }, clip(node.detail, Math.floor(w / 6.5)))));
    for (const lane of lanes.filter((l) => l.groupId === node.id)) {
      root.append(svg('g', { class: 'lane', dataset: { branch: lane.id, group: lane.groupId }, transform: `translate(${lane.x},${lane.y})` },
        svg('title', {}, lane.description ?? `branch ${lane.id}`),
        svg('rect', { width: lane.w, height: lane.h, rx: 8 }),
        svg('text', { x: 10, y: 17, class: 'lane-label' }, `branch ${lane.id}`)));
    }
  }
  const edges = svg('g', { class: 'edges' });
  for (const edge of graph.edges) {
    const a = place.get(edge.from);
    const b = place.get(edge.to);
    if (!a || !b) continue;
    const { d, at, anchor } = edgePath(edge, a, b);
    const group = svg('g', { class: `edge ${edge.kind}`, dataset: { from: edge.from, to: edge.to } }, svg('path', { d, 'marker-end': 'url(#arrow)' }));
    if (edge.label) group.append(svg('text', { x: at.x, y: at.y, class: 'edge-label', 'text-anchor': anchor }, edge.label));
    edges.append(group);
  }
  root.append(edges);
  for (const node of graph.nodes.filter((n) => n.type !== 'parallel')) {
    const { x, y } = place.get(node.id);
    const final = node.type === 'final';
    const group = svg('g', { class: `node ${node.type}`, dataset: { node: node.id, active: 'false' }, transform: `translate(${x},${y})` });
    group.append(svg('title', {}, node.description ?? node.detail));
    group.append(svg('rect', { width: BOX.width, height: BOX.height, rx: final ? BOX.height / 2 : 8 }));
    // A node that runs child runs (SPEC §12) is drawn as a subroutine: a bar inside each side of its box.
    const childRuns = node.type === 'playbook' || node.type === 'map';
    if (childRuns) {
      for (const x of [SUBROUTINE_INSET, BOX.width - SUBROUTINE_INSET]) group.append(svg('line', { x1: x, y1: 0, x2: x, y2: BOX.height, class: 'subroutine-bar' }));
    }
    group.append(svg('text', { x: BOX.width / 2, y: final ? BOX.height / 2 + 5 : 24, class: 'node-id' }, final ? node.detail : node.id));
    if (!final) group.append(svg('text', { x: BOX.width / 2, y: 44, class: 'node-detail' }, clip(node.detail, childRuns ? 34 : 30)));
    root.append(group);
  }
  return root;
}
