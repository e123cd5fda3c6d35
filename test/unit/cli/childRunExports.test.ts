/**
 * `playbook` and `map` nodes (SPEC §12) in every drawing of a playbook: the
 * Mermaid diagram (a subroutine-like class, labelled with what the node runs),
 * the Stately module's header, and the viewer's graph.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compilePlaybook, parsePlaybook } from '../../../src/index.js';
import type { PlaybookNode } from '../../../src/index.js';
import { describeMap, renderMermaid, renderStatelyModule } from '../../../src/cli/exportFormats.js';
import { buildRunGraph } from '../../../src/cli/ui/runView.js';
import { repoRoot } from '../../helpers/cliSession.js';

const epicSource = readFileSync(join(repoRoot, 'starter', 'epic.cantbook'), 'utf8');
const epic = parsePlaybook(epicSource).definition;
const subject = { definition: epic, sourceHash: 'e'.repeat(64) };

/** Child-run nodes in both places a node can be: the top level and a parallel group's branches. */
const nested = parsePlaybook(`
version: "1.0"
name: nested
inputs:
  - { name: list, required: true }
nodes:
  - id: fan
    type: parallel
    branches:
      - id: one
        nodes:
          - { id: sub, type: playbook, playbook: ./child.cantbook }
      - id: two
        nodes:
          - { id: each, type: map, items: "{{ inputs.list }}", playbook: child.cantbook, item_input: x, tolerate: 2 }
  - { id: after, type: map, depends: [fan], items: "{{sub.found}}", playbook: child.cantbook, item_input: x, tolerate: 1, max_concurrency: 1 }
  - { id: done, type: deterministic, command: "true", depends: [after] }
`).definition;

describe('describeMap', () => {
  const mapOf = (id: string) => [...nested.nodes, ...nested.nodes.flatMap((node) => (node.type === 'parallel' ? node.branches.flatMap((b) => b.nodes) : []))].find((node) => node.id === id) as Extract<PlaybookNode, { type: 'map' }>;

  it('says what a map runs over, what it runs, how many at once and how many failures it tolerates', () => {
    expect(describeMap(epic.nodes[1] as Extract<PlaybookNode, { type: 'map' }>)).toBe('map tasks → ivtr.cantbook (≤ 3)');
    expect(describeMap(mapOf('each'))).toBe('map inputs.list → child.cantbook (all at once) · tolerates 2 failures');
    expect(describeMap(mapOf('after'))).toBe('map sub.found → child.cantbook (≤ 1) · tolerates 1 failure');
  });
});

describe('renderMermaid', () => {
  it('labels a playbook node with the playbook it runs and a map node with its items, playbook and cap; both get the childRun class', () => {
    const lines = renderMermaid(subject).split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        '  plan : plan · playbook · rcasd.cantbook',
        '  implement_all : implement_all · map tasks → ivtr.cantbook (≤ 3)',
        '  release : release · playbook · release.cantbook',
        '  [*] --> plan',
        '  plan --> implement_all',
        '  implement_all --> release',
        '  release --> completed',
        // A child spends its own attempts: the epic's nodes have one each.
        '  plan --> exceeded_iteration_cap : on failure',
      ]),
    );
    expect(lines.slice(-3)).toEqual(['  classDef childRun stroke-width:4px', '  class plan,implement_all,release childRun', '']);
  });

  it('classes child-run nodes inside branches too, and no other node', () => {
    const text = renderMermaid({ definition: nested, sourceHash: 'n'.repeat(64) });
    expect(text).toContain('      sub : sub · playbook · ./child.cantbook\n');
    expect(text).toContain('      each : each · map inputs.list → child.cantbook (all at once) · tolerates 2 failures\n');
    expect(text.match(/^ {2}class .*$/gm)).toEqual(['  class sub,each,after childRun']);
  });

  it('a playbook without child-run nodes has no class lines', () => {
    const release = parsePlaybook(readFileSync(join(repoRoot, 'starter', 'release.cantbook'), 'utf8')).definition;
    expect(renderMermaid({ definition: release, sourceHash: 'r'.repeat(64) })).not.toMatch(/classDef|^ {2}class /m);
  });
});

describe('renderStatelyModule', () => {
  it("names each child-run node and what it runs in the header's comments, before the one import", () => {
    const text = renderStatelyModule(subject, compilePlaybook(epic).config);
    const header = text.slice(0, text.indexOf("import { createMachine } from 'xstate';")).trimEnd().split('\n');
    expect(header.slice(3)).toEqual([
      '// Child runs: each of these states runs another playbook as a run of its own; cantbook starts and settles them.',
      '//   plan: playbook · rcasd.cantbook',
      '//   implement_all: map tasks → ivtr.cantbook (≤ 3)',
      '//   release: playbook · release.cantbook',
    ]);
    expect(text.match(/^import .*$/gm)).toEqual(["import { createMachine } from 'xstate';"]);
  });

  it('a playbook without child-run nodes keeps the three-line header', () => {
    const release = parsePlaybook(readFileSync(join(repoRoot, 'starter', 'release.cantbook'), 'utf8')).definition;
    const text = renderStatelyModule({ definition: release, sourceHash: 'r'.repeat(64) }, compilePlaybook(release).config);
    expect(text.split('\n')[3]).toBe("import { createMachine } from 'xstate';");
  });
});

describe('buildRunGraph', () => {
  it('gives child-run nodes their type, the playbook they run and the same one-line detail', () => {
    const graph = buildRunGraph(epic);
    expect(graph.nodes.filter((node) => node.type === 'playbook' || node.type === 'map').map(({ id, type, detail, playbook }) => ({ id, type, detail, playbook }))).toEqual([
      { id: 'plan', type: 'playbook', detail: 'runs rcasd.cantbook', playbook: 'rcasd.cantbook' },
      { id: 'implement_all', type: 'map', detail: 'map tasks → ivtr.cantbook (≤ 3)', playbook: 'ivtr.cantbook' },
      { id: 'release', type: 'playbook', detail: 'runs release.cantbook', playbook: 'release.cantbook' },
    ]);
    expect(graph.edges.filter((edge) => edge.kind === 'next').map((edge) => `${edge.from}->${edge.to}`)).toEqual(['plan->implement_all', 'implement_all->release', 'release->@completed']);
    // No retry loops: one attempt each.
    expect(graph.edges.filter((edge) => edge.kind !== 'next')).toEqual([]);
  });

  it('keeps a child-run node inside its branch', () => {
    const graph = buildRunGraph(nested);
    expect(graph.nodes.find((node) => node.id === 'each')).toMatchObject({ type: 'map', branch: 'two', playbook: 'child.cantbook' });
    expect(graph.nodes.find((node) => node.id === 'fan')).not.toHaveProperty('playbook');
  });
});
