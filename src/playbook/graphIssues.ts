/**
 * Whole-playbook rules the schema cannot express: unique ids and input names,
 * references, `{{inputs.x}}` templates, one entry, no cycles, reachability and
 * at most one default edge per node, checked for the top level and for every
 * branch of a parallel group alike; references never cross a branch boundary.
 * Also the rules added after runs could start without them (context templates in
 * `cwd`/`env`, contracts no check could hold, handlers that cannot act): they
 * live here, not in the schema, so a pinned text can be read without them.
 * And the rules of child-run nodes (SPEC §12): a `map`'s `items` names one list,
 * its `item_input` is an identifier its `inputs` do not also set, and a
 * `playbook:` reference is never templated.
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
  I_CONTRACT_NOT_ALLOWED, I_CYCLE, I_DUPLICATE_ID, I_DUPLICATE_INPUT, I_EXIT_CODE_NOT_ALLOWED, I_HANDLER_NOT_ALLOWED, I_INJECT_SELF,
  I_MAP_ITEM_INPUT_INVALID, I_MAP_ITEMS_INVALID, I_MULTIPLE_DEFAULT_EDGES, I_MULTIPLE_ENTRIES, I_NESTING_DEPTH, I_NO_ENTRY,
  I_TEMPLATE_NOT_ALLOWED, I_UNKNOWN_INPUT, I_UNKNOWN_REF, I_UNREACHABLE, I_BRANCH_BOUNDARY,
} from './issues.js';
import type { DraftIssue } from './issues.js';
import { didYouMean } from './suggest.js';
import { hasTemplate, templateContextRefs, templateInputRefs } from './templates.js';

type Path = (string | number)[];
type Loose = Record<string, unknown>;

interface LooseNode {
  id: string;
  depends: string[];
  /** Index in its scope's `nodes` list. */
  index: number;
  /** Path of the node's map in the document. */
  path: Path;
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

const issue = (code: DraftIssue['code'], path: Path, message: string, at: DraftIssue['at'] = 'value'): DraftIssue => ({ code, path, message, at });

/** How deep parallel groups may nest (SPEC §9). */
export const MAX_GROUP_NESTING = 8;

/**
 * One graph of the playbook: the top level or a branch of a parallel group.
 * Each is checked under the same rules; references never cross between them.
 */
interface LooseScope {
  /** The branch id, or '' for the top level. */
  id: string;
  /** Path of the map holding `nodes` and `edges` ([] for the document). */
  path: Path;
  raw: Loose;
  nodes: LooseNode[];
}

/** Every scope in document order, each with its nodes; first occurrence of each id wins, later ones are reported. */
function collectScopes(raw: Loose, issues: DraftIssue[]): LooseScope[] {
  const firstAt = new Map<string, Path>();
  const scopes: LooseScope[] = [];
  const claim = (id: string, path: Path): boolean => {
    const first = firstAt.get(id);
    if (first !== undefined) {
      issues.push(issue(I_DUPLICATE_ID, [...path, 'id'], `${formatPath([...path, 'id'])}: duplicate id ${quote(id)}, already used by ${formatPath(first)} (node and branch ids are unique in the whole playbook)`));
      return false;
    }
    firstAt.set(id, path);
    return true;
  };
  const visit = (scopeId: string, scopePath: Path, scopeRaw: Loose, depth: number): void => {
    const scope: LooseScope = { id: scopeId, path: scopePath, raw: scopeRaw, nodes: [] };
    scopes.push(scope);
    const nested: (() => void)[] = [];
    listOf(scopeRaw['nodes']).forEach((item, index) => {
      const path: Path = [...scopePath, 'nodes', index];
      if (!isLoose(item) || !nonEmpty(item['id'])) return;
      if (!claim(item['id'], path)) return;
      scope.nodes.push({ id: item['id'], depends: [], index, path, raw: item });
      if (item['type'] !== 'parallel') return;
      if (depth + 1 > MAX_GROUP_NESTING) {
        issues.push(issue(I_NESTING_DEPTH, [...path, 'branches'], `${formatPath([...path, 'branches'])}: parallel groups nest ${depth + 1} levels deep here; at most ${MAX_GROUP_NESTING} are allowed`));
        return;
      }
      listOf(item['branches']).forEach((branch, b) => {
        const branchPath: Path = [...path, 'branches', b];
        if (!isLoose(branch) || !nonEmpty(branch['id'])) return;
        if (!claim(branch['id'], branchPath)) return;
        const id = branch['id'];
        nested.push(() => visit(id, branchPath, branch, depth + 1));
      });
    });
    for (const next of nested) next();
  };
  visit('', [], raw, 0);
  return scopes;
}

