/** The ensures.schema registry (SPEC §13): built-in task_tree and evidence, host schemas, keys, unknown names. */
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import {
  BUILTIN_SCHEMAS, C_SCHEMA_MISMATCH, C_SCHEMA_UNKNOWN, checkEnsuresSchema, evidenceSchema, taskTreeSchema,
} from '../../../src/contracts/ensuresSchema.js';
import type { SchemaRegistry } from '../../../src/contracts/ensuresSchema.js';

const at = { nodeId: 'emit' };
const task = (fields: Record<string, unknown> = {}) => ({ title: 'Write the parser', acceptance: ['parses the starters'], ...fields });
const taskTree = (value: unknown) => checkEnsuresSchema('task_tree', { task_tree: value }, {}, at);

describe('task_tree', () => {
  it.each([
    ['one minimal task', [task()]],
    ['every optional field', [task({ id: 'T1' }), task({ id: 'T2', parentId: 'T1', depends: ['T1'] })]],
    ['extra fields an agent adds', [task({ description: 'why', estimate: 3 })]],
    ['a blank criterion next to a real one', [task({ acceptance: ['  ', 'tests pass'] })]],
  ])('accepts %s', (_, value) => {
    expect(taskTree(value)).toEqual({ ok: true, schema: 'task_tree', key: 'task_tree' });
  });

  it.each([
    ['an empty list', [], [], 'expected a task tree with at least one task at (root)'],
    ['a map instead of a list', { title: 'x' }, [], 'expected a task tree: a list of tasks at (root)'],
    ['a task that is not a map', ['do it'], [0], 'expected a task: a map with title and acceptance at 0'],
    ['an empty title', [task({ title: '' })], [0, 'title'], 'expected a non-empty title at 0.title'],
    ['a missing title', [{ acceptance: ['a'] }], [0, 'title'], 'expected a title (a string) at 0.title'],
    ['a missing acceptance', [{ title: 't' }], [0, 'acceptance'], 'expected acceptance criteria (a list of strings) at 0.acceptance'],
    ['an empty acceptance list', [task({ acceptance: [] })], [0, 'acceptance'], 'expected at least one acceptance criterion at 0.acceptance'],
    ['only blank criteria', [task(), task({ acceptance: ['', ' \t'] })], [1, 'acceptance'], 'expected at least one acceptance criterion that is not blank at 1.acceptance'],
    ['a criterion that is not a string', [task({ acceptance: ['ok', 3] })], [0, 'acceptance', 1], 'expected an acceptance criterion (a string) at 0.acceptance.1'],
    ['an empty id', [task({ id: '' })], [0, 'id'], 'expected a non-empty id at 0.id'],
    ['a numeric parentId', [task({ parentId: 7 })], [0, 'parentId'], 'expected parentId as a string at 0.parentId'],
    ['depends that is not a list', [task({ depends: 'T1' })], [0, 'depends'], 'expected depends as a list of task ids at 0.depends'],
  ])('rejects %s, naming the schema, the node and the path', (_, value, path, what) => {
    expect(taskTree(value)).toEqual({
      ok: false,
      violation: {
        code: C_SCHEMA_MISMATCH, kind: 'schema', schema: 'task_tree', nodeId: 'emit', key: 'task_tree', path,
        message: `ensures.schema[task_tree] on emit: ${what}`, failClosed: false,
      },
    });
  });

  it('reports the first issue when there are several', () => {
    const result = taskTree([task({ title: '' }), task({ acceptance: [] })]);
    expect(result.ok === false && result.violation.message).toBe('ensures.schema[task_tree] on emit: expected a non-empty title at 0.title');
  });

  it('reports a missing context key as a mismatch, not a crash', () => {
    expect(checkEnsuresSchema('task_tree', {}, {}, at)).toMatchObject({
      ok: false, violation: { code: C_SCHEMA_MISMATCH, path: [], message: 'ensures.schema[task_tree] on emit: the context has no "task_tree" (the node\'s output must set it)' },
    });
  });
});

describe('evidence', () => {
  const evidence = (value: unknown) => checkEnsuresSchema('evidence', { evidence: value }, {}, { nodeId: 'test' });

  it.each([['a string', 'ran 42 tests'], ['a list', ['log.txt']], ['a map', { passed: 42 }], ['a list of maps', [{ file: 'a' }]]])('accepts %s', (_, value) => {
    expect(evidence(value)).toEqual({ ok: true, schema: 'evidence', key: 'evidence' });
  });

  it.each([
    ['an empty string', '', 'expected evidence text that is not empty'],
    ['an empty list', [], 'expected an evidence list with at least one item'],
    ['an empty map', {}, 'expected an evidence map with at least one key'],
    ['a number', 42, 'expected evidence: a non-empty string, list or map'],
    ['a boolean', true, 'expected evidence: a non-empty string, list or map'],
    ['null', null, 'expected evidence: a non-empty string, list or map'],
  ])('rejects %s', (_, value, what) => {
    expect(evidence(value)).toMatchObject({
      ok: false, violation: { code: C_SCHEMA_MISMATCH, nodeId: 'test', key: 'evidence', path: [], message: `ensures.schema[evidence] on test: ${what} at (root)` },
    });
  });
});

