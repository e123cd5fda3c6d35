/** Every starter playbook validates, and the three SPEC §8 starters have exactly the promised shape. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { entryNodeId, outgoingEdges } from '../../../src/playbook/graph.js';
import { parsePlaybook } from '../../../src/playbook/parsePlaybook.js';
import type { PlaybookDefinition } from '../../../src/playbook/types.js';

const starterDir = join(import.meta.dirname, '../../../starter');
const files = readdirSync(starterDir).filter((file) => file.endsWith('.cantbook'));
const load = (file: string): PlaybookDefinition =>
  parsePlaybook(readFileSync(join(starterDir, file), 'utf8'), { fileName: file }).definition;

/** Node ids in execution order, following the single default edge from the entry. */
function chainOf(definition: PlaybookDefinition): string[] {
  const ids = [entryNodeId(definition)];
  for (let edges = outgoingEdges(definition, ids[0]!); edges.length > 0; edges = outgoingEdges(definition, ids.at(-1)!)) {
    ids.push(edges[0]!.to);
  }
  return ids;
}

const caps = (definition: PlaybookDefinition) =>
  Object.fromEntries(definition.nodes.map((node) => [node.id, node.on_failure?.max_iterations]));

describe('starter playbooks', () => {
  it('includes at least the three SPEC starters and one more', () => {
    expect(files).toEqual(expect.arrayContaining(['rcasd.cantbook', 'ivtr.cantbook', 'release.cantbook']));
    expect(files.length).toBeGreaterThanOrEqual(4);
  });

  it.each(files)('%s validates', (file) => {
    expect(load(file).nodes.length).toBeGreaterThan(0);
  });

  it('rcasd: five agentic leads in planning order, cap 2 each, epicId required, scope defaults to global', () => {
    const definition = load('rcasd.cantbook');
    expect(chainOf(definition)).toEqual(['research', 'consensus', 'architecture', 'specification', 'decomposition']);
    for (const node of definition.nodes) expect(node).toMatchObject({ type: 'agentic', role: 'lead', on_failure: { max_iterations: 2 } });
    expect(definition.inputs).toEqual([
      expect.objectContaining({ name: 'epicId', required: true }),
      expect.objectContaining({ name: 'scope', required: false, default: 'global' }),
    ]);
  });

  it('rcasd: each stage promises the key it writes and requires the previous one; decomposition promises a task_tree; a broken contract aborts', () => {
    const definition = load('rcasd.cantbook');
    const contracts = definition.nodes.map((node) => [node.id, node.requires, node.ensures]);
    expect(contracts).toEqual([
      ['research', undefined, { outputFiles: ['research'] }],
      ['consensus', { from: 'research', fields: ['research'] }, { outputFiles: ['consensus'] }],
      ['architecture', { from: 'consensus', fields: ['consensus'] }, { outputFiles: ['architecture'] }],
      ['specification', { from: 'architecture', fields: ['architecture'] }, { outputFiles: ['specification'] }],
      ['decomposition', { from: 'specification', fields: ['specification'] }, { schema: 'task_tree' }],
    ]);
    expect(definition.error_handlers).toEqual([expect.objectContaining({ on: 'contract_violation', action: 'abort' })]);
  });

  it('ivtr: implement promises its report, validate and test require it; a broken contract aborts', () => {
    const definition = load('ivtr.cantbook');
    expect(definition.nodes.map((node) => [node.id, node.requires, node.ensures])).toEqual([
      ['implement', undefined, { outputFiles: ['implementation'] }],
      ['validate', { from: 'implement', fields: ['implementation'] }, undefined],
      ['test', { from: 'implement', fields: ['implementation'] }, undefined],
    ]);
    expect(definition.error_handlers).toEqual([expect.objectContaining({ on: 'contract_violation', action: 'abort' })]);
  });

  it('ivtr: implement -> validate -> test, failures escalate to implement', () => {
    const definition = load('ivtr.cantbook');
    expect(chainOf(definition)).toEqual(['implement', 'validate', 'test']);
    expect(caps(definition)).toEqual({ implement: 3, validate: 2, test: 2 });
    expect(definition.nodes.map((node) => node.on_failure?.inject_into)).toEqual([undefined, 'implement', 'implement']);
    expect(definition.inputs).toEqual([expect.objectContaining({ name: 'taskId', required: true })]);
  });

  it('release: bump -> changelog -> conservative approval naming version and channel -> publish (cap 1)', () => {
    const definition = load('release.cantbook');
    expect(chainOf(definition)).toEqual(['version_bump', 'changelog', 'approval', 'publish']);
    const approval = definition.nodes.find((node) => node.id === 'approval');
    expect(approval).toMatchObject({ type: 'approval', policy: 'conservative' });
    expect(approval?.type === 'approval' && approval.prompt).toMatch(/\{\{inputs\.targetVersion\}\}[\s\S]*\{\{inputs\.channel\}\}/);
    expect(caps(definition)['publish']).toBe(1);
    expect(definition.inputs).toEqual([
      expect.objectContaining({ name: 'targetVersion', required: true }),
      expect.objectContaining({ name: 'channel', required: false, default: 'latest' }),
    ]);
  });

  it('ci-gate: deterministic node steps with a guarded branch and a default', () => {
    const definition = load('ci-gate.cantbook');
    expect(definition.nodes.every((node) => node.type === 'deterministic' && node.command === 'node')).toBe(true);
    const branches = outgoingEdges(definition, 'lint');
    expect(branches.filter((edge) => edge.when === undefined)).toHaveLength(1);
    expect(branches.filter((edge) => edge.when !== undefined)).toHaveLength(1);
  });
});
