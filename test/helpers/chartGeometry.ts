/**
 * What a readable statechart is, as checks on boxes: shared by the unit test
 * of the layout (boxes from layoutRunGraph) and the browser test (boxes the
 * page drew, read back from the SVG). Also the generated 30-node playbook both
 * lay out. The checks read only the graph and the boxes, never the layout code.
 */
import type { RunGraph } from '../../src/cli/ui/runView.js';

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Everything drawn, by what it is: `nodes` holds every node and end state (groups included), `lanes` every branch's lane. */
export interface ChartBoxes {
  nodes: Map<string, Box>;
  lanes: Map<string, Box>;
  labels: { edge: string; box: Box }[];
  /** The drawing's visible area (the SVG's viewBox, or its on-page box). */
  frame: Box;
  /** Edge routes, when known (the layout's points): each must go around the boxes it does not start or end at. */
  routes?: { from: string; to: string; points: { x: number; y: number }[] }[];
}

/** Overlap of the interiors: boxes that only touch do not overlap. */
export function overlaps(a: Box, b: Box, slack = 0.5): boolean {
  return a.x + slack < b.x + b.width && b.x + slack < a.x + a.width && a.y + slack < b.y + b.height && b.y + slack < a.y + a.height;
}

export function inside(inner: Box, outer: Box, slack = 1): boolean {
  return inner.x >= outer.x - slack && inner.y >= outer.y - slack && inner.x + inner.width <= outer.x + outer.width + slack && inner.y + inner.height <= outer.y + outer.height + slack;
}

/** The groups and lanes (`lane:<branch>`) that hold a node, read from the graph: its branch, that branch's group, and so on out. */
function containersOf(graph: RunGraph, id: string): Set<string> {
  const byId = new Map(graph.nodes.map((node) => [node.id, node]));
  const branches = new Map(graph.branches.map((branch) => [branch.id, branch]));
  const out = new Set<string>();
  let branch = byId.get(id)?.branch;
  while (branch !== undefined) {
    out.add(`lane:${branch}`);
    const group = branches.get(branch)?.groupId;
    if (group === undefined) break;
    out.add(group);
    branch = byId.get(group)?.branch;
  }
  return out;
}

/**
 * Every way `boxes` fail to draw `graph` readably, in words (empty when none):
 * a node or end state missing, empty or outside the frame; two boxes
 * overlapping unless one is a group or lane holding the other; an edge label
 * over a node box or another label; a route through a box it does not touch.
 */
export function chartProblems(graph: RunGraph, boxes: ChartBoxes): string[] {
  const problems: string[] = [];
  const groups = new Set(graph.nodes.filter((node) => node.type === 'parallel').map((node) => node.id));
  const all = [...graph.nodes, ...graph.ends];
  for (const node of all) {
    const box = boxes.nodes.get(node.id);
    if (box === undefined) problems.push(`${node.id} is not drawn`);
    else if (box.width < 1 || box.height < 1) problems.push(`${node.id} has no size`);
    else if (!inside(box, boxes.frame)) problems.push(`${node.id} is outside the drawing`);
  }
  for (const branch of graph.branches) {
    const lane = boxes.lanes.get(branch.id);
    if (lane === undefined) problems.push(`lane ${branch.id} is not drawn`);
    else if (!inside(lane, boxes.nodes.get(branch.groupId) ?? lane)) problems.push(`lane ${branch.id} is outside its group ${branch.groupId}`);
  }
  const shapes = [
    ...all.map((node) => ({ key: node.id, holders: containersOf(graph, node.id), box: boxes.nodes.get(node.id) })),
    ...graph.branches.map((branch) => ({ key: `lane:${branch.id}`, holders: new Set([branch.groupId, ...containersOf(graph, branch.groupId)]), box: boxes.lanes.get(branch.id) })),
  ];
  for (const [i, a] of shapes.entries()) {
    for (const b of shapes.slice(i + 1)) {
      if (a.box === undefined || b.box === undefined) continue;
      if (a.holders.has(b.key) || b.holders.has(a.key)) {
        const [inner, outer] = a.holders.has(b.key) ? [a, b] : [b, a];
        if (!inside(inner.box as Box, outer.box as Box)) problems.push(`${inner.key} sticks out of ${outer.key}`);
        continue;
      }
      if (overlaps(a.box, b.box)) problems.push(`${a.key} overlaps ${b.key}`);
    }
  }
  const leaves = all.filter((node) => !groups.has(node.id));
  for (const [i, label] of boxes.labels.entries()) {
    for (const node of leaves) {
      const box = boxes.nodes.get(node.id);
      if (box !== undefined && overlaps(label.box, box)) problems.push(`the label of ${label.edge} overlaps ${node.id}`);
    }
    for (const other of boxes.labels.slice(i + 1)) if (overlaps(label.box, other.box)) problems.push(`the labels of ${label.edge} and ${other.edge} overlap`);
    if (!inside(label.box, boxes.frame)) problems.push(`the label of ${label.edge} is outside the drawing`);
  }
  for (const route of boxes.routes ?? []) {
    for (const node of leaves) {
      if (node.id === route.from || node.id === route.to) continue;
      const box = boxes.nodes.get(node.id);
      if (box === undefined) continue;
      for (const [k, p] of route.points.slice(1).entries()) {
        const q = route.points[k] as { x: number; y: number };
        const segment = { x: Math.min(p.x, q.x), y: Math.min(p.y, q.y), width: Math.abs(p.x - q.x), height: Math.abs(p.y - q.y) };
        // Orthogonal segments: a zero-width box; it crosses the node when it enters the node's interior.
        if (overlaps({ ...segment, width: Math.max(segment.width, 0.01), height: Math.max(segment.height, 0.01) }, box, 1)) {
          problems.push(`the edge ${route.from} → ${route.to} runs through ${node.id}`);
          break;
        }
      }
    }
  }
  return problems;
}

