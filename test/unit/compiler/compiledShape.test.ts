/**
 * The compiled machine has no transition that can never fire (issue 9): a node
 * gets `done`, `no_branch`, `ambiguous_branch` and `routing` only where its edges
 * make them possible, a node with `inject_into` never retries in place, and a
 * parallel group's `running` is an XState parallel state with a region per branch.
 */
import { describe, expect, it } from 'vitest';
import { compilePlaybook } from '../../../src/compiler/compilePlaybook.js';
import { parsePlaybook } from '../../../src/playbook/parsePlaybook.js';

type StateConfig = { type?: string; states?: Record<string, StateConfig>; on?: Record<string, unknown>; always?: unknown[] };

const statesOf = (source: string): Record<string, StateConfig> => {
  const config = compilePlaybook(parsePlaybook(source).definition).config as StateConfig;
  return config.states?.active?.states ?? {};
};
const substates = (state: StateConfig | undefined) => Object.keys(state?.states ?? {}).sort();
const guardTypes = (value: unknown): string[] => JSON.stringify(value).match(/"type":"[^"]+"/g)?.map((m) => m.slice(8, -1)) ?? [];

describe('compiled machine shape', () => {
  const source = `version: "1.0"
name: shape
nodes:
  - { id: a, type: agentic, skill: s }
  - { id: b, type: agentic, skill: s, on_failure: { inject_into: a, max_iterations: 2 } }
  - { id: c, type: agentic, skill: s }
  - { id: d, type: agentic, skill: s }
  - { id: e, type: agentic, skill: s }
edges:
  - { from: a, to: b }
  - { from: b, to: c, when: { field: x, equals: 1 } }
  - { from: b, to: d, when: { field: x, equals: 2 } }
  - { from: c, to: e, when: { field: y, exists: true } }
  - { from: c, to: e }
  - { from: d, to: e }
`;
  const states = statesOf(source);

  it('gives each node only the ends its edges make possible', () => {
    expect(substates(states.a)).toEqual(['exhausted', 'ready', 'running', 'unretryable']); // one plain edge: straight on
    // b escalates: a failure that says "do not retry" still escalates, so b has no unretryable end.
    expect(substates(states.b)).toEqual(['ambiguous_branch', 'escalating', 'exhausted', 'no_branch', 'ready', 'routing', 'running']);
    expect(substates(states.c)).toEqual(['exhausted', 'ready', 'routing', 'running', 'unretryable']); // a default edge: never no_branch
    expect(substates(states.e)).toEqual(['done', 'exhausted', 'ready', 'running', 'unretryable']);
  });

  it('never retries a node with inject_into in place, nor escalates one without', () => {
    const failures = (node: string) => JSON.stringify(states[node]?.states?.running?.on?.NodeFailed);
    expect(failures('b')).not.toContain('"decision":"retry"');
    expect(failures('b')).toContain('"decision":"escalate"');
    expect(failures('a')).not.toContain('"decision":"escalate"');
    expect(failures('a')).toContain('"decision":"retry"');
  });

  it('accepts a failure cause only in the state that names it', () => {
    expect(guardTypes(states.e?.states?.exhausted?.on)).toEqual(['endsWith']);
    expect(JSON.stringify(states.b?.states?.no_branch?.on)).toContain('"cause":"no_branch"');
    expect(JSON.stringify(states.b?.states?.ambiguous_branch?.on)).toContain('"cause":"ambiguous_branch"');
    expect(JSON.stringify(states.e?.states?.running)).not.toContain('RunFailed');
  });

  it('compiles a group to a parallel state with one region per branch', () => {
    const group = statesOf(`version: "1.0"
name: g
nodes:
  - id: g
    type: parallel
    branches:
      - { id: A, nodes: [{ id: a1, type: agentic, skill: s }] }
      - { id: B, nodes: [{ id: b1, type: agentic, skill: s }] }
`).g;
    expect(group?.states?.running?.type).toBe('parallel');
    expect(Object.keys(group?.states?.running?.states ?? {})).toEqual(['A', 'B']);
    // `entering` is transient: a redrive's kept branch goes straight to succeeded, any other to its nodes.
    expect(substates(group?.states?.running?.states?.A)).toEqual(['entering', 'failed', 'nodes', 'stopped', 'succeeded']);
    // A branch's last node ends its region, not the run.
    expect(JSON.stringify(group?.states?.running?.states?.A)).not.toContain('RunCompleted');
  });
});
