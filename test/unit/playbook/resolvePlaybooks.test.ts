/** Resolving and pinning the playbooks a tree can start (SPEC §12), before any event; the CLI's file resolver. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createFileResolver } from '../../../src/adapters/fileResolver.js';
import { CantbookError, E_FILE_UNREADABLE, E_INPUT_MISSING, E_INPUT_UNKNOWN, E_PLAYBOOK_CYCLE, E_PLAYBOOK_NOT_FOUND, E_PLAYBOOK_PARSE, E_PLAYBOOK_RUNTIME_INVALID } from '../../../src/errors.js';
import { sha256Hex } from '../../../src/events/canonicalJson.js';
import type { PinnedPlaybooks } from '../../../src/events/types.js';
import { PlaybookParseError } from '../../../src/playbook/parseError.js';
import { parsePlaybook } from '../../../src/playbook/parsePlaybook.js';
import { MAX_PLAYBOOK_NESTING, pinnedSubtree, pinPlaybookTree } from '../../../src/playbook/resolvePlaybooks.js';
import type { PlaybookResolver } from '../../../src/playbook/resolvePlaybooks.js';
import type { PlaybookDefinition } from '../../../src/playbook/types.js';

/**
 * A playbook named `name` whose nodes (flow-map bodies, without id) run in a
 * chain n0 -> n1 -> ...; `inputs` is the flow list of declared inputs.
 */
function text(name: string, nodes: string[], inputs = '[]'): string {
  const lines = nodes.map((body, i) => `  - { id: n${i}, ${body}${i > 0 ? `, depends: [n${i - 1}]` : ''} }`);
  return `version: "1.0"\nname: ${name}\ninputs: ${inputs}\nnodes:\n${lines.join('\n')}\n`;
}

const leaf = (name: string, inputs = '[]') => text(name, ['type: agentic, skill: s'], inputs);
const sub = (ref: string, extra = '') => `type: playbook, playbook: ${ref}${extra}`;
const definitionOf = (source: string): PlaybookDefinition => parsePlaybook(source).definition;

/** A resolver over named texts: the ref is the id. Records every call as `ref<-from`. */
function memoryResolver(files: Record<string, string>): PlaybookResolver & { calls: string[] } {
  const calls: string[] = [];
  const resolve = (ref: string, from: { id: string | null; name: string }) => {
    calls.push(`${ref}<-${from.id ?? `(${from.name})`}`);
    const source = files[ref];
    return source === undefined ? null : { id: ref, source };
  };
  return Object.assign(resolve, { calls });
}

