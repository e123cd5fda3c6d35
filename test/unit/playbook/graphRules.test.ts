/** Whole-playbook rules: ids, references, templates, entry, cycles, reachability, branching, when, caps. */
import { describe, expect, it } from 'vitest';
import {
  I_CYCLE, I_DUPLICATE_ID, I_DUPLICATE_INPUT, I_INJECT_SELF, I_MAX_ITERATIONS_RANGE, I_MULTIPLE_DEFAULT_EDGES,
  I_MULTIPLE_ENTRIES, I_NO_ENTRY, I_UNKNOWN_INPUT, I_UNKNOWN_KEY, I_UNKNOWN_REF, I_UNREACHABLE, I_WHEN_INVALID,
  I_INVALID_TYPE, I_MISSING_FIELD, I_TEMPLATE_NOT_ALLOWED, I_UNKNOWN_NODE_TYPE, I_VERSION,
} from '../../../src/playbook/issues.js';
import { accepted, codesOf, issuesOf, theIssue, yaml } from './helpers.js';

/** A chain of three agentic nodes a, b, c (lines 4, 7, 10); `extra` goes under c; `edges:` follows on line 13 (+1 per extra line). */
const chain = (edges: string, extra = ''): string => [
  'version: "1.0"', 'name: t', 'nodes:',
  '  - id: a', '    type: agentic', '    skill: s',
  '  - id: b', '    type: agentic', '    skill: s',
  '  - id: c', '    type: agentic', `    skill: s${extra}`,
  'edges:', '',
].join('\n') + edges;

const linear = '  - { from: a, to: b }\n  - { from: b, to: c }\n';

describe('unique ids and input names', () => {
  it('accepts distinct ids', () => {
    accepted(chain(linear));
  });

  it('reports a duplicate node id at the second one, naming the first', () => {
    const source = chain(linear).replace('- id: c', '- id: a');
    const issue = theIssue(source, I_DUPLICATE_ID);
    expect(issue).toMatchObject({ path: ['nodes', 2, 'id'], line: 10, column: 9 });
    expect(issue.message).toContain('"a"');
    expect(issue.message).toContain('nodes[0]');
  });

  it('reports a duplicate input name', () => {
    const inputs = 'inputs:\n  - name: x\n  - name: y\n  - name: x\n';
    accepted(chain(linear) + inputs.replace('name: x\n', 'name: z\n'));
    expect(theIssue(chain(linear) + inputs, I_DUPLICATE_INPUT)).toMatchObject({ path: ['inputs', 2, 'name'], line: 19, column: 11 });
  });
});

describe('references', () => {
  it('reports unknown ids in edge ends, listing the known ids', () => {
    const issues = issuesOf(chain('  - { from: a, to: b }\n  - { from: bb, to: c }\n  - { from: b, to: cc }\n')).filter((i) => i.code === I_UNKNOWN_REF);
    expect(issues.map((i) => [i.path, i.line, i.column])).toEqual([
      [['edges', 1, 'from'], 15, 13],
      [['edges', 2, 'to'], 16, 20],
    ]);
    expect(issues[0]!.message).toContain('"bb"');
    expect(issues[0]!.message).toContain('"a", "b", "c"');
  });

  it('reports an unknown id in depends', () => {
    accepted(chain('  - { from: a, to: b }\n', '\n    depends: [b]'));
    expect(theIssue(chain('  - { from: a, to: b }\n', '\n    depends: [b, x]'), I_UNKNOWN_REF)).toMatchObject({ path: ['nodes', 2, 'depends', 1], line: 13, column: 18 });
  });

  it('reports an unknown inject_into, and inject_into naming the node itself', () => {
    accepted(chain(linear, '\n    on_failure: { inject_into: a }'));
    expect(theIssue(chain(linear, '\n    on_failure: { inject_into: z }'), I_UNKNOWN_REF)).toMatchObject({ path: ['nodes', 2, 'on_failure', 'inject_into'], line: 13, column: 32 });
    const self = theIssue(chain(linear, '\n    on_failure: { inject_into: c }'), I_INJECT_SELF);
    expect(self).toMatchObject({ path: ['nodes', 2, 'on_failure', 'inject_into'], line: 13, column: 32 });
    expect(self.message).toContain('"c"');
  });
});

