/**
 * Text renderings of a playbook for `cantbook export`: an XState module that
 * Stately Studio imports, and a Mermaid state diagram. Pure: no I/O.
 *
 * What a failure leads to is never worked out here: it is read from the
 * library's one failure rule (`decideFailure`, `describeFailurePolicy`), and the
 * edges from the playbook model (`createPlaybookModel`), as the runtime reads them.
 */
import { createPlaybookModel, decideFailure, DEFAULT_MAX_ITERATIONS, describeFailurePolicy } from '../index.js';
import type { EdgeCondition, PlaybookDefinition, PlaybookModel, PlaybookNode } from '../index.js';

/** What the renderers need to know about the playbook besides its definition. */
export interface ExportSubject {
  definition: PlaybookDefinition;
  sourceHash: string;
}

/**
 * The machine as an ES module Stately Studio's "Import from code" accepts:
 * a comment header naming the playbook and its sourceHash, then
 * `export const machine = createMachine({...})` with the compiled config.
 * The config is plain JSON: guards and the `apply` action are referenced by
 * name (with params), and cantbook supplies their implementations at run time.
 * A parallel group is a `type: 'parallel'` state with one region per branch.
 * A `playbook` or `map` node (SPEC §12) is a state like the others; the header
 * lists each with what it runs (`plan: playbook · rcasd.cantbook`).
 *
 * Pure.
 *
 * @example
 * renderStatelyModule({ definition, sourceHash }, compilePlaybook(definition).config);
 */
export function renderStatelyModule(subject: ExportSubject, config: unknown): string {
  const { definition, sourceHash } = subject;
  // The machine holds a child-run node as a state like any other: what it runs is said here, once.
  const childRuns = [...createPlaybookModel(definition).nodes.values()].filter(isChildRunNode);
  return [
    `// Playbook ${commentSafe(JSON.stringify(definition.name))}, sourceHash ${sourceHash}`,
    '// Exported by `cantbook export --format stately`: paste into Stately Studio (Import from code).',
    '// Guards and the `apply` action are referenced by name with their params; cantbook implements them.',
    ...(childRuns.length === 0
      ? []
      : [
          '// Child runs: each of these states runs another playbook as a run of its own; cantbook starts and settles them.',
          ...childRuns.map((node) => `//   ${commentSafe(node.id)}: ${commentSafe(describeNode(node))}`),
        ]),
    "import { createMachine } from 'xstate';",
    '',
    `export const machine = createMachine(${JSON.stringify(config, null, 2)});`,
    '',
  ].join('\n');
}

/**
 * What a failure of `node` can lead to, read from the library's failure rule:
 * whether the first failure retries in place or escalates (to `escalatesTo`),
 * and the policy in words (`describeFailurePolicy`). A node whose first
 * failure already exhausts it has neither. Approval gates do not fail this way
 * (they are rejected or expire): `null`. Pure.
 */
export function failurePathsOf(node: PlaybookNode, maxIterationsDefault: number): { retries: boolean; escalatesTo: string | null; policy: string } | null {
  if (node.type === 'approval') return null;
  const first = decideFailure(node, { attempts: 1, escalations: 0 }, maxIterationsDefault);
  return {
    retries: first === 'retry',
    escalatesTo: first === 'escalate' ? (node.on_failure?.inject_into ?? null) : null,
    policy: describeFailurePolicy(node, maxIterationsDefault),
  };
}

/**
 * Whether `nodeId` sits inside a `fail_fast` group (at any depth): then a failed
 * sibling branch stops it (an in-flight attempt is aborted, a pending gate
 * cancelled). Pure.
 */
export function stoppedBySiblings(model: PlaybookModel, nodeId: string): boolean {
  return (model.branchChain.get(nodeId) ?? []).some((branchId) => {
    const group = model.nodes.get(model.branches.get(branchId)?.groupId ?? '');
    return group?.type === 'parallel' && group.failure === 'fail_fast';
  });
}

/** The label of a guarded edge (`when …`), of the default one when others are guarded (`otherwise`), else undefined. */
export function edgeCondition(edge: { when?: EdgeCondition }, branching: boolean): string | undefined {
  return edge.when !== undefined ? `when ${describeCondition(edge.when)}` : branching ? 'otherwise' : undefined;
}

const MERMAID_RESERVED = new Set([
  'state', 'note', 'end', 'direction', 'classdef', 'class', 'style', 'as', 'left', 'right', 'of', 'fork', 'join', 'choice',
  'default', 'click', 'accdescr', 'acctitle', 'hide', 'scale',
]);
const FINALS = ['completed', 'failed', 'exceeded_iteration_cap'] as const;
/** The Mermaid class of `playbook` and `map` nodes: the heavy border a subroutine gets, state diagrams having no such shape. */
const CHILD_RUN_CLASS = 'childRun';
const CHILD_RUN_STYLE = 'stroke-width:4px';
const BRANCH_ENDS = ['succeeded', 'failed', 'stopped'] as const;
type BranchEnd = (typeof BRANCH_ENDS)[number];

