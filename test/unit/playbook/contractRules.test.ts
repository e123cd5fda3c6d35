/** Contract and handler rules (SPEC §13): no contract on a gate, exitCode only on commands, no hint past the cap. */
import { describe, expect, it } from 'vitest';
import {
  I_CONTRACT_NOT_ALLOWED, I_EXIT_CODE_NOT_ALLOWED, I_HANDLER_NOT_ALLOWED, I_UNKNOWN_REF,
} from '../../../src/playbook/issues.js';
import { parsePlaybook } from '../../../src/playbook/parsePlaybook.js';
import { accepted, codesOf, issuesOf, theIssue, yaml } from './helpers.js';

/** build (line 4) -> gate (line 5) -> ship (line 6); `gate` and `ship` take extra flow keys, `tail` goes on the edge gate -> ship (line 9). */
const gated = (gate = '', ship = '', tail = '') => yaml`
  version: "1.0"
  name: c
  nodes:
    - { id: build, type: deterministic, command: make }
    - { id: gate, type: approval, prompt: "Ship it?"${gate} }
    - { id: ship, type: agentic, skill: s${ship} }
  edges:
    - { from: build, to: gate }
    - { from: gate, to: ship${tail} }
`;

/** One agentic node; `handlers` are the flow maps under `error_handlers:` (from line 6). */
const handled = (...handlers: string[]) => yaml`
  version: "1.0"
  name: h
  nodes:
    - { id: a, type: agentic, skill: s }
  error_handlers:
${handlers.map((handler) => `    - ${handler}`).join('\n')}
`;

describe('contracts on approval gates', () => {
  it('refuses requires and ensures on an approval node, at the key', () => {
    const requires = theIssue(gated(', requires: { fields: [plan] }'), I_CONTRACT_NOT_ALLOWED);
    expect(requires).toMatchObject({ path: ['nodes', 1, 'requires'], line: 5, column: 53 });
    expect(requires.message).toContain('approval node "gate" is not dispatched and produces no output');
    expect(requires.message).toContain('before the gate');
    const ensures = theIssue(gated(', ensures: { outputFiles: [plan] }'), I_CONTRACT_NOT_ALLOWED);
    expect(ensures).toMatchObject({ path: ['nodes', 1, 'ensures'], line: 5, column: 53 });
    const both = issuesOf(gated(', requires: { fields: [a] }, ensures: { exitCode: 0 }'));
    // exitCode on a gate is part of the refused ensures: one issue, not two.
    expect(both.map((issue) => [issue.code, issue.path])).toEqual([
      [I_CONTRACT_NOT_ALLOWED, ['nodes', 1, 'requires']],
      [I_CONTRACT_NOT_ALLOWED, ['nodes', 1, 'ensures']],
    ]);
  });

  it('accepts the contract on the nodes around the gate', () => {
    const { definition } = accepted(gated('', ', requires: { fields: [plan] }').replace('command: make', 'command: make, ensures: { outputFiles: [plan] }'));
    expect(definition.nodes[2]?.requires).toEqual({ fields: ['plan'] });
    expect(definition.nodes[0]?.ensures).toEqual({ outputFiles: ['plan'] });
  });

  it('refuses a contract on an edge leaving a gate, and accepts one on the edge into it', () => {
    const issue = theIssue(gated('', '', ', contract: { requires: [plan] }'), I_CONTRACT_NOT_ALLOWED);
    expect(issue).toMatchObject({ path: ['edges', 1, 'contract'], line: 9, column: 29 });
    expect(issue.message).toContain('changes nothing but __lastApproval');
    expect(issue.message).toContain("the next node's requires");
    const into = gated().replace('{ from: build, to: gate }', '{ from: build, to: gate, contract: { requires: [plan], ensures: [plan] } }');
    expect(accepted(into).definition.edges[0]?.contract).toEqual({ requires: { fields: ['plan'] }, ensures: { outputFiles: ['plan'] } });
  });

  it('refuses even an empty contract on an edge leaving a gate, but leaves depends alone', () => {
    expect(codesOf(gated('', '', ', contract: {}'))).toEqual([I_CONTRACT_NOT_ALLOWED]);
    accepted(gated('', ', depends: [gate]').replace('    - { from: gate, to: ship }\n', ''));
  });
});

describe('ensures.exitCode', () => {
  it('accepts exitCode on a deterministic node', () => {
    const source = gated().replace('command: make', 'command: make, ensures: { exitCode: 0 }');
    expect(accepted(source).definition.nodes[0]?.ensures).toEqual({ exitCode: 0 });
  });

  it('refuses exitCode on an agentic node, at the key', () => {
    const issue = theIssue(gated('', ', ensures: { outputFiles: [out], exitCode: 0 }'), I_EXIT_CODE_NOT_ALLOWED);
    expect(issue).toMatchObject({ path: ['nodes', 2, 'ensures', 'exitCode'], line: 6, column: 73 });
    expect(issue.message).toContain('agentic node "ship" runs no command');
  });

  it('refuses exitCode on a parallel group', () => {
    const source = yaml`
      version: "1.0"
      name: p
      nodes:
        - id: g
          type: parallel
          ensures: { exitCode: 0 }
          branches:
            - { id: A, nodes: [{ id: a1, type: agentic, skill: s }] }
            - { id: B, nodes: [{ id: b1, type: agentic, skill: s }] }
    `;
    expect(theIssue(source, I_EXIT_CODE_NOT_ALLOWED)).toMatchObject({ path: ['nodes', 0, 'ensures', 'exitCode'], line: 6, column: 16 });
  });
});