/**
 * Reports unknown ids in a scope's edges, depends and inject_into, and ids of
 * another scope (a branch boundary crossed); returns the edges whose ends both
 * belong to the scope.
 */
function checkReferences(scope: LooseScope, scopeOfId: ReadonlyMap<string, string>, issues: DraftIssue[]): LooseEdge[] {
  const ids = new Set(scope.nodes.map((node) => node.id));
  const known = quoteList(scope.nodes.map((node) => node.id));
  const where = scope.id === '' ? 'the top level' : `branch ${quote(scope.id)}`;
  /** True when `id` is a node of this scope; otherwise reports why not. */
  const resolves = (path: Path, what: string, id: string): boolean => {
    if (ids.has(id)) return true;
    const other = scopeOfId.get(id);
    if (other !== undefined) {
      const there = other === '' ? 'the top level' : `branch ${quote(other)}`;
      issues.push(issue(I_BRANCH_BOUNDARY, path, `${formatPath(path)}: ${what} ${quote(id)} is a node of ${there}, not of ${where}; edges, depends and inject_into never cross a branch boundary`));
    } else {
      issues.push(issue(I_UNKNOWN_REF, path, `${formatPath(path)}: ${what} ${quote(id)} is not a node id${didYouMean(id, scope.nodes.map((node) => node.id))}; known ids: ${known}`));
    }
    return false;
  };

  const edges: LooseEdge[] = [];
  listOf(scope.raw['edges']).forEach((item, index) => {
    if (!isLoose(item)) return;
    const { from, to } = item;
    const path: Path = [...scope.path, 'edges', index];
    let usable = nonEmpty(from) && nonEmpty(to);
    if (nonEmpty(from) && !resolves([...path, 'from'], 'edge source', from)) usable = false;
    if (nonEmpty(to) && !resolves([...path, 'to'], 'edge target', to)) usable = false;
    if (usable && nonEmpty(from) && nonEmpty(to)) {
      edges.push({ from, to, path, ...(item['when'] === undefined ? {} : { when: item['when'] }) });
    }
  });

  for (const node of scope.nodes) {
    listOf(node.raw['depends']).forEach((dep, k) => {
      if (nonEmpty(dep) && resolves([...node.path, 'depends', k], 'depends on', dep)) node.depends.push(dep);
    });
    const onFailure = node.raw['on_failure'];
    const target = isLoose(onFailure) ? onFailure['inject_into'] : undefined;
    const path: Path = [...node.path, 'on_failure', 'inject_into'];
    if (!nonEmpty(target)) continue;
    if (target === node.id) {
      issues.push(issue(I_INJECT_SELF, path, `${formatPath(path)}: node ${quote(node.id)} cannot inject into itself; omit inject_into to retry in place, or name another node`));
    } else {
      resolves(path, 'inject_into', target);
    }
  }
  return edges;
}

/** Reports duplicate input names and `{{inputs.x}}` templates naming undeclared inputs. */
function checkInputs(raw: Loose, scopes: readonly LooseScope[], issues: DraftIssue[]): void {
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
      issues.push(issue(I_UNKNOWN_INPUT, path, `${formatPath(path)}: template {{inputs.${name}}} names input ${quote(name)}, which is not declared${didYouMean(name, [...declared.keys()])}; declared inputs: ${quoteList([...declared.keys()])}`));
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
  for (const { raw: node, path: base } of scopes.flatMap((scope) => scope.nodes)) {
    if (node['type'] === 'approval') check([...base, 'prompt'], node['prompt']);
    if (node['type'] === 'agentic' || childRunTypes.has(node['type'])) checkEach([...base, 'inputs'], node['inputs']);
    if (node['type'] === 'map') check([...base, 'items'], node['items']);
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
  }
}

/** Node types whose attempt is child runs (SPEC §12). */
const childRunTypes: ReadonlySet<unknown> = new Set(['playbook', 'map']);

/** Node types that run no command, so have no exit code (every type but deterministic; approval refuses any contract). */
const withoutExitCode: ReadonlySet<unknown> = new Set(['agentic', 'parallel', ...childRunTypes]);

/**
 * Reports contracts no check could hold and handlers that cannot act (SPEC §13):
 * `requires`/`ensures` on an approval node, a `contract` on an explicit edge
 * leaving one, `ensures.exitCode` on a node that runs no command, and
 * `inject_hint` on `iteration_cap_exceeded`.
 */
