/**
 * Text renderings of a playbook for `cantbook export`: an XState module that
 * Stately Studio imports, and a Mermaid state diagram. Pure: no I/O.
 */
import { outgoingEdges } from '../index.js';
import type { EdgeCondition, PlaybookDefinition, PlaybookEdge, PlaybookNode } from '../index.js';

/** The cap used for nodes without `max_iterations` (the runtime's default). */
const DEFAULT_MAX_ITERATIONS = 3;

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
 *
 * Pure.
 *
 * @example
 * renderStatelyModule({ definition, sourceHash }, compilePlaybook(definition).config);
 */
export function renderStatelyModule(subject: ExportSubject, config: unknown): string {
  const { definition, sourceHash } = subject;
  return [
    `// Playbook ${commentSafe(JSON.stringify(definition.name))}, sourceHash ${sourceHash}`,
    '// Exported by `cantbook export --format stately`: paste into Stately Studio (Import from code).',
    '// Guards and the `apply` action are referenced by name with their params; cantbook implements them.',
    "import { createMachine } from 'xstate';",
    '',
    `export const machine = createMachine(${JSON.stringify(config, null, 2)});`,
    '',
  ].join('\n');
}

const MERMAID_RESERVED = new Set([
  'state', 'note', 'end', 'direction', 'classdef', 'class', 'style', 'as', 'left', 'right', 'of', 'fork', 'join', 'choice',
  'default', 'click', 'accdescr', 'acctitle', 'hide', 'scale',
]);
const FINALS = ['completed', 'failed', 'exceeded_iteration_cap'] as const;

/**
 * The playbook as a Mermaid `stateDiagram-v2`: one state per node (with its
 * type and agent or command), the entry, every edge (guarded edges labelled
 * with their condition, the default edge `otherwise`), retries and
 * escalations on failure, approval outcomes, and the final states
 * `completed`, `failed` and `exceeded_iteration_cap`.
 *
 * Pure. Caps assume the runtime's default of 3 for nodes without
 * `max_iterations`.
 */
export function renderMermaid(subject: ExportSubject): string {
  const { definition } = subject;
  const ids = mermaidIds(definition.nodes);
  const idOf = (nodeId: string): string => ids.get(nodeId) ?? nodeId;
  const lines = ['stateDiagram-v2', `  %% playbook ${label(definition.name)} · sourceHash ${subject.sourceHash}`];

  for (const node of definition.nodes) {
    const id = idOf(node.id);
    if (id !== node.id) lines.push(`  state "${label(node.id)}" as ${id}`);
    lines.push(`  ${id} : ${label(describeNode(node))}`);
  }
  const successors = successorsOf(definition);
  const entry = definition.nodes.find((node) => !definition.nodes.some((other) => (successors.get(other.id) ?? []).some((edge) => edge.to === node.id)));
  if (entry) lines.push(`  [*] --> ${idOf(entry.id)}`);

  const arrow = (from: string, to: string, text?: string): void => {
    lines.push(`  ${from} --> ${to}${text === undefined ? '' : ` : ${label(text)}`}`);
  };
  for (const node of definition.nodes) {
    const id = idOf(node.id);
    const edges = successors.get(node.id) ?? [];
    const branching = edges.some((edge) => edge.when !== undefined);
    const leave = node.type === 'approval' ? 'approved' : undefined;
    for (const edge of edges) {
      const text = edge.when !== undefined ? `when ${describeCondition(edge.when)}` : branching ? 'otherwise' : undefined;
      arrow(id, idOf(edge.to), leave !== undefined && text !== undefined ? `${leave}, ${text}` : (leave ?? text));
    }
    if (edges.length === 0) arrow(id, 'completed', leave);
    else if (branching && !edges.some((edge) => edge.when === undefined)) arrow(id, 'failed', 'no branch matches');
    if (node.type === 'approval') {
      arrow(id, 'failed', node.timeout === undefined ? 'rejected' : `rejected, or expired after ${node.timeout}`);
      continue;
    }
    const cap = node.on_failure?.max_iterations ?? DEFAULT_MAX_ITERATIONS;
    const inject = node.on_failure?.inject_into;
    if (inject !== undefined) {
      if (cap > 0) arrow(id, idOf(inject), `on failure (at most ${times(cap)})`);
      arrow(id, 'exceeded_iteration_cap', cap === 0 ? 'on failure' : `on failure after ${cap} escalation${cap === 1 ? '' : 's'}`);
    } else {
      const attempts = Math.max(cap, 1);
      if (attempts > 1) arrow(id, id, `on failure, retry (${attempts} attempts in all)`);
      arrow(id, 'exceeded_iteration_cap', attempts === 1 ? 'on failure' : `after ${attempts} failed attempts`);
    }
  }
  for (const final of FINALS) lines.push(`  ${final} --> [*]`);
  return `${lines.join('\n')}\n`;
}

/** Outgoing edges per node, as the runtime reads them (explicit edges, then `depends`). */
export function successorsOf(definition: PlaybookDefinition): Map<string, PlaybookEdge[]> {
  return new Map(definition.nodes.map((node) => [node.id, outgoingEdges(definition, node.id)]));
}

/** Node ids as Mermaid can take them: plain identifiers stay; anything else gets `node_<n>` and a label. */
function mermaidIds(nodes: readonly PlaybookNode[]): Map<string, string> {
  const ids = new Map<string, string>();
  const taken = new Set<string>(FINALS);
  nodes.forEach((node) => {
    if (/^[A-Za-z][A-Za-z0-9_]*$/.test(node.id) && !MERMAID_RESERVED.has(node.id.toLowerCase()) && !taken.has(node.id)) {
      ids.set(node.id, node.id);
      taken.add(node.id);
    }
  });
  nodes.forEach((node, index) => {
    if (ids.has(node.id)) return;
    let candidate = `node_${index + 1}`;
    while (taken.has(candidate)) candidate = `${candidate}_`;
    ids.set(node.id, candidate);
    taken.add(candidate);
  });
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
  }
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

function times(n: number): string {
  return n === 1 ? 'once' : `${n} times`;
}

/** Text safe inside a Mermaid label: one line, no quotes, semicolons or braces that its parser reads as syntax. */
function label(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/"/g, "'").replace(/;/g, ',').replace(/[{]/g, '(').replace(/[}]/g, ')').trim();
}

/** A JSON string made safe for a `//` comment (no line terminators). */
function commentSafe(text: string): string {
  return text.replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}
