/** YAML-level and top-level rules: syntax, root, version, strict keys, required fields, types. */
import { describe, expect, it } from 'vitest';
import { parsePlaybook } from '../../../src/playbook/parsePlaybook.js';
import { PlaybookParseError } from '../../../src/playbook/parseError.js';
import {
  I_DUPLICATE_KEY, I_INVALID_TYPE, I_INVALID_VALUE, I_MISSING_FIELD, I_ROOT_NOT_MAP, I_UNKNOWN_KEY,
  I_UNKNOWN_NODE_TYPE, I_VERSION, I_YAML_LIMIT, I_YAML_SYNTAX, I_AGENT_MISSING,
} from '../../../src/playbook/issues.js';
import { accepted, codesOf, issuesOf, theIssue, yaml } from './helpers.js';

const minimal = yaml`
  version: "1.0"
  name: t
  nodes:
    - id: a
      type: agentic
      skill: s
`;

describe('YAML syntax', () => {
  it('accepts well-formed YAML', () => {
    expect(accepted(minimal).definition.name).toBe('t');
  });

  it('reports a syntax error with its line and column', () => {
    const issue = theIssue(minimal.replace('skill: s', 'skill: [s'), I_YAML_SYNTAX);
    expect(issue).toMatchObject({ path: [], line: 7, column: 1 });
  });

  it('reports a map used as a key as an unknown key, and prints no warning of its own', async () => {
    const warnings: string[] = [];
    const listen = (warning: Error) => warnings.push(warning.message);
    process.on('warning', listen);
    try {
      const issue = theIssue(`${minimal}    ? { escalate: false }\n    : 1\n`, I_UNKNOWN_KEY);
      expect(issue).toMatchObject({ path: ['nodes', 0, '{ escalate: false }'], message: expect.stringContaining('"{ escalate: false }"') });
      // process.emitWarning delivers on a later tick.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', listen);
    }
    expect(warnings).toEqual([]);
  });

  it('reports every syntax error, and nothing else when the YAML is broken', () => {
    const source = yaml`
      version: "1.0"
      name: [t
      nodes: {a
      bogus: 1
    `;
    const issues = issuesOf(source);
    expect(issues.length).toBeGreaterThanOrEqual(2);
    expect(new Set(issues.map((i) => i.code))).toEqual(new Set([I_YAML_SYNTAX]));
  });

  it('reports a repeated key at the repetition', () => {
    const issue = theIssue(`${minimal}name: u\n`, I_DUPLICATE_KEY);
    expect(issue).toMatchObject({ line: 7, column: 1 });
    expect(issue.message).toContain('"name"');
  });

  it('stops an alias bomb instead of expanding it', () => {
    const rows = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (const [i, name] of ['b', 'c', 'd', 'e', 'f', 'g'].entries()) {
      const prev = String.fromCharCode('a'.charCodeAt(0) + i);
      rows.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(', ')}]`);
    }
    expect(codesOf(rows.join('\n'))).toEqual([I_YAML_LIMIT]);
  });

  it('accepts a few aliases', () => {
    const source = `${minimal}  - id: b\n    type: agentic\n    skill: s\n    depends: &deps [a]\n    description: *deps\n`;
    expect(codesOf(source)).toEqual([I_INVALID_TYPE]); // the alias resolves; a list is not a description
  });
});

describe('root', () => {
  it.each([
    ['an empty document', ''],
    ['a comment only', '# nothing\n'],
    ['a list', '- version: "1.0"\n'],
    ['a scalar', 'hello\n'],
  ])('rejects %s', (_label, source) => {
    expect(issuesOf(source)).toEqual([expect.objectContaining({ code: I_ROOT_NOT_MAP, path: [], line: 1 })]);
  });

  it('rejects a non-string source without throwing anything else', () => {
    for (const value of [undefined, null, 42, {}, Buffer.from('version: "1.0"')]) {
      expect(() => parsePlaybook(value as unknown as string)).toThrow(PlaybookParseError);
    }
    expect(codesOf(42 as unknown as string)).toEqual([I_INVALID_TYPE]);
  });
});

describe('version', () => {
  it('accepts the string "1.0" in any quoting', () => {
    accepted(minimal.replace('"1.0"', "'1.0'"));
  });

  it('rejects the YAML number 1.0, quoting the source text and the fix', () => {
    const issue = theIssue(minimal.replace('"1.0"', '1.0'), I_VERSION);
    expect(issue).toMatchObject({ path: ['version'], line: 1, column: 10 });
    expect(issue.message).toContain('found the number 1.0');
    expect(issue.message).toContain('version: "1.0"');
  });

  it('rejects another version string', () => {
    expect(theIssue(minimal.replace('"1.0"', '"2.0"'), I_VERSION).message).toContain('found "2.0"');
  });

  it('reports a missing version as a missing field', () => {
    expect(theIssue(minimal.replace('version: "1.0"\n', ''), I_MISSING_FIELD)).toMatchObject({ path: ['version'], line: 1, column: 1 });
  });
});

describe('unknown keys (strict everywhere)', () => {
  it('reports a top-level unknown key at the key, listing what is allowed', () => {
    const issue = theIssue(`${minimal}nodez: []\n`, I_UNKNOWN_KEY);
    expect(issue).toMatchObject({ path: ['nodez'], line: 7, column: 1 });
    expect(issue.message).toContain('"nodez"');
    expect(issue.message).toContain('nodes');
  });

  it('reports unknown keys in nodes and nested maps', () => {
    const source = minimal + '    color: red\n    on_failure: { max_iterations: 1, retries: 2 }\n';
    const issues = issuesOf(source).filter((i) => i.code === I_UNKNOWN_KEY);
    expect(issues.map((i) => i.path)).toEqual([['nodes', 0, 'color'], ['nodes', 0, 'on_failure', 'retries']]);
    expect(issues.map((i) => [i.line, i.column])).toEqual([[7, 5], [8, 38]]);
  });

  it('rejects keys that belong to another node type', () => {
    expect(theIssue(`${minimal}    command: ls\n`, I_UNKNOWN_KEY).path).toEqual(['nodes', 0, 'command']);
  });

  it('rejects a __proto__ key rather than following it', () => {
    expect(theIssue(`${minimal}__proto__: { polluted: true }\n`, I_UNKNOWN_KEY).path).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});

describe('required fields and types', () => {
  it('reports a missing name at the root map', () => {
    expect(theIssue(minimal.replace('name: t\n', ''), I_MISSING_FIELD)).toMatchObject({ path: ['name'], line: 1, column: 1 });
  });

  it('reports missing nodes, and an empty node list', () => {
    expect(theIssue('version: "1.0"\nname: t\n', I_MISSING_FIELD).path).toEqual(['nodes']);
    expect(theIssue('version: "1.0"\nname: t\nnodes: []\n', I_INVALID_VALUE)).toMatchObject({ path: ['nodes'], line: 3, column: 8 });
  });

  it('reports a missing node id at the node', () => {
    expect(theIssue(minimal.replace('- id: a\n    type', '- type'), I_MISSING_FIELD)).toMatchObject({ path: ['nodes', 0, 'id'], line: 4, column: 5 });
  });

  it('accepts identifier node ids and rejects ids that could not name a machine state', () => {
    expect(accepted(minimal.replace('id: a', 'id: _build-2')).definition.nodes[0]?.id).toBe('_build-2');
    const issue = theIssue(minimal.replace('id: a', 'id: a.b'), I_INVALID_VALUE);
    expect(issue).toMatchObject({ path: ['nodes', 0, 'id'], line: 4, column: 9 });
    expect(issue.message).toContain('expected an identifier');
  });

  it('reports an empty name as an invalid value', () => {
    expect(theIssue(minimal.replace('name: t', 'name: ""'), I_INVALID_VALUE)).toMatchObject({ path: ['name'], line: 2, column: 7 });
  });

  it('reports a wrong type, saying what was expected and found', () => {
    const issue = theIssue(minimal.replace('name: t', 'name: [t]'), I_INVALID_TYPE);
    expect(issue).toMatchObject({ path: ['name'], line: 2, column: 7 });
    expect(issue.message).toBe('name: expected a string, found a list');
  });

  it('reports a bad enum value with the allowed values', () => {
    const issue = theIssue(`${minimal}    role: boss\n`, I_INVALID_VALUE);
    expect(issue).toMatchObject({ path: ['nodes', 0, 'role'], line: 7, column: 11 });
    expect(issue.message).toContain('"orchestrator" | "lead" | "worker"');
  });

  it('checks error handlers', () => {
    accepted(`${minimal}error_handlers:\n  - { on: agentic_timeout, action: abort, message: stop }\n`);
    expect(theIssue(`${minimal}error_handlers:\n  - { on: timeout, action: abort }\n`, I_INVALID_VALUE).path).toEqual(['error_handlers', 0, 'on']);
  });
});

describe('node types', () => {
  it('rejects an unknown type, naming the known ones', () => {
    const issue = theIssue(minimal.replace('type: agentic', 'type: robot'), I_UNKNOWN_NODE_TYPE);
    expect(issue).toMatchObject({ path: ['nodes', 0, 'type'], line: 5, column: 11 });
    expect(issue.message).toContain('"robot"');
    expect(issue.message).toContain('"deterministic"');
  });

  it('reports a missing type as a missing field', () => {
    expect(theIssue(minimal.replace('    type: agentic\n', ''), I_MISSING_FIELD).path).toEqual(['nodes', 0, 'type']);
  });

  it('agentic: accepts skill or agent alone, rejects neither', () => {
    accepted(minimal.replace('skill: s', 'agent: demo'));
    const issue = theIssue(minimal.replace('    skill: s\n', ''), I_AGENT_MISSING);
    expect(issue).toMatchObject({ path: ['nodes', 0], line: 4, column: 5 });
  });

  it('agentic: reports a missing agent together with other problems of the node', () => {
    const codes = codesOf(minimal.replace('skill: s', 'role: boss'));
    expect(codes).toEqual(expect.arrayContaining([I_AGENT_MISSING, I_INVALID_VALUE]));
  });

  it('deterministic: needs a non-empty command', () => {
    const node = (command: string) => minimal.replace('type: agentic\n    skill: s', `type: deterministic\n    ${command}`);
    accepted(node('command: node'));
    expect(theIssue(node('args: [x]'), I_MISSING_FIELD)).toMatchObject({ path: ['nodes', 0, 'command'], line: 4, column: 5 });
    expect(theIssue(node('command: ""'), I_INVALID_VALUE)).toMatchObject({ path: ['nodes', 0, 'command'], line: 6, column: 14 });
    expect(theIssue(node('command: node\n    timeout_ms: -1'), I_INVALID_VALUE).path).toEqual(['nodes', 0, 'timeout_ms']);
    expect(theIssue(node('command: node\n    args: x'), I_INVALID_TYPE).path).toEqual(['nodes', 0, 'args']);
  });

  it('approval: needs a non-empty prompt and a valid duration', () => {
    const node = (rest: string) => minimal.replace('type: agentic\n    skill: s', `type: approval\n    ${rest}`);
    accepted(node('prompt: Go?\n    timeout: 72h\n    policy: conservative'));
    expect(theIssue(node('policy: permissive'), I_MISSING_FIELD).path).toEqual(['nodes', 0, 'prompt']);
    expect(theIssue(node("prompt: ''"), I_INVALID_VALUE).path).toEqual(['nodes', 0, 'prompt']);
    const duration = theIssue(node('prompt: Go?\n    timeout: 3 days'), I_INVALID_VALUE);
    expect(duration).toMatchObject({ path: ['nodes', 0, 'timeout'], line: 7, column: 14 });
    expect(duration.message).toContain('"3 days"');
  });
});

describe('defaults', () => {
  it('applies every documented default and leaves max_iterations absent', () => {
    const source = yaml`
      version: "1.0"
      name: t
      inputs:
        - name: x
      nodes:
        - id: a
          type: deterministic
          command: node
          on_failure: { inject_into: b }
        - id: b
          type: agentic
          agent: demo
          depends: [a]
    `;
    const { definition } = accepted(source);
    expect(definition.inputs).toEqual([{ name: 'x', required: false }]);
    expect(definition.edges).toEqual([]);
    expect(definition.error_handlers).toEqual([]);
    expect(definition.nodes[0]).toEqual({ id: 'a', type: 'deterministic', command: 'node', args: [], depends: [], on_failure: { inject_into: 'b' } });
    expect(definition.nodes[1]).toEqual({ id: 'b', type: 'agentic', agent: 'demo', depends: ['a'] });
  });

  it('keeps explicit values, including an input default of any type', () => {
    const { definition } = accepted(`${minimal}inputs:\n  - { name: x, required: true, default: { a: [1, null] }, description: d }\n`);
    expect(definition.inputs).toEqual([{ name: 'x', required: true, default: { a: [1, null] }, description: 'd' }]);
  });
});

describe('sourceHash', () => {
  it('is the SHA-256 hex of the exact text', () => {
    const { sourceHash } = accepted(minimal);
    expect(sourceHash).toMatch(/^[0-9a-f]{64}$/);
    expect(accepted(minimal).sourceHash).toBe(sourceHash);
    expect(accepted(`${minimal}\n`).sourceHash).not.toBe(sourceHash);
  });
});
