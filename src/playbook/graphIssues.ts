/**
 * Whole-playbook rules the schema cannot express: unique ids and input names,
 * references, `{{inputs.x}}` templates, one entry, no cycles, reachability and
 * at most one default edge per node.
 *
 * These checks read the plain YAML value leniently, so they run even when the
 * schema found problems: every node with a usable id and every edge with usable
 * ends takes part, and the rest is left to the schema issues.
 */
import { quote, quoteList } from './describeValue.js';
import { formatPath } from './formatIssues.js';
import { adjacency, entryNodeIds } from './graph.js';
import type { DependsEdge, GraphShape } from './graph.js';
import {
  I_CYCLE, I_DUPLICATE_ID, I_DUPLICATE_INPUT, I_INJECT_SELF, I_MULTIPLE_DEFAULT_EDGES,
  I_MULTIPLE_ENTRIES, I_NO_ENTRY, I_TEMPLATE_NOT_ALLOWED, I_UNKNOWN_INPUT, I_UNKNOWN_REF, I_UNREACHABLE,
} from './issues.js';
import type { DraftIssue } from './issues.js';
import { hasTemplate, templateContextRefs, templateInputRefs } from './templates.js';

type Path = (string | number)[];
type Loose = Record<string, unknown>;

interface LooseNode {
  id: string;
  depends: string[];
  /** Index in the file's `nodes` list. */
  index: number;
  raw: Loose;
}

interface LooseEdge {
  from: string;
  to: string;
  when?: unknown;
  path: Path;
}

const isLoose = (value: unknown): value is Loose => typeof value === 'object' && value !== null && !Array.isArray(value);
const listOf = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const nonEmpty = (value: unknown): value is string => typeof value === 'string' && value !== '';

const issue = (code: DraftIssue['code'], path: Path, message: string): DraftIssue => ({ code, path, message, at: 'value' });

/** First occurrence of each id wins; later ones are reported. */
function collectNodes(raw: Loose, issues: DraftIssue[]): LooseNode[] {
  const firstIndex = new Map<string, number>();
  const nodes: LooseNode[] = [];
  listOf(raw['nodes']).forEach((item, index) => {
    if (!isLoose(item) || !nonEmpty(item['id'])) return;
    const id = item['id'];
    const first = firstIndex.get(id);
    if (first !== undefined) {
      issues.push(issue(I_DUPLICATE_ID, ['nodes', index, 'id'], `nodes[${index}].id: duplicate node id ${quote(id)}, already used by nodes[${first}]`));
      return;
    }
    firstIndex.set(id, index);
    nodes.push({ id, depends: [], index, raw: item });
  });
  return nodes;
}

/** Reports unknown ids in edges, depends and inject_into; returns the edges whose ends both exist. */
function checkReferences(raw: Loose, nodes: LooseNode[], issues: DraftIssue[]): LooseEdge[] {
  const ids = new Set(nodes.map((node) => node.id));
  const known = quoteList(nodes.map((node) => node.id));
  const unknownRef = (path: Path, what: string, id: string): void => {
    issues.push(issue(I_UNKNOWN_REF, path, `${formatPath(path)}: ${what} ${quote(id)} is not a node id; known ids: ${known}`));
  };

  const edges: LooseEdge[] = [];
  listOf(raw['edges']).forEach((item, index) => {
    if (!isLoose(item)) return;
    const { from, to } = item;
    let usable = nonEmpty(from) && nonEmpty(to);
    if (nonEmpty(from) && !ids.has(from)) { unknownRef(['edges', index, 'from'], 'edge source', from); usable = false; }
    if (nonEmpty(to) && !ids.has(to)) { unknownRef(['edges', index, 'to'], 'edge target', to); usable = false; }
    if (usable && nonEmpty(from) && nonEmpty(to)) {
      edges.push({ from, to, path: ['edges', index], ...(item['when'] === undefined ? {} : { when: item['when'] }) });
    }
  });

  for (const node of nodes) {
    listOf(node.raw['depends']).forEach((dep, k) => {
      if (!nonEmpty(dep)) return;
      if (ids.has(dep)) node.depends.push(dep);
      else unknownRef(['nodes', node.index, 'depends', k], 'depends on', dep);
    });
    const onFailure = node.raw['on_failure'];
    const target = isLoose(onFailure) ? onFailure['inject_into'] : undefined;
    const path: Path = ['nodes', node.index, 'on_failure', 'inject_into'];
    if (!nonEmpty(target)) continue;
    if (target === node.id) {
      issues.push(issue(I_INJECT_SELF, path, `${formatPath(path)}: node ${quote(node.id)} cannot inject into itself; omit inject_into to retry in place, or name another node`));
    } else if (!ids.has(target)) {
      unknownRef(path, 'inject_into', target);
    }
  }
  return edges;
}