/**
 * A 30-node playbook with everything that made the old hand layout unreadable:
 * a three-way branch with labels (`when` edges and an `otherwise`), a two-way
 * one, retries, an escalation (`inject_into`), a gate, and a parallel group of
 * three branches (one with its own condition). Built from a compact table so
 * the count is checked, not hand-kept.
 */
export function thirtyNodePlaybook(): { source: string; nodeCount: number } {
  type Spec = { id: string; type?: 'agentic' | 'deterministic' | 'approval'; depends?: string; extra?: string };
  const top: Spec[] = [
    { id: 'intake', extra: 'on_failure: { max_iterations: 3 }' },
    { id: 'triage', depends: 'intake' },
    { id: 'hotfix_plan' },
    { id: 'patch', depends: 'hotfix_plan', extra: 'on_failure: { max_iterations: 2 }' },
    { id: 'verify_patch', depends: 'patch', extra: 'on_failure: { max_iterations: 2, inject_into: patch }' },
    { id: 'analyse' },
    { id: 'design', depends: 'analyse' },
    { id: 'backlog', type: 'deterministic' },
    { id: 'close_ticket', depends: 'backlog' },
    { id: 'notify_reporter', depends: 'close_ticket' },
  ];
  const branches: { id: string; nodes: Spec[]; edges?: string[] }[] = [
    { id: 'security', nodes: [{ id: 'scan', extra: 'on_failure: { max_iterations: 2 }' }, { id: 'license_scan', depends: 'scan' }, { id: 'sec_gate', type: 'approval', depends: 'license_scan' }] },
    {
      id: 'perf',
      nodes: [{ id: 'bench' }, { id: 'profile' }, { id: 'perf_report' }],
      edges: ['{ from: bench, to: profile, when: { field: regressed, equals: true } }', '{ from: bench, to: perf_report }', '{ from: profile, to: perf_report }'],
    },
    { id: 'docs', nodes: [{ id: 'docs_check' }, { id: 'docs_fix', depends: 'docs_check' }] },
  ];
  const after: Spec[] = [
    { id: 'merge_gate', type: 'approval', depends: 'reviews' },
    { id: 'deploy_staging', type: 'deterministic', depends: 'merge_gate' },
    { id: 'smoke_test', depends: 'deploy_staging', extra: 'on_failure: { max_iterations: 3 }' },
    { id: 'canary', depends: 'smoke_test' },
    { id: 'promote' },
    { id: 'announce', depends: 'promote' },
    { id: 'changelog', depends: 'announce' },
    { id: 'archive', depends: 'changelog' },
    { id: 'rollback' },
    { id: 'postmortem', depends: 'rollback' },
    { id: 'metrics', depends: 'postmortem' },
  ];
  const line = (spec: Spec, indent: string): string => {
    const type = spec.type ?? 'agentic';
    const body =
      type === 'agentic' ? `agent: ${spec.id.replace(/_/g, '-')}` : type === 'deterministic' ? 'command: node, args: ["-e", "console.log(JSON.stringify({}))"]' : `prompt: "Go on after ${spec.id}?"`;
    return `${indent}- { id: ${spec.id}, type: ${type}, ${body}${spec.depends === undefined ? '' : `, depends: [${spec.depends}]`}${spec.extra === undefined ? '' : `, ${spec.extra}`} }`;
  };
  const source = [
    'version: "1.0"',
    'name: thirty-nodes',
    'description: A generated playbook of 30 nodes, for the layout tests.',
    'nodes:',
    ...top.map((spec) => line(spec, '  ')),
    '  - id: reviews',
    '    type: parallel',
    '    failure: wait_all',
    '    on_failure: { max_iterations: 2 }',
    '    branches:',
    ...branches.flatMap((branch) => [
      `      - id: ${branch.id}`,
      '        nodes:',
      ...branch.nodes.map((spec) => line(spec, '          ')),
      ...(branch.edges === undefined ? [] : ['        edges:', ...branch.edges.map((edge) => `          - ${edge}`)]),
    ]),
    ...after.map((spec) => line(spec, '  ')),
    'edges:',
    '  - { from: triage, to: hotfix_plan, when: { field: severity, equals: high } }',
    '  - { from: triage, to: analyse, when: { field: severity, in: [medium, unknown] } }',
    '  - { from: triage, to: backlog }',
    '  - { from: verify_patch, to: reviews }',
    '  - { from: design, to: reviews }',
    '  - { from: canary, to: promote, when: { field: healthy, equals: true } }',
    '  - { from: canary, to: rollback, when: { field: healthy, equals: false } }',
    '',
  ].join('\n');
  return { source, nodeCount: top.length + 1 + branches.reduce((sum, branch) => sum + branch.nodes.length, 0) + after.length };
}