describe('error handlers', () => {
  it('refuses inject_hint on iteration_cap_exceeded, at the action', () => {
    const issue = theIssue(handled('{ on: contract_violation, action: abort }', '{ on: iteration_cap_exceeded, action: inject_hint }'), I_HANDLER_NOT_ALLOWED);
    expect(issue).toMatchObject({ path: ['error_handlers', 1, 'action'], line: 7, column: 43 });
    expect(issue.message).toContain('no attempt left to read a hint');
    expect(issue.message).toContain('hitl_escalate');
  });

  it('accepts inject_hint on the other triggers and the other actions on iteration_cap_exceeded', () => {
    const { definition } = accepted(handled(
      '{ on: contract_violation, action: inject_hint }',
      '{ on: agentic_timeout, action: inject_hint, message: "try smaller steps" }',
      '{ on: iteration_cap_exceeded, action: hitl_escalate }',
      '{ on: iteration_cap_exceeded, action: abort }',
    ));
    expect(definition.error_handlers.map((handler) => `${handler.on}:${handler.action}`)).toEqual([
      'contract_violation:inject_hint', 'agentic_timeout:inject_hint', 'iteration_cap_exceeded:hitl_escalate', 'iteration_cap_exceeded:abort',
    ]);
  });
});

describe('inside parallel branches', () => {
  /** A group whose branch A holds a gate (`gate` extra keys, `edge` extra keys on its edge to a2); branch B holds `b`. */
  const branched = (gate = '', edge = '', b = '{ id: b1, type: agentic, skill: s }') => yaml`
    version: "1.0"
    name: b
    nodes:
      - id: g
        type: parallel
        branches:
          - id: A
            nodes:
              - { id: a1, type: approval, prompt: "ok?"${gate} }
              - { id: a2, type: agentic, skill: s, requires: { fields: [x] } }
            edges:
              - { from: a1, to: a2${edge} }
          - id: B
            nodes: [${b}]
  `;

  it('accepts requires on an agentic node of a branch', () => {
    accepted(branched());
  });

  it('applies every rule to nodes and edges of a branch', () => {
    expect(theIssue(branched(', requires: { fields: [x] }'), I_CONTRACT_NOT_ALLOWED)).toMatchObject({
      path: ['nodes', 0, 'branches', 0, 'nodes', 0, 'requires'], line: 9, column: 54,
    });
    expect(theIssue(branched('', ', contract: { requires: [x] }'), I_CONTRACT_NOT_ALLOWED)).toMatchObject({
      path: ['nodes', 0, 'branches', 0, 'edges', 0, 'contract'], line: 12, column: 33,
    });
    expect(theIssue(branched('', '', '{ id: b1, type: agentic, skill: s, ensures: { exitCode: 0 } }'), I_EXIT_CODE_NOT_ALLOWED)).toMatchObject({
      path: ['nodes', 0, 'branches', 1, 'nodes', 0, 'ensures', 'exitCode'], line: 14, column: 63,
    });
  });
});

describe('reporting', () => {
  it('collects these issues with every other issue, sorted by position', () => {
    const source = gated(', ensures: { outputFiles: [x] }', ', ensures: { exitCode: 1 }, depends: [nowhere]', ', contract: { requires: [x] }')
      + 'error_handlers:\n  - { on: iteration_cap_exceeded, action: inject_hint }\n';
    expect(codesOf(source)).toEqual([I_CONTRACT_NOT_ALLOWED, I_EXIT_CODE_NOT_ALLOWED, I_UNKNOWN_REF, I_CONTRACT_NOT_ALLOWED, I_HANDLER_NOT_ALLOWED]);
  });

  it('still reads a text a run was pinned to before the rules existed, keeping the fields', () => {
    const source = gated(', requires: { fields: [x] }', ', ensures: { exitCode: 1 }', ', contract: { requires: [x] }')
      + 'error_handlers:\n  - { on: iteration_cap_exceeded, action: inject_hint }\n';
    expect(() => parsePlaybook(source)).toThrow();
    const { definition } = parsePlaybook(source, { pinned: true });
    expect(definition.nodes[1]?.requires).toEqual({ fields: ['x'] });
    expect(definition.nodes[2]?.ensures).toEqual({ exitCode: 1 });
    expect(definition.edges[1]?.contract).toEqual({ requires: { fields: ['x'] } });
    expect(definition.error_handlers).toEqual([{ on: 'iteration_cap_exceeded', action: 'inject_hint' }]);
  });
});