/** Reports duplicate input names and `{{inputs.x}}` templates naming undeclared inputs. */
function checkInputs(raw: Loose, issues: DraftIssue[]): void {
  if (raw['inputs'] !== undefined && !Array.isArray(raw['inputs'])) return; // the schema reports it; names unknown
  const declared = new Map<string, number>();
  listOf(raw['inputs']).forEach((item, index) => {
    const name = isLoose(item) ? item['name'] : undefined;
    if (!nonEmpty(name)) return;
    const first = declared.get(name);
    if (first === undefined) declared.set(name, index);
    else issues.push(issue(I_DUPLICATE_INPUT, ['inputs', index, 'name'], `inputs[${index}].name: duplicate input name ${quote(name)}, already declared by inputs[${first}]`));
  });

  const check = (path: Path, text: unknown): void => {
    if (typeof text !== 'string') return;
    for (const name of templateInputRefs(text)) {
      if (declared.has(name)) continue;
      issues.push(issue(I_UNKNOWN_INPUT, path, `${formatPath(path)}: template {{inputs.${name}}} names input ${quote(name)}, which is not declared; declared inputs: ${quoteList([...declared.keys()])}`));
    }
  };
  // SPEC §2 (v2 trust): what program runs, and where, never depends on what an agent wrote into the context.
  const inputsOnly = (path: Path, text: unknown): void => {
    if (typeof text !== 'string') return;
    for (const ref of templateContextRefs(text)) {
      issues.push(issue(I_TEMPLATE_NOT_ALLOWED, path, `${formatPath(path)}: template {{${ref}}} reads the run context, which agents write; a deterministic node's cwd and env may only use {{inputs.<name>}}`));
    }
  };
  const checkEach = (base: Path, value: unknown): void => {
    if (Array.isArray(value)) value.forEach((text, k) => check([...base, k], text));
    else if (isLoose(value)) for (const [key, text] of Object.entries(value)) check([...base, key], text);
  };
  listOf(raw['nodes']).forEach((node, index) => {
    if (!isLoose(node)) return;
    const base: Path = ['nodes', index];
    if (node['type'] === 'approval') check([...base, 'prompt'], node['prompt']);
    if (node['type'] === 'agentic') checkEach([...base, 'inputs'], node['inputs']);
    if (node['type'] === 'deterministic') {
      checkEach([...base, 'args'], node['args']);
      check([...base, 'cwd'], node['cwd']);
      checkEach([...base, 'env'], node['env']);
      inputsOnly([...base, 'cwd'], node['cwd']);
      if (isLoose(node['env'])) for (const [key, text] of Object.entries(node['env'])) inputsOnly([...base, 'env', key], text);
      if (typeof node['command'] === 'string' && hasTemplate(node['command'])) {
        issues.push(issue(I_TEMPLATE_NOT_ALLOWED, [...base, 'command'], `${formatPath([...base, 'command'])}: a command is never templated (it would run as written, braces included); name the program literally and pass values in args`));
      }
    }
  });
}

/** The file position of an edge: the explicit edge, or the `depends` entry it came from. */
function edgePath(edge: LooseEdge | DependsEdge, nodes: readonly LooseNode[]): Path {
  if (!('dependsOf' in edge)) return edge.path;
  const node = nodes[edge.dependsOf.nodeIndex];
  return ['nodes', node?.index ?? 0, 'depends', edge.dependsOf.dependsIndex];
}