describe('{{inputs.x}} templates', () => {
  const playbook = (node: string) => yaml`
    version: "1.0"
    name: t
    inputs:
      - name: known
    nodes:
  ` + node;

  it('accepts declared inputs and context references anywhere', () => {
    accepted(playbook('  - { id: a, type: approval, prompt: "Ship {{ inputs.known }} {{whatever.path}}?" }\n'));
  });

  it.each([
    ['an approval prompt', '  - { id: a, type: approval, prompt: "Ship {{inputs.nope}}" }\n', ['nodes', 0, 'prompt']],
    ['an agentic binding', '  - { id: a, type: agentic, skill: s, inputs: { q: "{{inputs.nope}}" } }\n', ['nodes', 0, 'inputs', 'q']],
    ['a deterministic arg', '  - { id: a, type: deterministic, command: node, args: [x, "{{inputs.nope}}"] }\n', ['nodes', 0, 'args', 1]],
    ['a deterministic cwd', '  - { id: a, type: deterministic, command: node, cwd: "/w/{{inputs.nope}}" }\n', ['nodes', 0, 'cwd']],
    ['a deterministic env value', '  - { id: a, type: deterministic, command: node, env: { K: "{{inputs.nope}}" } }\n', ['nodes', 0, 'env', 'K']],
  ])('reports an undeclared input in %s', (_label, node, path) => {
    const issue = theIssue(playbook(node), I_UNKNOWN_INPUT);
    expect(issue).toMatchObject({ path, line: 6 });
    expect(issue.message).toContain('"nope"');
    expect(issue.message).toContain('"known"');
  });
});

describe('deterministic cwd, env and command (SPEC §2 trust note)', () => {
  const playbook = (node: string) => yaml`
    version: "1.0"
    name: t
    inputs:
      - name: dir
    nodes:
  ` + node;

  it('accepts {{inputs.*}} in cwd and env, and context templates in args', () => {
    accepted(playbook('  - { id: a, type: deterministic, command: ./build.sh, args: ["{{target}}"], cwd: "/w/{{inputs.dir}}", env: { D: "{{ inputs.dir }}" } }\n'));
  });

  it.each([
    ['cwd', '  - { id: a, type: deterministic, command: ./build.sh, cwd: "{{workdir}}" }\n', ['nodes', 0, 'cwd'], 61, '{{workdir}}'],
    ['an env value', '  - { id: a, type: deterministic, command: node, env: { K: "/x/{{ a.b }}" } }\n', ['nodes', 0, 'env', 'K'], 60, '{{a.b}}'],
    ['cwd, as {{inputs}} alone (the context key "inputs")', '  - { id: a, type: deterministic, command: node, cwd: "{{inputs}}" }\n', ['nodes', 0, 'cwd'], 55, '{{inputs}}'],
  ])('reports a context template in %s with its line and column', (_label, node, path, column, shown) => {
    const issue = theIssue(playbook(node), I_TEMPLATE_NOT_ALLOWED);
    expect(issue).toMatchObject({ code: 'I_TEMPLATE_NOT_ALLOWED', path, line: 6, column });
    expect(issue.message).toContain(shown);
    expect(issue.message).toContain('{{inputs.<name>}}');
  });

  it('reports any template in command: a command is never rendered', () => {
    const issue = theIssue(playbook('  - { id: a, type: deterministic, command: "{{inputs.dir}}/build.sh" }\n'), I_TEMPLATE_NOT_ALLOWED);
    expect(issue).toMatchObject({ path: ['nodes', 0, 'command'], line: 6 });
    expect(issue.message).toContain('never templated');
  });
});

