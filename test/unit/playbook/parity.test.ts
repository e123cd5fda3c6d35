/** Parser parity with @cleocode/playbooks (SPEC §2 v2 notes): list contracts, ensures.schema names, stray empty keys, suggestions, plain YAML errors. */
import { describe, expect, it } from 'vitest';
import {
  I_INVALID_TYPE, I_INVALID_VALUE, I_UNKNOWN_INPUT, I_UNKNOWN_KEY, I_UNKNOWN_NODE_TYPE, I_UNKNOWN_REF, I_YAML_SYNTAX,
} from '../../../src/playbook/issues.js';
import { accepted, issuesOf, theIssue, yaml } from './helpers.js';

const withEdge = (contract: string) => yaml`
  version: "1.0"
  name: c
  nodes:
    - { id: research, type: agentic, skill: s }
    - { id: plan, type: agentic, skill: s }
  edges:
    - from: research
      to: plan
      contract: ${contract}
`;

describe('edge contracts', () => {
  it('accepts lists of context keys (the original format), read as the map shape', () => {
    const { definition } = accepted(withEdge('{ requires: [topic], ensures: [plan, notes] }'));
    expect(definition.edges[0]?.contract).toEqual({ requires: { fields: ['topic'] }, ensures: { outputFiles: ['plan', 'notes'] } });
  });

  it('still accepts the node-style map shape, and a mix of both', () => {
    expect(accepted(withEdge('{ requires: { from: research, fields: [topic] }, ensures: { outputFiles: [plan], exitCode: 0 } }')).definition.edges[0]?.contract)
      .toEqual({ requires: { from: 'research', fields: ['topic'] }, ensures: { outputFiles: ['plan'], exitCode: 0 } });
    expect(accepted(withEdge('{ requires: [topic], ensures: { outputFiles: [plan] } }')).definition.edges[0]?.contract)
      .toEqual({ requires: { fields: ['topic'] }, ensures: { outputFiles: ['plan'] } });
  });

  it('reports a bad key inside a list at its own position', () => {
    expect(theIssue(withEdge('{ requires: [topic, 3] }'), I_INVALID_TYPE)).toMatchObject({
      path: ['edges', 0, 'contract', 'requires', 1], line: 9, column: 35, message: 'edges[0].contract.requires[1]: expected a string, found the number 3',
    });
    expect(theIssue(withEdge('{ ensures: [""] }'), I_INVALID_VALUE)).toMatchObject({ path: ['edges', 0, 'contract', 'ensures', 0] });
  });

  it('reports a bad field inside the map shape at its own position', () => {
    expect(theIssue(withEdge('{ requires: { fields: [1] } }'), I_INVALID_TYPE).path).toEqual(['edges', 0, 'contract', 'requires', 'fields', 0]);
    expect(theIssue(withEdge('{ requires: { field: [a] } }'), I_UNKNOWN_KEY).message).toContain('did you mean `fields`?');
  });

  it('refuses a side that is neither a list nor a map, saying what it accepts', () => {
    expect(theIssue(withEdge('{ requires: topic }'), I_INVALID_TYPE)).toMatchObject({
      path: ['edges', 0, 'contract', 'requires'],
      message: 'edges[0].contract.requires: expected a list of context keys (e.g. [topic]) or a map {from?, fields?}, found "topic"',
    });
  });
});

describe('ensures.schema', () => {
  const node = (ensures: string) => yaml`
    version: "1.0"
    name: s
    nodes:
      - { id: decomposition, type: agentic, skill: s, ensures: ${ensures} }
  `;

  it('accepts a schema name, and keeps the v1 map form', () => {
    expect(accepted(node('{ schema: task_tree }')).definition.nodes[0]?.ensures).toEqual({ schema: 'task_tree' });
    expect(accepted(node('{ schema: { type: object } }')).definition.nodes[0]?.ensures).toEqual({ schema: { type: 'object' } });
  });

  it('refuses an empty name or a value of another kind', () => {
    expect(theIssue(node('{ schema: "" }'), I_INVALID_VALUE).path).toEqual(['nodes', 0, 'ensures', 'schema']);
    expect(theIssue(node('{ schema: 3 }'), I_INVALID_TYPE).message).toBe('nodes[0].ensures.schema: expected a schema name (a string such as task_tree), or a map, found the number 3');
  });
});

describe('stray empty-key lines', () => {
  const base = yaml`
    version: "1.0"
    name: t
    nodes:
      - id: a
        type: deterministic
        command: ls
        env:
          A: "1"
  `;

  it.each([
    ['at the top level', `${base}: broken\n`, 9, 1],
    ['badly indented inside a node (read as a top-level key)', `${base}  : broken\n`, 9, 3],
    ['inside a node map', `${base}    : broken\n`, 9, 5],
    ['inside a free-form map (env)', `${base}      : broken\n`, 9, 7],
    ['inside a flow map', base.replace('env:\n      A: "1"', 'env: { A: "1", : x }'), 7, 20],
  ])('is a YAML syntax error %s, with line and column', (_, source, line, column) => {
    const issues = issuesOf(source);
    expect(issues).toEqual([{ code: I_YAML_SYNTAX, path: [], line, column, message: expect.stringContaining('a line starts with ":" and no key') }]);
  });

  it('leaves a deliberately quoted empty key alone (the schema judges it)', () => {
    expect(accepted(base.replace('A: "1"', '"": "1"')).definition.nodes[0]).toMatchObject({ env: { '': '1' } });
  });
});