function checkContracts(raw: Loose, scopes: readonly LooseScope[], issues: DraftIssue[]): void {
  for (const scope of scopes) {
    const gates = new Set<string>();
    for (const { id, raw: node, path } of scope.nodes) {
      if (node['type'] === 'approval') {
        gates.add(id);
        for (const key of ['requires', 'ensures'] as const) {
          if (!Object.hasOwn(node, key)) continue;
          const at: Path = [...path, key];
          issues.push(issue(I_CONTRACT_NOT_ALLOWED, at, `${formatPath(at)}: approval node ${quote(id)} is not dispatched and produces no output, so it takes no requires or ensures; put the contract on the node before the gate (its ensures) or after it (its requires)`, 'key'));
        }
      }
      const ensures = node['ensures'];
      if (withoutExitCode.has(node['type']) && isLoose(ensures) && Object.hasOwn(ensures, 'exitCode')) {
        const at: Path = [...path, 'ensures', 'exitCode'];
        issues.push(issue(I_EXIT_CODE_NOT_ALLOWED, at, `${formatPath(at)}: ${String(node['type'])} node ${quote(id)} runs no command, and only a command has an exit code; keep exitCode for deterministic nodes and check this node's output with ensures.outputFiles or ensures.schema`, 'key'));
      }
    }
    listOf(scope.raw['edges']).forEach((edge, index) => {
      if (!isLoose(edge) || !Object.hasOwn(edge, 'contract') || !nonEmpty(edge['from']) || !gates.has(edge['from'])) return;
      const at: Path = [...scope.path, 'edges', index, 'contract'];
      issues.push(issue(I_CONTRACT_NOT_ALLOWED, at, `${formatPath(at)}: the edge leaves approval node ${quote(edge['from'])}, and the gate changes nothing but __lastApproval, so a contract here checks nothing the edge into the gate could not; put the contract on the edge into the gate, or on the next node's requires`, 'key'));
    });
  }
  listOf(raw['error_handlers']).forEach((handler, index) => {
    if (!isLoose(handler)) return;
    if (handler['timeout'] !== undefined && handler['action'] !== 'hitl_escalate') {
      const at: Path = ['error_handlers', index, 'timeout'];
      issues.push(issue(I_HANDLER_NOT_ALLOWED, at, `${formatPath(at)}: only a hitl_escalate handler opens a gate that can expire; remove timeout or use hitl_escalate`));
    }
    if (handler['on'] !== 'iteration_cap_exceeded' || handler['action'] !== 'inject_hint') return;
    const at: Path = ['error_handlers', index, 'action'];
    issues.push(issue(I_HANDLER_NOT_ALLOWED, at, `${formatPath(at)}: inject_hint cannot answer iteration_cap_exceeded: a node that reached its cap has no attempt left to read a hint; use hitl_escalate (a human may grant another round) or abort`));
  });
}

const identifier = '[A-Za-z_][A-Za-z0-9_]*';
const identifierPattern = new RegExp(`^${identifier}$`);
/** Exactly one `{{path}}`, whitespace inside the braces allowed, nothing around it. */
const mapItemsPattern = new RegExp(`^\\{\\{\\s*(${identifier}(?:\\.${identifier})*)\\s*\\}\\}$`);
const anyPlaceholder = /\{\{[^{}]*\}\}/g;

/** Where a `map` node's list comes from: an input or the run context, by dotted path. */
export interface MapItemsPath {
  source: 'inputs' | 'context';
  path: string[];
}

/**
 * What a `map` node's `items` reads (SPEC §12): `{{inputs.tasks}}` is
 * `{source: 'inputs', path: ['tasks']}`, `{{ plan.tasks }}` is `{source:
 * 'context', path: ['plan', 'tasks']}`, read the way templates read them.
 *
 * Pure. Returns `null` unless `items` is exactly one template of a dotted path
 * of identifiers with nothing around it (the parse rule `I_MAP_ITEMS_INVALID`),
 * so the runtime reads the list as a value, never as rendered text.
 *
 * @example mapItemsPath('{{tasks}}') // {source: 'context', path: ['tasks']}
 */
export function mapItemsPath(items: string): MapItemsPath | null {
  const match = typeof items === 'string' ? mapItemsPattern.exec(items) : null;
  const segments = match?.[1]?.split('.');
  if (segments === undefined) return null;
  if (segments.length > 1 && segments[0] === 'inputs') return { source: 'inputs', path: segments.slice(1) };
  return { source: 'context', path: segments };
}

/** Why `items` is not one template naming a list, in words, for the issue message. */
function whyNotItems(items: string): string {
  const count = items.match(anyPlaceholder)?.length ?? 0;
  if (count === 0) return 'it holds no template, and literal text is not a list';
  if (count > 1) return `it holds ${count} templates; a map runs over one list`;
  if (items.replace(anyPlaceholder, '').trim() !== '' || items.trim() !== items) return 'it has text around the template, which would make it a string, not a list';
  return 'the template is not a dotted path of identifiers';
}

