import { describe, expect, it } from 'vitest';
import { entryNodeId, entryNodeIds, findNode, outgoingEdges } from '../../../src/playbook/graph.js';
import { hasCode, E_PLAYBOOK_RUNTIME_INVALID } from '../../../src/errors.js';
import type { PlaybookDefinition } from '../../../src/playbook/types.js';
import { accepted, yaml } from './helpers.js';

const { definition } = accepted(yaml`
  version: "1.0"
  name: g
  nodes:
    - { id: start, type: agentic, skill: s }
    - { id: left, type: agentic, skill: s }
    - { id: right, type: agentic, skill: s, depends: [start] }
    - { id: join, type: agentic, skill: s, depends: [left, right] }
  edges:
    - { from: start, to: left, when: { field: go, equals: left } }
    - { from: right, to: join }
`);

describe('outgoingEdges', () => {
  it('lists explicit edges in file order, then depends-derived ones', () => {
    expect(outgoingEdges(definition, 'start')).toEqual([
      { from: 'start', to: 'left', when: { field: 'go', equals: 'left' } },
      { from: 'start', to: 'right' },
    ]);
  });

  it('counts a pair given as an edge and as depends once, keeping the explicit edge', () => {
    expect(outgoingEdges(definition, 'right')).toEqual([{ from: 'right', to: 'join' }]);
    expect(outgoingEdges(definition, 'left')).toEqual([{ from: 'left', to: 'join' }]);
  });

  it('returns [] for a sink or an unknown id', () => {
    expect(outgoingEdges(definition, 'join')).toEqual([]);
    expect(outgoingEdges(definition, 'nope')).toEqual([]);
  });
});

describe('entryNodeId and findNode', () => {
  it('finds the single entry', () => {
    expect(entryNodeId(definition)).toBe('start');
    expect(entryNodeIds(definition)).toEqual(['start']);
  });

  it('throws E_PLAYBOOK_RUNTIME_INVALID for a definition that did not come from parsePlaybook', () => {
    const broken: PlaybookDefinition = { ...definition, edges: [], nodes: definition.nodes.map((n) => ({ ...n, depends: [] })) };
    expect(() => entryNodeId(broken)).toThrow(/exactly one entry node, found 4/);
    try { entryNodeId(broken); } catch (error) { expect(hasCode(error, E_PLAYBOOK_RUNTIME_INVALID)).toBe(true); }
  });

  it('looks nodes up by id', () => {
    expect(findNode(definition, 'left')?.id).toBe('left');
    expect(findNode(definition, 'nope')).toBeUndefined();
  });
});
