/** Parse rules of child-run nodes (SPEC §12): `playbook` and `map` fields, `items`, `item_input`, templates, contracts. */
import { describe, expect, it } from 'vitest';
import { mapItemsPath } from '../../../src/playbook/graphIssues.js';
import {
  I_EXIT_CODE_NOT_ALLOWED, I_INVALID_VALUE, I_MAP_ITEM_INPUT_INVALID, I_MAP_ITEMS_INVALID, I_MISSING_FIELD, I_TEMPLATE_NOT_ALLOWED,
  I_UNKNOWN_INPUT, I_UNKNOWN_KEY, I_UNKNOWN_NODE_TYPE,
} from '../../../src/playbook/issues.js';
import { accepted, codesOf, issuesOf, theIssue, yaml } from './helpers.js';

interface EpicParts {
  /** Extra flow keys of the `playbook` node `plan` (line 5). */
  plan?: string;
  /** The `items` scalar as written (line 9). */
  items?: string;
  /** The `item_input` scalar as written (line 11). */
  itemInput?: string;
  /** The map's `inputs` flow map (line 12). */
  inputs?: string;
  /** Extra block keys of the map, after `inputs` (from line 13). */
  more?: string;
}

/** plan (`playbook`, line 5) -> implement_all (`map`, lines 6-12), with one declared input `epicId`. */
const epic = ({ plan = '', items = '"{{tasks}}"', itemInput = 'taskId', inputs = '{ epicId: "{{inputs.epicId}}" }', more = '' }: EpicParts = {}) => [
  'version: "1.0"',
  'name: epic',
  'inputs: [{ name: epicId, required: true }]',
  'nodes:',
  `  - { id: plan, type: playbook, playbook: rcasd.cantbook, inputs: { epicId: "{{inputs.epicId}}" }${plan} }`,
  '  - id: implement_all',
  '    type: map',
  '    depends: [plan]',
  `    items: ${items}`,
  '    playbook: ivtr.cantbook',
  `    item_input: ${itemInput}`,
  `    inputs: ${inputs}`,
].join('\n') + `\n${more}`;

/** A parallel group whose branches hold a `playbook` node and a `map` node. */
const inBranches = yaml`
  version: "1.0"
  name: fan
  nodes:
    - { id: start, type: agentic, skill: s }
    - id: group
      type: parallel
      depends: [start]
      branches:
        - id: A
          nodes: [{ id: sub, type: playbook, playbook: a.cantbook }]
        - id: B
          nodes: [{ id: each, type: map, items: "{{ start.items }}", playbook: b.cantbook, item_input: item, max_concurrency: 2, tolerate: 1 }]
`;

describe('playbook and map nodes: accepted forms', () => {
  it('accepts both at the top level, with defaults applied', () => {
    const { definition } = accepted(epic());
    expect(definition.nodes[0]).toEqual({
      id: 'plan', type: 'playbook', playbook: 'rcasd.cantbook', inputs: { epicId: '{{inputs.epicId}}' }, depends: [],
    });
    expect(definition.nodes[1]).toEqual({
      id: 'implement_all', type: 'map', depends: ['plan'], items: '{{tasks}}', playbook: 'ivtr.cantbook', item_input: 'taskId',
      inputs: { epicId: '{{inputs.epicId}}' }, tolerate: 0,
    });
  });

  it('accepts both inside parallel branches', () => {
    const { definition } = accepted(inBranches);
    const group = definition.nodes[1];
    expect(group?.type === 'parallel' ? group.branches.map((branch) => branch.nodes[0]?.type) : []).toEqual(['playbook', 'map']);
  });

  it('accepts on_failure with inject_into and backoff, requires and ensures without exitCode', () => {
    const more = '    on_failure: { max_iterations: 2, inject_into: plan, backoff: { initial: 30s } }\n    requires: { fields: [tasks] }\n    ensures: { outputFiles: [implement_all] }\n';
    const node = accepted(epic({ more })).definition.nodes[1];
    expect(node).toMatchObject({ on_failure: { max_iterations: 2, inject_into: 'plan', backoff: { initial: '30s' } }, ensures: { outputFiles: ['implement_all'] } });
    accepted(epic({ plan: ', on_failure: { backoff: { initial: 1m, factor: 3 } }, ensures: { schema: task_tree }' }));
  });

  it.each(['"{{tasks}}"', '"{{ tasks }}"', '"{{plan.tasks}}"', '"{{  plan.result.tasks  }}"', '"{{inputs.epicId}}"', '"{{_t1}}"'])('accepts items %s', (items) => {
    accepted(epic({ items }));
  });

  it('accepts item_input identifiers, and inputs without the item input', () => {
    accepted(epic({ itemInput: '_task_2' }));
    accepted(epic({ inputs: '{}' }));
    accepted(epic({ itemInput: 'epicId', inputs: '{ other: "{{inputs.epicId}}" }' }));
  });

  it('accepts max_concurrency >= 1 and tolerate >= 0', () => {
    const node = accepted(epic({ more: '    max_concurrency: 1\n    tolerate: 3\n' })).definition.nodes[1];
    expect(node).toMatchObject({ max_concurrency: 1, tolerate: 3 });
  });
});