/** Reports every back edge found by an iterative depth-first search, with the cycle it closes. */
function checkCycles(nodes: readonly LooseNode[], out: Map<string, (LooseEdge | DependsEdge)[]>, issues: DraftIssue[]): void {
  const done = new Set<string>();
  const onStack = new Map<string, number>();
  for (const start of nodes) {
    if (done.has(start.id)) continue;
    const stack = [{ id: start.id, next: 0 }];
    onStack.set(start.id, 0);
    while (stack.length > 0) {
      const frame = stack[stack.length - 1];
      if (frame === undefined) break;
      const edge = out.get(frame.id)?.[frame.next];
      if (edge === undefined) {
        stack.pop();
        onStack.delete(frame.id);
        done.add(frame.id);
        continue;
      }
      frame.next += 1;
      const depth = onStack.get(edge.to);
      if (depth !== undefined) {
        const cycle = [...stack.slice(depth).map((f) => f.id), edge.to];
        issues.push(issue(I_CYCLE, edgePath(edge, nodes), `cycle ${cycle.map(quote).join(' -> ')} (edges and depends together); playbooks are acyclic: express retries with on_failure.inject_into`));
      } else if (!done.has(edge.to)) {
        onStack.set(edge.to, stack.length);
        stack.push({ id: edge.to, next: 0 });
      }
    }
  }
}

/** Reports a missing or ambiguous entry, unreachable nodes and nodes with several default edges. */
function checkShape(nodes: readonly LooseNode[], edges: readonly LooseEdge[], issues: DraftIssue[]): void {
  const graph: GraphShape<LooseEdge> = { nodes, edges };
  const out = adjacency(graph);

  for (const node of nodes) {
    const defaults = (out.get(node.id) ?? []).filter((edge) => 'dependsOf' in edge || edge.when === undefined);
    const second = defaults[1];
    if (second !== undefined) {
      issues.push(issue(I_MULTIPLE_DEFAULT_EDGES, edgePath(second, nodes), `node ${quote(node.id)} has ${defaults.length} unguarded outgoing edges (to ${quoteList(defaults.map((e) => e.to))}); at most one may omit "when" (the default branch), and depends counts as an unguarded edge`));
    }
  }

  checkCycles(nodes, out, issues);

  const entries = entryNodeIds(graph);
  const byId = new Map(nodes.map((node) => [node.id, node]));
  if (entries.length === 0 && nodes.length > 0) {
    issues.push({ code: I_NO_ENTRY, path: ['nodes'], at: 'key', message: 'no entry node: every node has a predecessor (an edge or depends pointing at it); exactly one node must have none' });
  }
  if (entries.length > 1) {
    const second = byId.get(entries[1] ?? '');
    issues.push(issue(I_MULTIPLE_ENTRIES, ['nodes', second?.index ?? 0], `${entries.length} entry nodes (nodes without predecessors): ${quoteList(entries)}; exactly one is allowed: connect the others with edges or depends`));
  }
  const [entry] = entries;
  if (entry === undefined || entries.length > 1) return;

  const reached = new Set([entry]);
  const queue = [entry];
  for (let i = 0; i < queue.length; i += 1) {
    for (const edge of out.get(queue[i] ?? '') ?? []) {
      if (!reached.has(edge.to)) { reached.add(edge.to); queue.push(edge.to); }
    }
  }
  for (const node of nodes) {
    if (!reached.has(node.id)) {
      issues.push(issue(I_UNREACHABLE, ['nodes', node.index], `node ${quote(node.id)} cannot be reached from the entry node ${quote(entry)}`));
    }
  }
}

/**
 * Checks the graph-wide rules over the plain value of a playbook document.
 *
 * Pure; never throws, whatever the shape of `raw`. Returns the issues found
 * (empty when the graph is sound).
 */
export function graphIssues(raw: Loose): DraftIssue[] {
  const issues: DraftIssue[] = [];
  const nodes = collectNodes(raw, issues);
  const edges = checkReferences(raw, nodes, issues);
  checkInputs(raw, issues);
  checkShape(nodes, edges, issues);
  return issues;
}