/**
 * The playbook as a Mermaid `stateDiagram-v2`: one state per node (its id,
 * type and agent or command), the entry, every edge (guarded edges labelled
 * with their condition, the default edge `otherwise`), retries and
 * escalations on failure, approval outcomes, and the final states
 * `completed`, `failed` and `exceeded_iteration_cap`.
 *
 * A parallel group is a composite state whose branches are concurrent regions
 * (separated by `--`), each a composite state of its own holding its nodes and
 * its ends: `<branch>_succeeded`, `<branch>_failed` and, in a `fail_fast`
 * group, `<branch>_stopped` (a sibling failed). Edges never leave a branch;
 * the join is the group's own edge to its successor.
 *
 * A `playbook` node (`plan · playbook · rcasd.cantbook`) and a `map` node
 * (`implement_all · map tasks → ivtr.cantbook (≤ 3)`) run child runs (SPEC
 * §12). State diagrams have no subroutine shape, so both get the class
 * `childRun`, drawn with a heavy border.
 *
 * Pure. Caps of nodes without `max_iterations` are `maxIterationsDefault`
 * (the runtime's default unless given).
 */
export function renderMermaid(subject: ExportSubject, maxIterationsDefault: number = DEFAULT_MAX_ITERATIONS): string {
  const { definition } = subject;
  const model = createPlaybookModel(definition);
  const ids = mermaidIds(model);
  const idOf = (key: string): string => ids.get(key) ?? key;
  const lines = ['stateDiagram-v2', `  %% playbook ${label(definition.name)} · sourceHash ${subject.sourceHash}`];

  /** One graph (the top level or a branch): its nodes' states, its entry, its edges; `branch` null at the top level. */
  const renderGraph = (nodes: readonly PlaybookNode[], entry: string, branch: string | null, indent: string): void => {
    // At the top level a run ends; in a branch, the branch does (and the group decides).
    const ends: Record<BranchEnd | 'exceeded_iteration_cap', string> = {
      succeeded: branch === null ? 'completed' : idOf(`${branch}\u0000succeeded`),
      failed: branch === null ? 'failed' : idOf(`${branch}\u0000failed`),
      exceeded_iteration_cap: branch === null ? 'exceeded_iteration_cap' : idOf(`${branch}\u0000failed`),
      stopped: branch === null ? 'cancelled' : idOf(`${branch}\u0000stopped`),
    };
    const used = new Set<string>();
    const arrow = (from: string, to: string, text?: string): void => {
      used.add(to);
      lines.push(`${indent}${from} --> ${to}${text === undefined || text === '' ? '' : ` : ${label(text)}`}`);
    };
    for (const node of nodes) {
      const id = idOf(node.id);
      if (node.type === 'parallel') {
        lines.push(`${indent}state ${id} {`);
        node.branches.forEach((b, index) => {
          if (index > 0) lines.push(`${indent}  --`);
          lines.push(`${indent}  state ${idOf(b.id)} {`);
          renderGraph(b.nodes, model.branches.get(b.id)?.entry ?? '', b.id, `${indent}    `);
          lines.push(`${indent}  }`);
        });
        lines.push(`${indent}}`);
      } else if (id !== node.id) {
        lines.push(`${indent}state "${label(node.id)}" as ${id}`);
      }
      // Mermaid shows a state's description instead of its id: the description starts with the id.
      lines.push(`${indent}${id} : ${label(`${node.id} · ${describeNode(node)}`)}`);
    }
    lines.push(`${indent}[*] --> ${idOf(entry)}`);

    for (const node of nodes) {
      const id = idOf(node.id);
      const edges = model.edges.get(node.id) ?? [];
      const branching = edges.some((edge) => edge.when !== undefined);
      const leave = node.type === 'approval' ? 'approved' : undefined;
      for (const edge of edges) arrow(id, idOf(edge.to), [leave, edgeCondition(edge, branching)].filter((part) => part !== undefined).join(', '));
      if (edges.length === 0) arrow(id, ends.succeeded, leave);
      else if (branching && !edges.some((edge) => edge.when === undefined)) arrow(id, ends.failed, 'no branch matches');
      if (branch !== null && node.type !== 'parallel' && stoppedBySiblings(model, node.id)) {
        arrow(id, ends.stopped, node.type === 'approval' ? 'cancelled: a sibling branch failed' : 'aborted: a sibling branch failed');
      }
      const failure = failurePathsOf(node, maxIterationsDefault);
      if (failure === null) {
        arrow(id, ends.failed, node.type === 'approval' && node.timeout !== undefined ? `rejected, or expired after ${node.timeout}` : 'rejected');
        continue;
      }
      if (failure.retries) arrow(id, id, `on failure, retry (${failure.policy} in all)`);
      if (failure.escalatesTo !== null) arrow(id, idOf(failure.escalatesTo), `on failure (at most ${failure.policy})`);
      arrow(id, ends.exceeded_iteration_cap, failure.retries || failure.escalatesTo !== null ? `on failure after ${failure.policy}` : 'on failure');
    }
    if (branch !== null) {
      for (const end of BRANCH_ENDS) {
        const endId = ends[end];
        if (!used.has(endId)) continue;
        lines.push(`${indent}state "${end}" as ${endId}`, `${indent}${endId} --> [*]`);
      }
    }
  };

  renderGraph(definition.nodes, model.entry, null, '  ');
  for (const final of FINALS) lines.push(`  ${final} --> [*]`);
  // State diagrams have no subroutine shape: a child-run node gets the double-weight border of a class.
  const childRuns = [...model.nodes.values()].filter(isChildRunNode).map((node) => idOf(node.id));
  if (childRuns.length > 0) lines.push(`  classDef ${CHILD_RUN_CLASS} ${CHILD_RUN_STYLE}`, `  class ${childRuns.join(',')} ${CHILD_RUN_CLASS}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Mermaid ids for every node, branch and branch end (keys `<branch>\0<end>`):
 * ids are global in a Mermaid diagram, so each is unique. Plain identifiers
 * stay; a node whose id Mermaid would misread gets `node_<n>` and a label.
 */
function mermaidIds(model: PlaybookModel): Map<string, string> {
  const ids = new Map<string, string>();
  const taken = new Set<string>(FINALS);
  const plain = (id: string): boolean => /^[A-Za-z][A-Za-z0-9_]*$/.test(id) && !MERMAID_RESERVED.has(id.toLowerCase()) && !taken.has(id);
  const take = (key: string, id: string): void => {
    ids.set(key, id);
    taken.add(id);
  };
  const names = [...model.nodes.keys(), ...model.branches.keys()];
  for (const name of names) if (plain(name)) take(name, name);
  names.forEach((name, index) => {
    if (ids.has(name)) return;
    let candidate = `node_${index + 1}`;
    while (taken.has(candidate)) candidate = `${candidate}_`;
    take(name, candidate);
  });
  for (const branch of model.branches.keys()) {
    for (const end of BRANCH_ENDS) {
      let candidate = `${ids.get(branch) ?? branch}_${end}`;
      while (taken.has(candidate)) candidate = `${candidate}_`;
      take(`${branch}\u0000${end}`, candidate);
    }
  }
  return ids;
}

function describeNode(node: PlaybookNode): string {
  switch (node.type) {
    case 'agentic':
      return `agentic · ${node.agent ?? node.skill ?? ''}`;
    case 'deterministic':
      return `deterministic · ${node.command}`;
    case 'approval':
      return `approval gate${node.policy === undefined ? '' : ` · ${node.policy}`}${node.timeout === undefined ? '' : ` · expires after ${node.timeout}`}`;
    case 'parallel':
      return `parallel · ${node.branches.length} branches · ${node.failure}${node.max_concurrency === undefined ? '' : ` · at most ${node.max_concurrency} at once`}`;
    case 'playbook':
      return `playbook · ${node.playbook}`;
    case 'map':
      return describeMap(node);
  }
}

type MapNode = Extract<PlaybookNode, { type: 'map' }>;

/**
 * A map node in one line: `map tasks → ivtr.cantbook (≤ 3)`, what it runs over
 * (the `items` path without its braces), the playbook each item runs, how many
 * children at once (`all at once` without a cap) and, when it has any, how
 * many failed children it tolerates. Pure.
 */
export function describeMap(node: MapNode): string {
  const items = node.items.replace(/^\s*\{\{\s*/, '').replace(/\s*\}\}\s*$/, '');
  const tolerate = node.tolerate > 0 ? ` · tolerates ${node.tolerate} failure${node.tolerate === 1 ? '' : 's'}` : '';
  return `map ${items} → ${node.playbook} (${node.max_concurrency === undefined ? 'all at once' : `≤ ${node.max_concurrency}`})${tolerate}`;
}

/** Whether a node's attempt is child runs (`playbook`, `map`; SPEC §12) rather than a dispatch. Pure. */
export function isChildRunNode(node: PlaybookNode): node is Extract<PlaybookNode, { type: 'playbook' | 'map' }> {
  return node.type === 'playbook' || node.type === 'map';
}

/** `mode == "full"`, `ok != false`, `report exists`, `tier in ["a","b"]`, `done is truthy`. Pure. */
export function describeCondition(condition: EdgeCondition): string {
  const { field } = condition;
  if ('equals' in condition) return `${field} == ${JSON.stringify(condition.equals)}`;
  if ('notEquals' in condition) return `${field} != ${JSON.stringify(condition.notEquals)}`;
  if ('exists' in condition) return condition.exists ? `${field} exists` : `${field} is missing`;
  if ('in' in condition) return `${field} in ${JSON.stringify(condition.in)}`;
  return condition.truthy ? `${field} is truthy` : `${field} is falsy`;
}

/** Text safe inside a Mermaid label: one line, no quotes, semicolons or braces that its parser reads as syntax. */
function label(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/"/g, "'").replace(/;/g, ',').replace(/[{]/g, '(').replace(/[}]/g, ')').trim();
}

/** A JSON string made safe for a `//` comment (no line terminators). */
function commentSafe(text: string): string {
  return text.replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}
