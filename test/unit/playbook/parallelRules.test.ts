/** Parse rules of parallel groups (SPEC §9): branch graphs, boundaries, ids, nesting, fields. */
import { describe, expect, it } from 'vitest';
import {
  I_BRANCH_BOUNDARY, I_CYCLE, I_DUPLICATE_ID, I_INVALID_VALUE, I_MULTIPLE_ENTRIES, I_NESTING_DEPTH, I_UNKNOWN_KEY, I_UNKNOWN_REF, I_UNREACHABLE,
} from '../../../src/playbook/issues.js';
import { parsePlaybook } from '../../../src/playbook/parsePlaybook.js';
import { accepted, codesOf, theIssue } from './helpers.js';

/** A playbook with one group of two branches; `a` and `b` are the branches' node lists (flow YAML), `more` extra group keys. */
const group = (a: string, b: string, more = '', after = '  - { id: after, type: agentic, skill: s, depends: [g] }\n') =>
  `version: "1.0"
name: t
nodes:
  - { id: first, type: agentic, skill: s }
  - id: g
    type: parallel
    depends: [first]
${more}    branches:
      - id: A
        nodes: ${a}
      - id: B
        nodes: ${b}
${after}`;

const one = (id: string, extra = '') => `[{ id: ${id}, type: agentic, skill: s${extra} }]`;

describe('parallel groups: parse rules', () => {
  it('accepts a group with defaults applied', () => {
    const { definition } = parsePlaybook(group(one('a1'), one('b1')));
    const node = definition.nodes[1];
    expect(node).toMatchObject({ type: 'parallel', failure: 'fail_fast', branches: [{ id: 'A', edges: [] }, { id: 'B', edges: [] }] });
  });

  it('needs at least two branches', () => {
    const source = group(one('a1'), one('b1')).replace(/ {6}- id: B\n.*\n/, '');
    expect(codesOf(source)).toContain(I_INVALID_VALUE);
  });

  it('checks each branch as a graph: one entry, acyclic, all reachable', () => {
    const twoEntries = `[{ id: a1, type: agentic, skill: s }, { id: a2, type: agentic, skill: s }]`;
    expect(theIssue(group(twoEntries, one('b1')), I_MULTIPLE_ENTRIES).message).toContain('branch "A"');
    const cycle = `[{ id: a1, type: agentic, skill: s, depends: [a2] }, { id: a2, type: agentic, skill: s, depends: [a1] }, { id: a0, type: agentic, skill: s }]`;
    const codes = codesOf(group(cycle, one('b1')));
    expect(codes).toContain(I_CYCLE);
    expect(codes).toContain(I_UNREACHABLE);
  });

  it('never lets depends, edges or inject_into cross a branch boundary', () => {
    expect(theIssue(group(one('a1', ', depends: [first]'), one('b1')), I_BRANCH_BOUNDARY)).toMatchObject({
      path: ['nodes', 1, 'branches', 0, 'nodes', 0, 'depends', 0],
    });
    expect(theIssue(group(one('a1', ', on_failure: { inject_into: b1 }'), one('b1')), I_BRANCH_BOUNDARY).message).toContain('branch "B"');
    const outward = group(one('a1'), one('b1'), '', '  - { id: after, type: agentic, skill: s, depends: [a1] }\n');
    expect(codesOf(outward)).toContain(I_BRANCH_BOUNDARY);
    expect(codesOf(group(one('a1', ', depends: [nowhere]'), one('b1')))).toContain(I_UNKNOWN_REF);
  });

  it('keeps node and branch ids unique across the whole playbook', () => {
    expect(theIssue(group(one('first'), one('b1')), I_DUPLICATE_ID).path).toEqual(['nodes', 1, 'branches', 0, 'nodes', 0, 'id']);
    expect(codesOf(group(one('A'), one('b1')))).toContain(I_DUPLICATE_ID);
  });

  it('bounds nesting at 8 levels', () => {
    const nest = (depth: number): string =>
      depth === 0
        ? one(`leaf`)
        : `[{ id: g${depth}, type: parallel, branches: [{ id: x${depth}, nodes: ${nest(depth - 1)} }, { id: y${depth}, nodes: ${one(`y${depth}n`)} }] }]`;
    accepted(group(nest(7), one('b1')));
    expect(codesOf(group(nest(8), one('b1')))).toContain(I_NESTING_DEPTH);
  });

  it('checks failure, max_concurrency and unknown keys', () => {
    expect(codesOf(group(one('a1'), one('b1'), '    failure: first_wins\n'))).toContain(I_INVALID_VALUE);
    expect(codesOf(group(one('a1'), one('b1'), '    max_concurrency: 0\n'))).toContain(I_INVALID_VALUE);
    accepted(group(one('a1'), one('b1'), '    failure: wait_all\n    max_concurrency: 1\n'));
    expect(codesOf(group(one('a1'), one('b1'), '    branchez: []\n'))).toContain(I_UNKNOWN_KEY);
  });
});