describe('host registries', () => {
  const plan = z.object({ steps: z.array(z.string()).min(1) });

  it('checks context[name] with a host schema', () => {
    expect(checkEnsuresSchema('plan', { plan: { steps: ['a'] } }, { plan }, at)).toEqual({ ok: true, schema: 'plan', key: 'plan' });
    const result = checkEnsuresSchema('plan', { plan: { steps: [] } }, { plan }, at);
    expect(result).toMatchObject({ ok: false, violation: { code: C_SCHEMA_MISMATCH, path: ['steps'] } });
    expect(result.ok === false && result.violation.message).toMatch(/^ensures\.schema\[plan\] on emit: .+ at steps$/);
  });

  it('checks context[key] when the entry names a key', () => {
    const registry: SchemaRegistry = { tasks: { schema: taskTreeSchema, key: 'decomposition' } };
    expect(checkEnsuresSchema('tasks', { decomposition: [task()] }, registry, at)).toEqual({ ok: true, schema: 'tasks', key: 'decomposition' });
    expect(checkEnsuresSchema('tasks', { tasks: [task()] }, registry, at)).toMatchObject({ ok: false, violation: { key: 'decomposition', code: C_SCHEMA_MISMATCH } });
    expect(checkEnsuresSchema('plan', { plan: { steps: ['x'] } }, { plan: { schema: plan } }, at)).toEqual({ ok: true, schema: 'plan', key: 'plan' });
  });

  it('lets a host entry take precedence over a built-in of the same name', () => {
    const loose: SchemaRegistry = { task_tree: z.array(z.unknown()) };
    expect(checkEnsuresSchema('task_tree', { task_tree: [] }, loose, at).ok).toBe(true);
    expect(checkEnsuresSchema('task_tree', { task_tree: [] }, {}, at).ok).toBe(false);
  });

  it('reports a schema that throws as a mismatch', () => {
    const throwing: SchemaRegistry = { bad: { safeParse: () => { throw new Error('boom'); } } };
    expect(checkEnsuresSchema('bad', { bad: 1 }, throwing, at)).toMatchObject({ ok: false, violation: { code: C_SCHEMA_MISMATCH, message: 'ensures.schema[bad] on emit: the schema threw: boom' } });
  });
});

describe('unknown names fail closed', () => {
  it.each(['task-tree', 'toString', '__proto__', 'constructor'])('%j is unknown, with the known names listed', (name) => {
    expect(checkEnsuresSchema(name, { [name]: [task()] }, { plan: z.string() }, at)).toEqual({
      ok: false,
      violation: {
        code: C_SCHEMA_UNKNOWN, kind: 'schema', schema: name, nodeId: 'emit', key: name, path: [], failClosed: true,
        message: `ensures.schema[${name}] on emit: unknown schema ${JSON.stringify(name)}; known schemas: "evidence", "plan", "task_tree"`,
      },
    });
  });

  it('refuses a registry entry that is not a schema, or a key that is not a string', () => {
    const registry = { a: { parse: () => true }, b: { schema: evidenceSchema, key: 3 } } as unknown as SchemaRegistry;
    expect(checkEnsuresSchema('a', { a: 1 }, registry, at)).toMatchObject({ ok: false, violation: { code: C_SCHEMA_UNKNOWN, failClosed: true, message: 'ensures.schema[a] on emit: the registry entry for schema "a" is not a zod schema or {schema, key}' } });
    expect(checkEnsuresSchema('b', { b: 'x' }, registry, at)).toMatchObject({ ok: false, violation: { code: C_SCHEMA_UNKNOWN, message: expect.stringContaining('has a key that is not a non-empty string') } });
  });

  it('refuses an empty or non-string name', () => {
    expect(checkEnsuresSchema('', {}, {}, at)).toMatchObject({ ok: false, violation: { code: C_SCHEMA_UNKNOWN, failClosed: true } });
    expect(checkEnsuresSchema(7 as unknown as string, {}, {}, at)).toMatchObject({ ok: false, violation: { code: C_SCHEMA_UNKNOWN, message: 'ensures.schema[7] on emit: expected a schema name (a non-empty string), found 7' } });
  });

  it('keeps the built-ins frozen', () => {
    expect(Object.isFrozen(BUILTIN_SCHEMAS)).toBe(true);
    expect(Object.keys(BUILTIN_SCHEMAS).sort()).toEqual(['evidence', 'task_tree']);
  });
});