describe('entry node', () => {
  it('reports no entry when every node has a predecessor', () => {
    const issue = theIssue(chain(`${linear}  - { from: c, to: a }\n`), I_NO_ENTRY);
    expect(issue).toMatchObject({ path: ['nodes'], line: 3, column: 1 });
  });

  it('reports several entries at the second one, naming them all', () => {
    const issue = theIssue(chain('  - { from: a, to: b }\n'), I_MULTIPLE_ENTRIES);
    expect(issue).toMatchObject({ path: ['nodes', 2], line: 10, column: 5 });
    expect(issue.message).toContain('"a", "c"');
  });

  it('counts depends as a predecessor', () => {
    accepted(chain('  - { from: a, to: b }\n', '\n    depends: [b]'));
  });
});

describe('cycles', () => {
  it('reports a cycle over edges with its path, at the closing edge', () => {
    const source = chain(`${linear}  - { from: c, to: b }\n`);
    const issue = theIssue(source, I_CYCLE);
    expect(issue).toMatchObject({ path: ['edges', 2], line: 16, column: 5 });
    expect(issue.message).toContain('"b" -> "c" -> "b"');
  });

  it('finds cycles that mix edges and depends', () => {
    const issue = theIssue(chain(linear).replace('    skill: s\n  - id: c', '    skill: s\n    depends: [c]\n  - id: c'), I_CYCLE);
    expect(issue).toMatchObject({ path: ['nodes', 1, 'depends', 0], line: 10, column: 15 });
    expect(issue.message).toContain('"b" -> "c" -> "b"');
  });

  it('reports a self-loop', () => {
    expect(theIssue(chain(`${linear}  - { from: c, to: c }\n`), I_CYCLE).message).toContain('"c" -> "c"');
  });
});

describe('reachability', () => {
  it('reports nodes the entry cannot reach', () => {
    const source = chain('  - { from: a, to: b }\n  - { from: c, to: c }\n');
    const issues = issuesOf(source);
    expect(issues.find((i) => i.code === I_UNREACHABLE)).toMatchObject({ path: ['nodes', 2], line: 10, column: 5 });
    expect(issues.find((i) => i.code === I_UNREACHABLE)!.message).toContain('"c"');
  });
});

describe('default edges', () => {
  it('accepts one default next to guarded edges', () => {
    accepted(chain('  - { from: a, to: b, when: { field: x, equals: 1 } }\n  - { from: a, to: c }\n'));
  });

  it('rejects two unguarded successors, at the second edge', () => {
    const issue = theIssue(chain('  - { from: a, to: b }\n  - { from: a, to: c }\n'), I_MULTIPLE_DEFAULT_EDGES);
    expect(issue).toMatchObject({ path: ['edges', 1], line: 15, column: 5 });
    expect(issue.message).toContain('"a"');
    expect(issue.message).toContain('"b", "c"');
  });

  it('counts depends as an unguarded edge', () => {
    const both = theIssue(chain('  - { from: a, to: b }\n', '\n    depends: [a]'), I_MULTIPLE_DEFAULT_EDGES);
    expect(both).toMatchObject({ path: ['nodes', 2, 'depends', 0], line: 13, column: 15 });
  });

  it('counts the same pair given as an edge and as depends once', () => {
    accepted(chain(linear, '\n    depends: [b]'));
  });
});