/** The CantbookError a promise rejects with; fails when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<CantbookError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(CantbookError);
    return error as CantbookError;
  }
  throw new Error('expected a rejection');
}

describe('pinPlaybookTree', () => {
  // epic -> rcasd -> check, epic -> ivtr (map) -> check (a diamond), epic's branch -> review.
  const files = {
    rcasd: text('rcasd', [sub('check')], '[{ name: epicId, required: true }]'),
    ivtr: text('ivtr', [sub('check'), 'type: agentic, skill: s'], '[{ name: taskId, required: true }, { name: epicId }]'),
    check: leaf('check'),
    review: leaf('review'),
  };
  const epic = definitionOf(text('epic', [
    sub('rcasd', ', inputs: { epicId: x }'),
    'type: map, items: "{{tasks}}", playbook: ivtr, item_input: taskId, inputs: { epicId: x }',
    'type: parallel, branches: [{ id: A, nodes: [{ id: r, type: playbook, playbook: review }] }, { id: B, nodes: [{ id: b, type: agentic, skill: s }] }]',
    sub('rcasd', ', inputs: { epicId: y }'),
  ]));

  it('pins every reachable text once, with its references, hash and source', async () => {
    const resolve = memoryResolver(files);
    const pinned = await pinPlaybookTree({ definition: epic, id: 'epic' }, resolve);
    expect(pinned?.refs).toEqual({ rcasd: 'rcasd', ivtr: 'ivtr', review: 'review' });
    expect(Object.keys(pinned?.texts ?? {})).toEqual(['rcasd', 'check', 'ivtr', 'review']);
    expect(pinned?.texts['rcasd']).toEqual({ source: files.rcasd, sourceHash: sha256Hex(files.rcasd), refs: { check: 'check' } });
    expect(pinned?.texts['ivtr']?.refs).toEqual({ check: 'check' });
    expect(pinned?.texts['check']).toEqual({ source: files.check, sourceHash: sha256Hex(files.check), refs: {} });
    // Depth first, each reference resolved from its referrer; the same ref twice in one text resolves once.
    expect(resolve.calls).toEqual(['rcasd<-epic', 'check<-rcasd', 'ivtr<-epic', 'check<-ivtr', 'review<-epic']);
  });

  it('gives the resolver the root name when the root has no id', async () => {
    const resolve = memoryResolver(files);
    await pinPlaybookTree({ definition: definitionOf(text('solo', [sub('check')])) }, resolve);
    expect(resolve.calls).toEqual(['check<-(solo)']);
  });

  it('is undefined for a root that references nothing, without calling any resolver', async () => {
    expect(await pinPlaybookTree({ definition: definitionOf(leaf('plain')) }, undefined)).toBeUndefined();
    const resolve = memoryResolver(files);
    expect(await pinPlaybookTree({ definition: definitionOf(leaf('plain')), id: 'plain' }, resolve)).toBeUndefined();
    expect(resolve.calls).toEqual([]);
  });

  it('refuses a reference nobody resolves, naming the ref, the node and the referrer', async () => {
    const none = await rejection(pinPlaybookTree({ definition: epic, id: 'epic' }, undefined));
    expect(none.code).toBe(E_PLAYBOOK_NOT_FOUND);
    expect(none.exitCode).toBe(66);
    expect(none.message).toBe("playbook 'rcasd' named by node 'n0' of 'epic' cannot be resolved: no playbook resolver was given (resolvePlaybook)");
    expect(none.details).toEqual({ ref: 'rcasd', nodeId: 'n0', from: 'epic' });

    const deep = await rejection(pinPlaybookTree({ definition: epic }, memoryResolver({ ...files, check: undefined as never })));
    expect(deep.code).toBe(E_PLAYBOOK_NOT_FOUND);
    expect(deep.message).toBe("playbook 'check' named by node 'n0' of 'rcasd' was not found");
    expect(deep.details).toEqual({ ref: 'check', nodeId: 'n0', from: 'rcasd' });

    const unnamed = await rejection(pinPlaybookTree({ definition: epic }, () => null));
    expect(unnamed.details['from']).toBe('epic');
  });

  it('turns a resolver failure into E_PLAYBOOK_NOT_FOUND, and lets a coded one through', async () => {
    const thrown = await rejection(pinPlaybookTree({ definition: epic }, () => { throw new Error('backend down'); }));
    expect(thrown.code).toBe(E_PLAYBOOK_NOT_FOUND);
    expect(thrown.message).toContain('could not be resolved: backend down');
    expect(thrown.message).not.toContain('\n');

    const coded = new CantbookError(E_FILE_UNREADABLE, 'cannot read it');
    expect(await rejection(pinPlaybookTree({ definition: epic }, async () => { throw coded; }))).toBe(coded);

    const malformed = await rejection(pinPlaybookTree({ definition: epic }, () => ({ id: '', source: 'x' })));
    expect(malformed.code).toBe(E_PLAYBOOK_RUNTIME_INVALID);
  });

  it('refuses a self-reference, with or without the root id', async () => {
    const self = text('self', [sub('self')]);
    const withId = await rejection(pinPlaybookTree({ definition: definitionOf(self), id: 'self' }, memoryResolver({ self })));
    expect(withId.code).toBe(E_PLAYBOOK_CYCLE);
    expect(withId.exitCode).toBe(65);
    expect(withId.details['cycle']).toEqual(['self', 'self']);
    expect(withId.message).toContain('self -> self');
    const withoutId = await rejection(pinPlaybookTree({ definition: definitionOf(self) }, memoryResolver({ self })));
    expect(withoutId.details['cycle']).toEqual(['self', 'self']);
  });

  it('refuses a cycle through a shared text reached before (a diamond is no cycle, a loop is)', async () => {
    const loop = { a: text('a', [sub('b')]), b: text('b', [sub('c')]), c: text('c', [sub('a')]) };
    const root = definitionOf(text('root', [sub('c'), sub('a')]));
    const error = await rejection(pinPlaybookTree({ definition: root }, memoryResolver(loop)));
    expect(error.details['cycle']).toEqual(['c', 'a', 'b', 'c']);
  });

  it('refuses a tree nesting more than 16 levels, for a resolver that gives fresh ids forever', async () => {
    const again = text('again', [sub('again')]);
    let n = 0;
    const fresh: PlaybookResolver = () => ({ id: `again-${(n += 1)}`, source: again });
    const error = await rejection(pinPlaybookTree({ definition: definitionOf(again) }, fresh));
    expect(error.code).toBe(E_PLAYBOOK_CYCLE);
    expect(error.message).toContain(`more than the ${MAX_PLAYBOOK_NESTING} allowed`);
    expect(n).toBe(MAX_PLAYBOOK_NESTING + 1);
  });

  it('allows exactly 16 levels, and counts the levels below a text reached before', async () => {
    const chain = (levels: number, end: string): Record<string, string> => Object.fromEntries(Array.from({ length: levels }, (_, i) => {
      const name = `c${i + 1}`;
      return [name, i + 1 === levels ? text(name, [sub(end)]) : text(name, [sub(`c${i + 2}`)])];
    }));
    const ok = { ...chain(15, 'tail'), tail: leaf('tail') };
    const pinned = await pinPlaybookTree({ definition: definitionOf(text('root', [sub('c1')])) }, memoryResolver(ok));
    expect(Object.keys(pinned?.texts ?? {})).toHaveLength(16);
    // `shared` nests two levels below itself; reached first from the root, then at level 16 through the chain.
    const deep = { ...chain(15, 'shared'), shared: text('shared', [sub('s1')]), s1: text('s1', [sub('s2')]), s2: leaf('s2') };
    const root = definitionOf(text('root', [sub('shared'), sub('c1')]));
    const error = await rejection(pinPlaybookTree({ definition: root }, memoryResolver(deep)));
    expect(error.code).toBe(E_PLAYBOOK_CYCLE);
    expect(error.details['depth']).toBe(18);
  });

  it('reports an invalid child as the parse error of that file', async () => {
    const broken = await rejection(pinPlaybookTree({ definition: definitionOf(text('root', [sub('bad')])) }, memoryResolver({ bad: 'version: "1.0"\nname: bad\nnodes: []\n' })));
    expect(broken).toBeInstanceOf(PlaybookParseError);
    expect(broken.code).toBe(E_PLAYBOOK_PARSE);
    expect(broken.message).toMatch(/^invalid playbook bad: 1 issue; first: bad:3:8/);
    expect((broken as PlaybookParseError).fileName).toBe('bad');
  });

  it('refuses an input the child does not declare, with the closest name', async () => {
    const root = definitionOf(text('epic', ['type: map, items: "{{tasks}}", playbook: ivtr, item_input: taskid, inputs: { epicId: x }']));
    const error = await rejection(pinPlaybookTree({ definition: root }, memoryResolver(files)));
    expect(error.code).toBe(E_INPUT_UNKNOWN);
    expect(error.message).toBe("node 'n0' of 'epic' gives input 'taskid' (did you mean 'taskId'?) that 'ivtr' does not declare; it declares 'taskId', 'epicId'");
    expect(error.details).toMatchObject({ nodeId: 'n0', from: 'epic', unknown: ['taskid'], declared: ['taskId', 'epicId'] });
  });

  it('refuses a required input without a default that the node does not give', async () => {
    const root = definitionOf(text('epic', [sub('ivtr', ', inputs: { epicId: x }')]));
    const error = await rejection(pinPlaybookTree({ definition: root }, memoryResolver(files)));
    expect(error.code).toBe(E_INPUT_MISSING);
    expect(error.message).toBe("node 'n0' of 'epic' does not give 'ivtr' its required input 'taskId'; add it to the node's inputs");
    expect(error.details).toMatchObject({ missing: ['taskId'] });
  });

  it('checks the inputs of every node, also for a text reached before', async () => {
    // The second reference to rcasd (same ref, same text) leaves out its required input.
    const again = definitionOf(text('epic', [sub('rcasd', ', inputs: { epicId: x }'), sub('rcasd')]));
    expect((await rejection(pinPlaybookTree({ definition: again }, memoryResolver(files)))).details).toMatchObject({ nodeId: 'n1', missing: ['epicId'] });
    // check declares no inputs, so it takes any, also when reached a second time.
    const lenient = { ...files, ivtr: text('ivtr', [sub('check', ', inputs: { anything: x }')], '[{ name: taskId }, { name: epicId }]') };
    await pinPlaybookTree({ definition: epic }, memoryResolver(lenient));
    // A diamond: `strict` is parsed through rcasd, then reached from ivtr with an unknown input.
    const diamond = {
      ...files,
      rcasd: text('rcasd', [sub('strict', ', inputs: { mode: a }')], '[{ name: epicId, required: true }]'),
      ivtr: text('ivtr', [sub('strict', ', inputs: { mdoe: a }')], '[{ name: taskId }, { name: epicId }]'),
      strict: leaf('strict', '[{ name: mode, default: fast }]'),
    };
    const error = await rejection(pinPlaybookTree({ definition: epic }, memoryResolver(diamond)));
    expect(error.message).toBe("node 'n0' of 'ivtr' gives input 'mdoe' (did you mean 'mode'?) that 'strict' does not declare; it declares 'mode'");
  });
});

describe('pinnedSubtree', () => {
  const pinned: PinnedPlaybooks = {
    refs: { 'a.cantbook': 'A', 'd.cantbook': 'D' },
    texts: {
      A: { source: 'a', sourceHash: 'ha', refs: { 'b.cantbook': 'B', 'c.cantbook': 'C' } },
      B: { source: 'b', sourceHash: 'hb', refs: { 'c.cantbook': 'C' } },
      C: { source: 'c', sourceHash: 'hc', refs: {} },
      D: { source: 'd', sourceHash: 'hd', refs: {} },
    },
  };

  it('cuts what a child can start: its own refs and every text reachable from them', () => {
    expect(pinnedSubtree(pinned, 'A')).toEqual({ refs: { 'b.cantbook': 'B', 'c.cantbook': 'C' }, texts: { B: pinned.texts['B'], C: pinned.texts['C'] } });
    expect(pinnedSubtree(pinned, 'B')).toEqual({ refs: { 'c.cantbook': 'C' }, texts: { C: pinned.texts['C'] } });
  });

  it('is undefined for a text that references nothing', () => {
    expect(pinnedSubtree(pinned, 'C')).toBeUndefined();
    expect(pinnedSubtree(pinned, 'D')).toBeUndefined();
  });

  it('refuses an id, or a reference, missing from the pinned texts', () => {
    expect(() => pinnedSubtree(pinned, 'Z')).toThrow(expect.objectContaining({ code: E_PLAYBOOK_NOT_FOUND }));
    const torn: PinnedPlaybooks = { refs: pinned.refs, texts: { A: { source: 'a', sourceHash: 'ha', refs: { 'b.cantbook': 'B' } } } };
    expect(() => pinnedSubtree(torn, 'A')).toThrow(/'B' is not among the pinned texts/);
  });

  it('agrees with pinPlaybookTree: a child subtree holds the texts below it', async () => {
    const files = { mid: text('mid', [sub('low')]), low: text('low', [sub('leaf')]), leaf: leaf('leaf') };
    const tree = await pinPlaybookTree({ definition: definitionOf(text('top', [sub('mid')])) }, memoryResolver(files));
    const mid = pinnedSubtree(tree!, 'mid');
    expect(mid?.refs).toEqual({ low: 'low' });
    expect(Object.keys(mid?.texts ?? {})).toEqual(['low', 'leaf']);
    expect(pinnedSubtree(mid!, 'low')).toEqual({ refs: { leaf: 'leaf' }, texts: { leaf: tree?.texts['leaf'] } });
  });
});

describe('createFileResolver', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cantbook-resolve-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (path: string, source: string): string => {
    const file = join(dir, path);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, source);
    return file;
  };

  it('resolves relative to the referring file, and to cwd for a root without id', async () => {
    const file = write('lib/x.cantbook', leaf('x'));
    const resolve = createFileResolver({ cwd: dir });
    expect(await resolve('x.cantbook', { id: join(dir, 'lib/other.cantbook'), name: 'other' })).toEqual({ id: file, source: leaf('x') });
    expect(await resolve('lib/x.cantbook', { id: null, name: 'root' })).toEqual({ id: file, source: leaf('x') });
    expect((await resolve('./lib/../lib/./x.cantbook', { id: null, name: 'root' }))?.id).toBe(file);
    expect((await resolve(file, { id: '/elsewhere/y.cantbook', name: 'y' }))?.id).toBe(file);
  });

  it('is null for a missing file and E_FILE_UNREADABLE for one that cannot be read', async () => {
    const resolve = createFileResolver({ cwd: dir });
    expect(await resolve('nope.cantbook', { id: null, name: 'root' })).toBeNull();
    expect(await resolve('lib/x.cantbook/below', { id: null, name: 'root' })).toBeNull();
    const error = await rejection(Promise.resolve(resolve('lib', { id: null, name: 'root' })));
    expect(error.code).toBe(E_FILE_UNREADABLE);
    expect(error.message).toContain(`resolved to '${join(dir, 'lib')}'`);
  });

  it('finds a -> b -> a written with different relative paths', async () => {
    const a = write('cycle/a.cantbook', text('a', [sub('sub/b.cantbook')]));
    const b = write('cycle/sub/b.cantbook', text('b', [sub('../a.cantbook')]));
    const resolve = createFileResolver({ cwd: dir });
    const withId = await rejection(pinPlaybookTree({ definition: definitionOf(text('a', [sub('sub/b.cantbook')])), id: a }, resolve));
    expect(withId.code).toBe(E_PLAYBOOK_CYCLE);
    expect(withId.message).toContain('a.cantbook -> b.cantbook -> a.cantbook');
    expect(withId.details['cycle']).toEqual([a, b, a]);
    const fromCwd = await rejection(pinPlaybookTree({ definition: definitionOf(text('root', [sub('cycle/a.cantbook')])) }, resolve));
    expect(fromCwd.details['cycle']).toEqual([a, b, a]);
  });

  it('pins a tree from files, each reference relative to its own file, and reports a missing one', async () => {
    const ivtr = write('tree/children/ivtr.cantbook', text('ivtr', [sub('../shared/check.cantbook')], '[{ name: taskId, required: true }]'));
    const check = write('tree/shared/check.cantbook', leaf('check'));
    const epic = write('tree/epic.cantbook', text('epic', ['type: map, items: "{{tasks}}", playbook: children/ivtr.cantbook, item_input: taskId', sub('shared/check.cantbook')]));
    const pinned = await pinPlaybookTree({ definition: definitionOf(text('epic', ['type: map, items: "{{tasks}}", playbook: children/ivtr.cantbook, item_input: taskId', sub('shared/check.cantbook')])), id: epic }, createFileResolver());
    expect(pinned?.refs).toEqual({ 'children/ivtr.cantbook': ivtr, 'shared/check.cantbook': check });
    expect(pinned?.texts[ivtr]?.refs).toEqual({ '../shared/check.cantbook': check });
    expect(Object.keys(pinned?.texts ?? {})).toEqual([ivtr, check]);

    const missing = await rejection(pinPlaybookTree({ definition: definitionOf(text('epic', [sub('children/gone.cantbook')])), id: epic }, createFileResolver()));
    expect(missing.code).toBe(E_PLAYBOOK_NOT_FOUND);
    expect(missing.message).toBe(`playbook 'children/gone.cantbook' named by node 'n0' of '${epic}' was not found`);
  });

  it('names the file of a child that fails to parse', async () => {
    const bad = write('broken/bad.cantbook', 'version: 1.0\nname: bad\nnodes: [{ id: a, type: agentic, skill: s }]\n');
    const error = await rejection(pinPlaybookTree({ definition: definitionOf(text('root', [sub('broken/bad.cantbook')])) }, createFileResolver({ cwd: dir })));
    expect(error.code).toBe(E_PLAYBOOK_PARSE);
    expect(error.message).toContain(`invalid playbook ${bad}:`);
  });
});
