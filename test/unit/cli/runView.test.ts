/** The viewer's statechart of a playbook (buildRunGraph): edges as the runtime reads them, failure paths with the runtime's caps. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePlaybook } from '../../../src/index.js';
import { buildRunGraph, COMPLETED_NODE } from '../../../src/cli/ui/runView.js';

const definitionOf = (source: string) => parsePlaybook(source).definition;

describe('buildRunGraph', () => {
  it('draws escalations to inject_into with their cap, and none for cap 0', () => {
    const graph = buildRunGraph(
      definitionOf(`
version: "1.0"
name: ivtr
nodes:
  - { id: implement, type: agentic, skill: impl, on_failure: { max_iterations: 1 } }
  - { id: validate, type: agentic, skill: val, depends: [implement], on_failure: { max_iterations: 2, inject_into: implement } }
  - { id: test, type: agentic, skill: tst, depends: [validate], on_failure: { max_iterations: 0, inject_into: implement } }
`),
    );
    expect(graph.entry).toBe('implement');
    expect(graph.edges).toEqual([
      { from: 'implement', to: 'validate', kind: 'next' },
      { from: 'validate', to: 'test', kind: 'next' },
      { from: 'validate', to: 'implement', kind: 'escalate', label: "on failure · 2 escalation(s) to 'implement'" },
      { from: 'test', to: COMPLETED_NODE, kind: 'next' },
    ]);
  });

  it('draws retry loops from the run\'s maxIterationsDefault when a node sets no cap', () => {
    const source = `
version: "1.0"
name: retry
nodes:
  - { id: fetch, type: deterministic, command: curl }
  - { id: parse, type: agentic, skill: p, depends: [fetch], on_failure: { max_iterations: 4 } }
`;
    const retries = (maxIterationsDefault?: number) => buildRunGraph(definitionOf(source), maxIterationsDefault).edges.filter((edge) => edge.kind === 'retry');
    expect(retries()).toEqual([
      { from: 'fetch', to: 'fetch', kind: 'retry', label: 'retry · 3 attempt(s)' },
      { from: 'parse', to: 'parse', kind: 'retry', label: 'retry · 4 attempt(s)' },
    ]);
    expect(retries(1)).toEqual([{ from: 'parse', to: 'parse', kind: 'retry', label: 'retry · 4 attempt(s)' }]);
  });

  it('labels guarded edges with their condition, the default `otherwise`, and a gate\'s way out `approved`', () => {
    const graph = buildRunGraph(
      definitionOf(`
version: "1.0"
name: branch
nodes:
  - { id: check, type: deterministic, command: make, on_failure: { max_iterations: 1 } }
  - { id: review, type: approval, prompt: ok? }
  - { id: full, type: deterministic, command: make, on_failure: { max_iterations: 1 } }
  - { id: quick, type: deterministic, command: make, on_failure: { max_iterations: 1 } }
edges:
  - { from: check, to: review }
  - { from: review, to: full, when: { field: mode, equals: full } }
  - { from: review, to: quick }
`),
    );
    expect(graph.edges).toEqual([
      { from: 'check', to: 'review', kind: 'next' },
      { from: 'review', to: 'full', kind: 'next', label: 'approved, when mode == "full"' },
      { from: 'review', to: 'quick', kind: 'next', label: 'approved, otherwise' },
      { from: 'full', to: COMPLETED_NODE, kind: 'next' },
      { from: 'quick', to: COMPLETED_NODE, kind: 'next' },
    ]);
    expect(graph.nodes.map((node) => [node.id, node.type, node.detail])).toEqual([
      ['check', 'deterministic', '$ make'],
      ['review', 'approval', 'approval'],
      ['full', 'deterministic', '$ make'],
      ['quick', 'deterministic', '$ make'],
      [COMPLETED_NODE, 'final', 'completed'],
    ]);
  });

  describe('the review starter (a parallel group)', () => {
    const review = buildRunGraph(definitionOf(readFileSync(join(import.meta.dirname, '..', '..', '..', 'starter', 'review.cantbook'), 'utf8')));

    it('has one node per node of every graph, each branch node naming its branch, and one lane per branch', () => {
      expect(review.entry).toBe('build');
      expect(review.nodes.map((node) => [node.id, node.type, node.branch ?? null])).toEqual([
        ['build', 'agentic', null],
        ['reviews', 'parallel', null],
        ['scan', 'agentic', 'security'],
        ['sec_gate', 'approval', 'security'],
        ['bench', 'agentic', 'perf'],
        ['docs_review', 'agentic', 'docs'],
        ['merge', 'agentic', null],
        [COMPLETED_NODE, 'final', null],
      ]);
      expect(review.nodes.find((node) => node.id === 'reviews')?.detail).toBe('parallel · security | perf | docs · fail_fast');
      expect(review.branches).toEqual([
        { id: 'security', groupId: 'reviews', entry: 'scan', description: 'An automated scan, then a human accepts its findings.', nodes: ['scan', 'sec_gate'] },
        { id: 'perf', groupId: 'reviews', entry: 'bench', description: 'Benchmarks against the main branch.', nodes: ['bench'] },
        { id: 'docs', groupId: 'reviews', entry: 'docs_review', description: 'Checks that user-facing changes are documented.', nodes: ['docs_review'] },
      ]);
    });

    it('keeps edges inside their branch, ends branches without an edge out, and joins from the group to its successor', () => {
      expect(review.edges).toEqual([
        { from: 'build', to: 'reviews', kind: 'next' },
        { from: 'build', to: 'build', kind: 'retry', label: 'retry · 2 attempt(s)' },
        { from: 'reviews', to: 'merge', kind: 'next' },
        { from: 'scan', to: 'sec_gate', kind: 'next' },
        { from: 'scan', to: 'scan', kind: 'retry', label: 'retry · 2 attempt(s)' },
        { from: 'bench', to: 'bench', kind: 'retry', label: 'retry · 2 attempt(s)' },
        { from: 'merge', to: COMPLETED_NODE, kind: 'next' },
      ]);
      // No edge crosses a branch boundary: both ends are in the same graph.
      const graphOf = new Map(review.nodes.map((node) => [node.id, node.branch ?? null]));
      for (const edge of review.edges) expect([edge.from, graphOf.get(edge.from)]).toEqual([edge.from, graphOf.get(edge.to)]);
    });

    it("draws a group's own retry loop from its on_failure, as for any node", () => {
      const source = readFileSync(join(import.meta.dirname, '..', '..', '..', 'starter', 'review.cantbook'), 'utf8').replace('on_failure: { max_iterations: 1 }\n    branches:', 'on_failure: { max_iterations: 2 }\n    branches:');
      const edges = buildRunGraph(definitionOf(source)).edges.filter((edge) => edge.from === 'reviews');
      expect(edges).toEqual([
        { from: 'reviews', to: 'merge', kind: 'next' },
        { from: 'reviews', to: 'reviews', kind: 'retry', label: 'retry · 2 attempt(s)' },
      ]);
    });
  });
});