/**
 * Reports the rules of `playbook` and `map` nodes (SPEC §12) the schema cannot
 * state: a `map`'s `items` names one list and its `item_input` is an
 * identifier its `inputs` do not also set; neither node's `playbook:`
 * reference holds a template, since every text a run can start is resolved and
 * pinned before its first event, long before any context exists.
 */
function checkChildRuns(scopes: readonly LooseScope[], issues: DraftIssue[]): void {
  for (const { id, raw: node, path } of scopes.flatMap((scope) => scope.nodes)) {
    if (!childRunTypes.has(node['type'])) continue;
    const ref = node['playbook'];
    if (typeof ref === 'string' && hasTemplate(ref)) {
      const at: Path = [...path, 'playbook'];
      issues.push(issue(I_TEMPLATE_NOT_ALLOWED, at, `${formatPath(at)}: a playbook reference is never templated: every playbook a run can start is resolved and pinned before the run starts, before any context exists; name the playbook literally (e.g. "ivtr.cantbook") and pass values through inputs`));
    }
    if (node['type'] !== 'map') continue;
    const items = node['items'];
    if (nonEmpty(items) && mapItemsPath(items) === null) {
      const at: Path = [...path, 'items'];
      issues.push(issue(I_MAP_ITEMS_INVALID, at, `${formatPath(at)}: map node ${quote(id)} needs items to name a list in the context as exactly one template, e.g. "{{tasks}}", "{{plan.tasks}}" or "{{inputs.tasks}}"; found ${quote(items)}: ${whyNotItems(items)}`));
    }
    checkItemInput(id, node, path, issues);
  }
}

/** `item_input` must be an identifier (it names a child input) that the node's `inputs` do not also set. */
function checkItemInput(id: string, node: Loose, path: Path, issues: DraftIssue[]): void {
  const name = node['item_input'];
  if (!nonEmpty(name)) return; // absent or empty: the schema reports it
  const at: Path = [...path, 'item_input'];
  if (!identifierPattern.test(name)) {
    issues.push(issue(I_MAP_ITEM_INPUT_INVALID, at, `${formatPath(at)}: map node ${quote(id)} names its item input ${quote(name)}, which is not an identifier (a letter or "_", then letters, digits or "_"); it must be the name of an input the child playbook declares, such as "taskId"`));
  } else if (isLoose(node['inputs']) && Object.hasOwn(node['inputs'], name)) {
    issues.push(issue(I_MAP_ITEM_INPUT_INVALID, at, `${formatPath(at)}: map node ${quote(id)} gives child input ${quote(name)} each item, and its inputs set ${quote(name)} too; remove ${quote(name)} from inputs, or name another input in item_input`));
  }
}

/** The file position of an edge: the explicit edge, or the `depends` entry it came from. */
function edgePath(edge: LooseEdge | DependsEdge, nodes: readonly LooseNode[]): Path {
  if (!('dependsOf' in edge)) return edge.path;
  const node = nodes[edge.dependsOf.nodeIndex];
  return [...(node?.path ?? ['nodes', 0]), 'depends', edge.dependsOf.dependsIndex];
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
function checkShape(scope: LooseScope, edges: readonly LooseEdge[], issues: DraftIssue[]): void {
  const nodes = scope.nodes;
  const where = scope.id === '' ? '' : ` in branch ${quote(scope.id)}`;
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
    issues.push({ code: I_NO_ENTRY, path: [...scope.path, 'nodes'], at: 'key', message: `no entry node${where}: every node has a predecessor (an edge or depends pointing at it); exactly one node must have none` });
  }
  if (entries.length > 1) {
    const second = byId.get(entries[1] ?? '');
    issues.push(issue(I_MULTIPLE_ENTRIES, second?.path ?? [...scope.path, 'nodes', 0], `${entries.length} entry nodes${where} (nodes without predecessors): ${quoteList(entries)}; exactly one is allowed: connect the others with edges or depends`));
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
      issues.push(issue(I_UNREACHABLE, node.path, `node ${quote(node.id)} cannot be reached from the entry node ${quote(entry)}${where}`));
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
  const scopes = collectScopes(raw, issues);
  const scopeOfId = new Map(scopes.flatMap((scope) => scope.nodes.map((node) => [node.id, scope.id] as const)));
  for (const scope of scopes) checkShape(scope, checkReferences(scope, scopeOfId, issues), issues);
  checkInputs(raw, scopes, issues);
  checkContracts(raw, scopes, issues);
  checkChildRuns(scopes, issues);
  return issues;
}