describe('playbook and map nodes: refused forms', () => {
  it.each([
    ['tasks', 'no template'],
    ['"[1, 2]"', 'no template'],
    ['"{{tasks}}{{more}}"', '2 templates'],
    ['"{{a}} and {{b}}"', '2 templates'],
    ['"all {{tasks}}"', 'text around the template'],
    ['"{{tasks}} "', 'text around the template'],
    ['" {{tasks}}"', 'text around the template'],
    ['"{{ a b }}"', 'not a dotted path of identifiers'],
    ['"{{a..b}}"', 'not a dotted path of identifiers'],
    ['"{{1tasks}}"', 'not a dotted path of identifiers'],
    ['"{{task-list}}"', 'not a dotted path of identifiers'],
    ['"{{}}"', 'not a dotted path of identifiers'],
  ])('refuses items %s (%s)', (items, why) => {
    const issue = theIssue(epic({ items }), I_MAP_ITEMS_INVALID);
    expect(issue).toMatchObject({ path: ['nodes', 1, 'items'], line: 9, column: 12 });
    expect(issue.message).toContain('map node "implement_all" needs items to name a list in the context');
    expect(issue.message).toContain('"{{tasks}}"');
    expect(issue.message).toContain(why);
  });

  it('refuses items naming an undeclared input with the input rule', () => {
    const issue = theIssue(epic({ items: '"{{inputs.epicID}}"' }), I_UNKNOWN_INPUT);
    expect(issue).toMatchObject({ path: ['nodes', 1, 'items'], line: 9 });
    expect(issue.message).toContain('did you mean `epicId`?');
    expect(codesOf(epic({ items: '"{{inputs.epicID}}"' }))).not.toContain(I_MAP_ITEMS_INVALID);
  });

  it.each(['task-id', '1task', '"task id"', 'a.b'])('refuses item_input %s, which is not an identifier', (itemInput) => {
    const issue = theIssue(epic({ itemInput }), I_MAP_ITEM_INPUT_INVALID);
    expect(issue).toMatchObject({ path: ['nodes', 1, 'item_input'], line: 11, column: 17 });
    expect(issue.message).toContain('not an identifier');
  });

  it('refuses an item_input that is also a key of inputs', () => {
    const issue = theIssue(epic({ inputs: '{ epicId: "{{inputs.epicId}}", taskId: "{{first}}" }' }), I_MAP_ITEM_INPUT_INVALID);
    expect(issue).toMatchObject({ path: ['nodes', 1, 'item_input'], line: 11 });
    expect(issue.message).toContain('its inputs set "taskId" too');
  });

  it('checks the inputs templates of both nodes as an agentic node\'s', () => {
    const onPlan = theIssue(epic().replace('inputs: { epicId: "{{inputs.epicId}}" } }', 'inputs: { epicId: "{{inputs.epicid}}" } }'), I_UNKNOWN_INPUT);
    expect(onPlan).toMatchObject({ path: ['nodes', 0, 'inputs', 'epicId'], line: 5 });
    expect(onPlan.message).toContain('did you mean `epicId`?');
    const onMap = theIssue(epic({ inputs: '{ epicId: "{{inputs.epicid}} {{ctx}}" }' }), I_UNKNOWN_INPUT);
    expect(onMap).toMatchObject({ path: ['nodes', 1, 'inputs', 'epicId'], line: 12 });
    // Context templates are allowed in a child's inputs, as in agentic bindings.
    accepted(epic({ inputs: '{ epicId: "{{plan.epic}}-{{inputs.epicId}}" }' }));
  });

  it('refuses ensures.exitCode on both, at the key', () => {
    const onMap = theIssue(epic({ more: '    ensures: { exitCode: 0 }\n' }), I_EXIT_CODE_NOT_ALLOWED);
    expect(onMap).toMatchObject({ path: ['nodes', 1, 'ensures', 'exitCode'], line: 13 });
    expect(onMap.message).toContain('map node "implement_all" runs no command');
    const onPlan = theIssue(epic({ plan: ', ensures: { exitCode: 0 }' }), I_EXIT_CODE_NOT_ALLOWED);
    expect(onPlan.message).toContain('playbook node "plan" runs no command');
    const inBranch = inBranches.replace('playbook: a.cantbook', 'playbook: a.cantbook, ensures: { exitCode: 1 }');
    expect(theIssue(inBranch, I_EXIT_CODE_NOT_ALLOWED).path).toEqual(['nodes', 1, 'branches', 0, 'nodes', 0, 'ensures', 'exitCode']);
  });

  it('refuses a template in the playbook reference', () => {
    const issue = theIssue(epic().replace('playbook: ivtr.cantbook', 'playbook: "{{inputs.epicId}}.cantbook"'), I_TEMPLATE_NOT_ALLOWED);
    expect(issue).toMatchObject({ path: ['nodes', 1, 'playbook'], line: 10 });
    expect(issue.message).toContain('never templated');
    const onPlan = theIssue(epic().replace('playbook: rcasd.cantbook', 'playbook: "{{which}}/rcasd.cantbook"'), I_TEMPLATE_NOT_ALLOWED);
    expect(onPlan.path).toEqual(['nodes', 0, 'playbook']);
  });

  it('reports missing fields, bad numbers and keys of other types', () => {
    const noRef = epic().replace('playbook: rcasd.cantbook, ', '');
    expect(theIssue(noRef, I_MISSING_FIELD).message).toContain('missing required field "playbook"');
    const noItems = epic().replace(/ {4}items: .*\n/, '');
    expect(theIssue(noItems, I_MISSING_FIELD).message).toContain('"items"');
    const noItemInput = epic().replace(/ {4}item_input: .*\n/, '');
    expect(theIssue(noItemInput, I_MISSING_FIELD).message).toContain('"item_input"');
    expect(codesOf(epic({ more: '    max_concurrency: 0\n' }))).toEqual([I_INVALID_VALUE]);
    expect(codesOf(epic({ more: '    tolerate: -1\n' }))).toEqual([I_INVALID_VALUE]);
    expect(codesOf(epic({ items: '""' }))).toEqual([I_INVALID_VALUE]);
    expect(codesOf(epic({ plan: ', items: "{{tasks}}"' }))).toEqual([I_UNKNOWN_KEY]);
    expect(codesOf(epic({ more: '    skill: s\n' }))).toEqual([I_UNKNOWN_KEY]);
  });

  it('names every node type, the child-run ones included, for an unknown type', () => {
    const issue = theIssue(epic().replace('type: map', 'type: mapp'), I_UNKNOWN_NODE_TYPE);
    expect(issue.message).toContain('did you mean `map`?');
    expect(issue.message).toContain('expected one of "agentic", "deterministic", "approval", "parallel", "playbook", "map"');
  });

  it('reports every problem of a map at once', () => {
    const all = issuesOf(epic({ items: 'tasks', inputs: '{ taskId: "{{inputs.nope}}" }', more: '    ensures: { exitCode: 0 }\n' }));
    expect(all.map((issue) => issue.code).sort()).toEqual([I_EXIT_CODE_NOT_ALLOWED, I_MAP_ITEM_INPUT_INVALID, I_MAP_ITEMS_INVALID, I_UNKNOWN_INPUT].sort());
  });
});

describe('mapItemsPath', () => {
  it('reads an input or a context path, as templates do', () => {
    expect(mapItemsPath('{{tasks}}')).toEqual({ source: 'context', path: ['tasks'] });
    expect(mapItemsPath('{{ plan.tasks }}')).toEqual({ source: 'context', path: ['plan', 'tasks'] });
    expect(mapItemsPath('{{inputs.tasks}}')).toEqual({ source: 'inputs', path: ['tasks'] });
    expect(mapItemsPath('{{inputs}}')).toEqual({ source: 'context', path: ['inputs'] });
  });

  it('is null for anything but one template of identifiers', () => {
    for (const text of ['tasks', '{{a}}{{b}}', 'x{{a}}', '{{a b}}', '{{a.}}', '{{}}', '']) expect(mapItemsPath(text)).toBeNull();
  });
});