describe('when', () => {
  const branch = (when: string) => chain(`  - { from: a, to: b, when: ${when} }\n  - { from: a, to: c }\n`);

  it.each([
    '{ field: x, equals: 1 }', '{ field: x, equals: null }', '{ field: x, notEquals: ok }', '{ field: x, exists: false }',
    '{ field: a.b, in: [1, two] }', '{ field: x, truthy: true }',
  ])('accepts %s', (when) => {
    accepted(branch(when));
  });

  it.each([
    ['no operator', '{ field: x }', ['edges', 0, 'when'], /found none/],
    ['several operators', '{ field: x, equals: 1, truthy: true }', ['edges', 0, 'when'], /found equals, truthy/],
    ['an empty in', '{ field: x, in: [] }', ['edges', 0, 'when', 'in'], /non-empty list/],
    ['a non-boolean exists', '{ field: x, exists: maybe }', ['edges', 0, 'when', 'exists'], /boolean/],
    ['a non-boolean truthy', '{ field: x, truthy: 1 }', ['edges', 0, 'when', 'truthy'], /boolean/],
    ['a missing field', '{ equals: 1 }', ['edges', 0, 'when', 'field'], /missing required field "field"/],
    ['an empty field', '{ field: "", equals: 1 }', ['edges', 0, 'when', 'field'], /non-empty string/],
    ['a scalar', 'yes', ['edges', 0, 'when'], /expected a map/],
  ])('rejects %s', (_label, when, path, message) => {
    const issue = theIssue(branch(when), I_WHEN_INVALID);
    expect(issue).toMatchObject({ path, line: 14 });
    expect(issue.message).toMatch(message);
  });

  it('reports a misspelt operator as an unknown key as well', () => {
    expect(codesOf(branch('{ field: x, equal: 1 }')).sort()).toEqual([I_UNKNOWN_KEY, I_WHEN_INVALID]);
  });
});

describe('max_iterations', () => {
  const capped = (cap: string) => chain(linear, `\n    on_failure: { max_iterations: ${cap} }`);

  it.each(['0', '3', '10'])('accepts %s', (cap) => {
    expect(accepted(capped(cap)).definition.nodes[2]!.on_failure).toEqual({ max_iterations: Number(cap) });
  });

  it.each(['11', '-1', '1.5', '"3"', 'null'])('rejects %s, quoting it', (cap) => {
    const issue = theIssue(capped(cap), I_MAX_ITERATIONS_RANGE);
    expect(issue).toMatchObject({ path: ['nodes', 2, 'on_failure', 'max_iterations'], line: 13, column: 35 });
    expect(issue.message).toContain('from 0 to 10');
  });
});

describe('reporting', () => {
  it('reports schema and graph issues together, sorted by position', () => {
    const source = yaml`
      version: 1.0
      name: t
      nodes:
        - id: a
          type: agentic
          skill: s
          colour: red
        - id: a
          type: robot
        - id: c
          type: deterministic
          on_failure: { max_iterations: 99, inject_into: zz }
      edges:
        - { from: a, to: c, when: { field: x } }
        - { from: c, to: a }
    `;
    const issues = issuesOf(source);
    expect(issues.map((i) => [i.code, i.line])).toEqual([
      [I_VERSION, 1], [I_NO_ENTRY, 3], [I_UNKNOWN_KEY, 7], [I_DUPLICATE_ID, 8], [I_UNKNOWN_NODE_TYPE, 9],
      [I_MISSING_FIELD, 10], [I_MAX_ITERATIONS_RANGE, 12], [I_UNKNOWN_REF, 12], [I_WHEN_INVALID, 14], [I_CYCLE, 15],
    ]);
    const lines = issues.map((i) => i.line ?? 0);
    expect(lines).toEqual([...lines].sort((x, y) => x - y));
    expect(issues.every((i) => i.line !== undefined && i.column !== undefined)).toBe(true);
  });

  it('still runs graph checks on the well-formed part of a broken file', () => {
    const source = chain('  - { from: a, to: nope }\n  - 42\n  - { from: b }\n');
    expect(codesOf(source)).toEqual(expect.arrayContaining([I_UNKNOWN_REF, I_INVALID_TYPE, I_MISSING_FIELD, I_MULTIPLE_ENTRIES]));
  });
});
