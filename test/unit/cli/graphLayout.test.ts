/**
 * The statechart's layout (layoutRunGraph, ELK layered) without a browser:
 * for every starter and a generated 30-node playbook, every node and end state
 * has a box inside the drawing, no two boxes overlap unless a group or lane
 * holds the other, no edge label lies on a box or another label, no edge runs
 * through a box; and the end states buildRunGraph adds are the machine's.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compilePlaybook, finalStates, parsePlaybook } from '../../../src/index.js';
import { layoutRunGraph } from '../../../src/cli/ui/graphLayout.js';
import type { RunLayout } from '../../../src/cli/ui/graphLayout.js';
import { buildRunGraph, COMPLETED_NODE, END_NODES } from '../../../src/cli/ui/runView.js';
import type { RunGraph } from '../../../src/cli/ui/runView.js';
import { chartProblems, inside, thirtyNodePlaybook } from '../../helpers/chartGeometry.js';

const starterDir = join(import.meta.dirname, '..', '..', '..', 'starter');
const sources: [string, string][] = [
  ...readdirSync(starterDir)
    .filter((file) => file.endsWith('.cantbook'))
    .sort()
    .map((file): [string, string] => [file, readFileSync(join(starterDir, file), 'utf8')]),
  ['thirty nodes (generated)', thirtyNodePlaybook().source],
];
const graphOf = (source: string): RunGraph => buildRunGraph(parsePlaybook(source).definition);

function problemsOf(graph: RunGraph, layout: RunLayout): string[] {
  return chartProblems(graph, {
    nodes: new Map(layout.nodes.map((box) => [box.id, box])),
    lanes: new Map(layout.lanes.map((box) => [box.id, box])),
    labels: layout.edges.flatMap((edge) => (edge.label === undefined ? [] : [{ edge: `${edge.from} → ${edge.to}`, box: edge.label }])),
    frame: { x: 0, y: 0, width: layout.width, height: layout.height },
    routes: layout.edges,
  });
}

describe('layoutRunGraph', () => {
  it.each(sources)('%s: every box drawn and apart, labels on no box, routes around boxes', async (_name, source) => {
    const graph = graphOf(source);
    const layout = await layoutRunGraph(graph);
    expect(problemsOf(graph, layout)).toEqual([]);
    expect(layout.nodes.map((box) => box.id)).toEqual([...graph.nodes, ...graph.ends].map((node) => node.id));
    expect(layout.lanes.map((lane) => lane.id)).toEqual(graph.branches.map((branch) => branch.id));
    // Every edge has a route from its source's border to its target's, and the labels it was given.
    const boxOf = new Map(layout.nodes.map((box) => [box.id, box]));
    const edges = [...graph.edges, ...graph.endEdges];
    expect(layout.edges.map((edge) => [edge.from, edge.to, edge.kind, edge.label?.text])).toEqual(edges.map((edge) => [edge.from, edge.to, edge.kind, edge.label]));
    for (const edge of layout.edges) {
      expect(edge.points.length, `${edge.from} → ${edge.to}`).toBeGreaterThanOrEqual(2);
      const first = edge.points[0] as { x: number; y: number };
      const last = edge.points.at(-1) as { x: number; y: number };
      expect(inside({ ...first, width: 0, height: 0 }, boxOf.get(edge.from) as RunLayout['nodes'][number], 1.5), `${edge.from} → ${edge.to} starts at its source`).toBe(true);
      expect(inside({ ...last, width: 0, height: 0 }, boxOf.get(edge.to) as RunLayout['nodes'][number], 1.5), `${edge.from} → ${edge.to} ends at its target`).toBe(true);
    }
  });

  it('keeps the main flow top-down: each `next` edge ends below where it starts, end states at the bottom', async () => {
    for (const [name, source] of sources) {
      const graph = graphOf(source);
      const layout = await layoutRunGraph(graph);
      const boxOf = new Map(layout.nodes.map((box) => [box.id, box]));
      for (const edge of graph.edges.filter((e) => e.kind === 'next')) {
        const from = boxOf.get(edge.from) as RunLayout['nodes'][number];
        const to = boxOf.get(edge.to) as RunLayout['nodes'][number];
        expect(to.y, `${name}: ${edge.from} → ${edge.to}`).toBeGreaterThan(from.y);
      }
      const lowest = Math.max(...layout.nodes.filter((box) => !box.id.startsWith('@')).map((box) => box.y + box.height));
      for (const end of layout.nodes.filter((box) => box.id.startsWith('@'))) expect(end.y, `${name}: ${end.id}`).toBeGreaterThanOrEqual(lowest);
    }
  });

  it('is the same for the same graph', async () => {
    const source = thirtyNodePlaybook().source;
    expect(await layoutRunGraph(graphOf(source))).toEqual(await layoutRunGraph(graphOf(source)));
  });
});

describe("buildRunGraph's end states", () => {
  it("draws one node per final state of the machine the playbook can reach, with ids that are no node's", () => {
    for (const [name, source] of sources) {
      const graph = graphOf(source);
      const machineFinals = Object.keys((compilePlaybook(parsePlaybook(source).definition).config as { states: Record<string, unknown> }).states).filter((state) => (finalStates as readonly string[]).includes(state));
      expect(machineFinals, name).toEqual([...finalStates]);
      const ends = [COMPLETED_NODE, ...graph.ends.map((node) => node.id)];
      // Every starter has a work node, so each can exhaust a cap: all four end states are drawn.
      expect(ends.sort(), name).toEqual(finalStates.map((state) => `@${state}`).sort());
      const ids = new Set(graph.nodes.filter((node) => node.type !== 'final').map((node) => node.id));
      for (const end of ends) expect(ids.has(end)).toBe(false);
      for (const edge of graph.endEdges) {
        expect(ids.has(edge.from), `${name}: ${edge.from}`).toBe(true);
        expect(graph.nodes.find((node) => node.id === edge.from)?.branch, `${name}: ${edge.from} is top level`).toBeUndefined();
      }
    }
  });

  it('leads each node where the compiled machine can end the run from it', () => {
    const graph = graphOf(`
version: "1.0"
name: ends
nodes:
  - { id: fetch, type: agentic, agent: a }
  - { id: gate, type: approval, prompt: "Go?", depends: [fetch], timeout: 1h }
  - { id: pick, type: agentic, agent: a, depends: [gate] }
  - { id: once, type: agentic, agent: a, on_failure: { max_iterations: 1 } }
  - { id: fix, type: agentic, agent: a, on_failure: { max_iterations: 2, inject_into: fetch } }
  - id: group
    type: parallel
    depends: [fix]
    branches:
      - { id: left, nodes: [{ id: l1, type: agentic, agent: a }] }
      - { id: right, nodes: [{ id: r1, type: approval, prompt: "Go?" }] }
edges:
  - { from: pick, to: once, when: { field: go, equals: true } }
  - { from: pick, to: fix, when: { field: go, equals: false } }
`);
    expect(graph.endEdges.map((edge) => [edge.from, edge.to, edge.label ?? null])).toEqual([
      ['fetch', END_NODES.failed, null],
      ['fetch', END_NODES.exceeded_iteration_cap, null],
      ['gate', END_NODES.failed, 'rejected or expired'],
      ['pick', END_NODES.failed, 'no branch matches · two branches match'],
      ['pick', END_NODES.exceeded_iteration_cap, null],
      // A cap of 1 exhausts at the first failure, retryable or not; an escalating node never gives up.
      ['once', END_NODES.exceeded_iteration_cap, null],
      ['fix', END_NODES.exceeded_iteration_cap, null],
      ['group', END_NODES.exceeded_iteration_cap, null],
    ]);
    expect(graph.endEdges.find((edge) => edge.from === 'fetch' && edge.to === END_NODES.failed)?.title).toBe('an attempt fails with retryable: false');
  });

  it('sends an exhausted cap to a human (and a rejection to failed) when iteration_cap_exceeded escalates', () => {
    const graph = graphOf(`
version: "1.0"
name: capped
error_handlers:
  - { on: iteration_cap_exceeded, action: hitl_escalate }
nodes:
  - { id: work, type: agentic, agent: a, on_failure: { max_iterations: 1 } }
`);
    expect(graph.ends.map((node) => node.id)).toEqual([END_NODES.failed, END_NODES.cancelled]);
    expect(graph.endEdges).toEqual([{ from: 'work', to: END_NODES.failed, kind: 'end', label: 'its cap is reached and a human rejects going on', title: 'its cap is reached and a human rejects going on' }]);
  });
});