describe('YAML syntax errors in plain words, once per location', () => {
  it('reports one issue for a mistake the library gives two codes', () => {
    const issues = issuesOf('version: "1.0"\nname: t\nnodes:\n  - id: a\n    type: agentic\n    skill: s\n    description: x\n     role: lead\n');
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ code: I_YAML_SYNTAX, line: 7, column: 18 });
  });

  it.each([
    ['an unclosed quote', 'version: "1.0"\nname: "t\nnodes: []\n', 'a double-quoted string is not closed'],
    ['an unclosed list', 'version: "1.0"\nname: t\nnodes: [a, b\nedges: []\n', 'a "[" list is not closed'],
    ['a tab', 'version: "1.0"\nnodes:\n\t- id: a\n', 'a tab indents this line'],
    ['a colon in a plain value', 'version: "1.0"\nname: Ship it: now\n', 'it holds ": "'],
    ['a second document', 'a: 1\n---\nb: 2\n', 'a second YAML document'],
    ['a misaligned key', 'nodes:\n  - id: a\n  type: b\n', 'not aligned'],
  ])('explains %s without parser codes', (_, source, words) => {
    const issues = issuesOf(source);
    for (const issue of issues) {
      expect(issue.code).toBe(I_YAML_SYNTAX);
      expect(issue.message).not.toMatch(/\b[A-Z]+_[A-Z_]+\b/);
      expect(issue.message).toMatch(/^YAML syntax error: /);
    }
    expect(issues.map((i) => i.message).join('\n')).toContain(words);
    expect(new Set(issues.map((i) => `${i.line}:${i.column}`)).size).toBe(issues.length);
  });
});

describe('"did you mean" suggestions', () => {
  const chain = yaml`
    version: "1.0"
    name: d
    inputs:
      - name: epicId
    nodes:
      - { id: implement, type: agentic, skill: s, inputs: { e: "{{inputs.epicID}}" } }
      - { id: validate, type: agentic, skill: s, depends: [implemnt], on_failure: { inject_into: implment } }
      - { id: test, type: agentic, skill: s }
    edges:
      - { from: validat, to: test }
  `;

  it('suggests the closest id for unknown ids in edges, depends and inject_into', () => {
    const refs = issuesOf(chain).filter((i) => i.code === I_UNKNOWN_REF);
    expect(refs.map((i) => [i.path.join('.'), i.message.match(/did you mean `([^`]+)`/)?.[1]])).toEqual([
      ['nodes.1.depends.0', 'implement'], ['nodes.1.on_failure.inject_into', 'implement'], ['edges.0.from', 'validate'],
    ]);
    expect(refs[0]?.message).toBe('nodes[1].depends[0]: depends on "implemnt" is not a node id; did you mean `implement`?; known ids: "implement", "validate", "test"');
  });

  it('suggests the closest declared input for an unknown {{inputs.x}}', () => {
    expect(theIssue(chain, I_UNKNOWN_INPUT).message).toContain('did you mean `epicId`?');
  });

  it('suggests the closest key for unknown keys at every level', () => {
    const source = yaml`
      version: "1.0"
      nmae: d
      nodes:
        - { id: a, type: agentic, skil: s, on_failure: { max_iteration: 2 } }
    `;
    const unknown = issuesOf(source).filter((i) => i.code === I_UNKNOWN_KEY);
    expect(unknown.map((i) => i.message.match(/did you mean `([^`]+)`/)?.[1])).toEqual(['name', 'skill', 'max_iterations']);
    expect(unknown[1]?.message).toMatch(/^unknown key "skil" in nodes\[0\]; did you mean `skill`\?; expected one of: /);
  });

  it('suggests the closest node type', () => {
    const issue = theIssue('version: "1.0"\nname: d\nnodes:\n  - { id: a, type: agentc, skill: s }\n', I_UNKNOWN_NODE_TYPE);
    expect(issue.message).toBe('nodes[0].type: unknown node type "agentc"; did you mean `agentic`?; expected one of "agentic", "deterministic", "approval", "parallel", "playbook", "map"');
  });

  it('suggests nothing when no candidate is close', () => {
    const source = 'version: "1.0"\nname: d\nnodes:\n  - { id: a, type: agentic, skill: s, zzzz: 1 }\n  - { id: b, type: agentic, skill: s, depends: [qqqqq] }\n';
    for (const issue of issuesOf(source)) expect(issue.message).not.toContain('did you mean');
  });
});
