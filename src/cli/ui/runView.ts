/**
 * What the web viewer shows of a run, as JSON: the playbook's graph (nodes and
 * transitions between them) and, for every event of the log, the state the
 * fold reached. Pure: built from a parsed playbook and a replayed run.
 */
import { activeNodes, createPlaybookModel, decideFailure, DEFAULT_MAX_ITERATIONS, runStatusOf } from '../../index.js';
import type { ActiveNode, PlaybookDefinition, PlaybookModel, PlaybookNode, RunEvent, RunSnapshot } from '../../index.js';
import { describeMap, edgeCondition, failurePathsOf } from '../exportFormats.js';
import { oneLine } from '../output.js';
import { failureFlags } from '../queryCommands.js';

/** The id of the drawn final state `completed` (not an identifier, so it never clashes with a node id). */
export const COMPLETED_NODE = '@completed';

/**
 * The ids of the drawn end states besides `completed`, one per final state of
 * the machine (compilePlaybook's `finalStates`); like `@completed`, never a node id.
 */
export const END_NODES = { failed: '@failed', exceeded_iteration_cap: '@exceeded_iteration_cap', cancelled: '@cancelled' } as const;

export interface GraphNode {
  id: string;
  type: PlaybookNode['type'] | 'final';
  /** One line: the agent, the command, the gate's policy, the group's branches, or what a child-run node runs. */
  detail: string;
  /** The playbook a `playbook` or `map` node runs as child runs (SPEC §12), as the file names it. */
  playbook?: string;
  description?: string;
  /** The branch that holds the node directly; absent at the top level. */
  branch?: string;
}

export interface GraphEdge {
  from: string;
  to: string;
  /**
   * `next`: taken on success (or approval); `retry`: a failure runs the node
   * again (`from === to`); `escalate`: a failure hands control back (`inject_into`);
   * `end`: a way the node ends the run in a failed end state (only in `endEdges`).
   * Both ends are always in the same graph (the top level, or one branch).
   */
  kind: 'next' | 'retry' | 'escalate' | 'end';
  label?: string;
  /** For an `end` edge: every way the node ends the run there, in words (the drawing's tooltip). */
  title?: string;
}

/** One branch of a parallel group: a lane of the group's box, holding its own nodes. */
export interface GraphBranch {
  id: string;
  /** The parallel node whose box holds the lane. */
  groupId: string;
  entry: string;
  description?: string;
  /** The branch's own nodes (a nested group's nodes are in that group's branches), in file order. */
  nodes: string[];
}

/**
 * The statechart at node level: one state per node (branches' nodes
 * included) plus `completed`, the edges within each graph, and the lanes of
 * every parallel group.
 */
export interface RunGraph {
  name: string;
  entry: string;
  nodes: GraphNode[];
  edges: GraphEdge[];
  /** Every branch of every group, groups in file order, branches in declaration order. */
  branches: GraphBranch[];
  /**
   * The run's other end states the playbook can reach (type `final`, ids in
   * `END_NODES`): `failed` and `cancelled` always (a host error or an operator
   * can end any run there), `exceeded_iteration_cap` when a node can exhaust its cap.
   */
  ends: GraphNode[];
  /** How top-level nodes end the run in `ends` (kind `end`): one edge per node and end state. */
  endEdges: GraphEdge[];
}

/** The run as it stood after one event. */
export interface StepView {
  seq: number;
  type: RunEvent['type'];
  at: string;
  /** One line saying what happened. */
  summary: string;
  /** The event's data (RunStarted's playbook text shortened to its size). */
  data: unknown;
  /** The machine's state value, e.g. `{active: {review: 'paused'}}` or `'completed'`. */
  value: unknown;
  /** The run's status, read from the machine state (running, paused, completed, failed, cancelled). */
  status: string;
  /** Every active node and its phase (several while a parallel group runs). */
  activeNodes: ActiveNode[];
  /** The node the machine is in, or where it stopped for a failed run; null before the first node and after completion. */
  node: string | null;
  /** The node's substate (ready, running, paused, approved, …), or the final state's name. */
  phase: string | null;
  /** Attempts so far at `node` in this run (0 before its first start). */
  attempt: number;
  /** The run context (inputs and node outputs). */
  context: unknown;
  error: unknown;
  /** Milliseconds since the previous event (null for the first, or when either time does not parse). */
  sincePreviousMs: number | null;
  /**
   * For `NodeSucceeded` and `NodeFailed`: how long the attempt took, from its
   * `NodeStarted` (null when the log has no start for it, e.g. an interrupted
   * attempt recorded by recovery without one).
   */
  attemptMs?: number | null;
}

/**
 * The playbook's graph: explicit edges and `depends` (as the runtime reads
 * them, from the playbook model), guarded edges labelled with their condition
 * and the default one `otherwise`, what a failure does (a retry loop, or an
 * escalation to the `inject_into` node, as the library's failure rule decides
 * with `maxIterationsDefault` for nodes without a cap), and an edge to
 * `completed` from every top-level node without successors.
 *
 * A parallel group is a node whose branches are lanes (`branches`); a branch's
 * nodes name it in `branch`, its edges stay inside it, and its last node has no
 * edge out (the branch ends there). The join is the group's own edge.
 * A `playbook` or `map` node is a node like the others whose `playbook` names
 * what it runs as child runs (SPEC §12).
 *
 * The other end states are in `ends`, with `endEdges` from the top-level
 * nodes that lead there as the compiled machine does (`endWaysOf`); inside a
 * branch a failure ends the branch, and the group decides. Pure.
 */
export function buildRunGraph(definition: PlaybookDefinition, maxIterationsDefault: number = DEFAULT_MAX_ITERATIONS): RunGraph {
  const model = createPlaybookModel(definition);
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  const branches: GraphBranch[] = [];

  const addGraph = (graph: readonly PlaybookNode[], branch: string | null): void => {
    for (const node of graph) {
      nodes.push({
        id: node.id,
        type: node.type,
        detail: detailOf(node),
        ...(node.type === 'playbook' || node.type === 'map' ? { playbook: node.playbook } : {}),
        ...(node.description === undefined ? {} : { description: oneLine(node.description, 200) }),
        ...(branch === null ? {} : { branch }),
      });
      const out = model.edges.get(node.id) ?? [];
      const branching = out.some((edge) => edge.when !== undefined);
      const approved = node.type === 'approval' ? 'approved' : undefined;
      for (const edge of out) {
        const label = [approved, edgeCondition(edge, branching)].filter((part) => part !== undefined).join(', ');
        edges.push({ from: node.id, to: edge.to, kind: 'next', ...(label === '' ? {} : { label }) });
      }
      if (out.length === 0 && branch === null) edges.push({ from: node.id, to: COMPLETED_NODE, kind: 'next', ...(approved === undefined ? {} : { label: approved }) });
      const failure = failurePathsOf(node, maxIterationsDefault);
      if (failure?.retries) edges.push({ from: node.id, to: node.id, kind: 'retry', label: `retry · ${failure.policy}` });
      if (failure?.escalatesTo) edges.push({ from: node.id, to: failure.escalatesTo, kind: 'escalate', label: `on failure · ${failure.policy}` });
      if (node.type !== 'parallel') continue;
      for (const child of node.branches) {
        const entry = model.branches.get(child.id)?.entry ?? child.nodes[0]?.id ?? '';
        branches.push({ id: child.id, groupId: node.id, entry, ...(child.description === undefined ? {} : { description: oneLine(child.description, 200) }), nodes: child.nodes.map((n) => n.id) });
        addGraph(child.nodes, child.id);
      }
    }
  };
  addGraph(definition.nodes, null);
  nodes.push({ id: COMPLETED_NODE, type: 'final', detail: 'completed' });

  const endEdges: GraphEdge[] = [];
  for (const node of definition.nodes) {
    for (const [end, ways] of endWaysOf(model, node, maxIterationsDefault)) {
      const labelled = ways.filter((way) => way.label);
      endEdges.push({
        from: node.id,
        to: END_NODES[end],
        kind: 'end',
        ...(labelled.length === 0 ? {} : { label: labelled.map((way) => way.text).join(' · ') }),
        title: ways.map((way) => way.text).join('; '),
      });
    }
  }
  const capped = endEdges.some((edge) => edge.to === END_NODES.exceeded_iteration_cap);
  const ends: GraphNode[] = [
    { id: END_NODES.failed, type: 'final', detail: 'failed', description: 'The run failed: a node ended it, or the host failed it.' },
    ...(capped ? [{ id: END_NODES.exceeded_iteration_cap, type: 'final' as const, detail: 'exceeded_iteration_cap', description: 'A node failed more often than its cap allows.' }] : []),
    { id: END_NODES.cancelled, type: 'final', detail: 'cancelled', description: 'An operator can cancel the run from any state.' },
  ];
  return { name: definition.name, entry: model.entry, nodes, edges, branches, ends, endEdges };
}

/** One way a node ends the run; `label` when it says more than the end state's name does. */
interface EndWay {
  text: string;
  label: boolean;
}

/**
 * How a top-level node can end the run, by end state, as the compiled
 * machine's transitions go (compilePlaybook's `ending`): a gate rejected or
 * expired, no or two branches matching, a failure not worth retrying
 * (`decideFailure` gives up), and the cap exhausted (`exceeded_iteration_cap`,
 * or a human's gate to reject when `iteration_cap_exceeded` escalates). Ways
 * that need a handler and a timeout or a contract are left out. Pure.
 */
function endWaysOf(model: PlaybookModel, node: PlaybookNode, maxIterationsDefault: number): Map<'failed' | 'exceeded_iteration_cap', EndWay[]> {
  const ways = new Map<'failed' | 'exceeded_iteration_cap', EndWay[]>();
  const add = (end: 'failed' | 'exceeded_iteration_cap', text: string, label: boolean): void => {
    ways.set(end, [...(ways.get(end) ?? []), { text, label }]);
  };
  if (node.type === 'approval') add('failed', node.timeout === undefined ? 'rejected' : 'rejected or expired', true);
  const out = model.edges.get(node.id) ?? [];
  const guarded = out.filter((edge) => edge.when !== undefined).length;
  if (guarded > 0 && !out.some((edge) => edge.when === undefined)) add('failed', 'no branch matches', true);
  if (guarded > 1) add('failed', 'two branches match', true);
  if (node.type === 'approval') return ways;
  if (node.type !== 'parallel' && decideFailure(node, { attempts: 1, escalations: 0, retryable: false }, maxIterationsDefault) === 'give_up') {
    add('failed', 'an attempt fails with retryable: false', false);
  }
  if (model.handlers.iteration_cap_exceeded?.action === 'hitl_escalate') add('failed', 'its cap is reached and a human rejects going on', true);
  else add('exceeded_iteration_cap', 'it fails more often than its cap allows', false);

  return ways;
}

/**
 * One StepView per event; `steps[i]` is the fold after `events[i]`. With
 * `afterSeq`, only the views of events after it (the durations still measured
 * from the whole log). Pure.
 */
export function buildStepViews(model: PlaybookModel, events: readonly RunEvent[], steps: readonly RunSnapshot[], afterSeq = 0): StepView[] {
  const maps = new Set([...model.nodes.values()].filter((node) => node.type === 'map').map((node) => node.id));
  const started = new Map<string, string>();
  const views: StepView[] = [];
  events.forEach((event, index) => {
    const previous = index === 0 ? undefined : events[index - 1];
    let attemptMs: number | null | undefined;
    if (event.type === 'NodeStarted') started.set(`${event.data.nodeId}:${event.data.attempt}`, event.at);
    if (event.type === 'NodeSucceeded' || event.type === 'NodeFailed') {
      const at = started.get(`${event.data.nodeId}:${event.data.attempt}`);
      attemptMs = at === undefined ? null : millisBetween(at, event.at);
    }
    if (event.seq <= afterSeq) return;
    const snapshot = steps[index] as RunSnapshot;
    const { node, phase } = positionOf(model, snapshot);
    views.push({
      seq: event.seq,
      type: event.type,
      at: event.at,
      summary: summarize(event, maps),
      data: publicData(event),
      value: snapshot.value,
      status: runStatusOf(model, snapshot),
      activeNodes: typeof snapshot.value === 'string' ? [] : activeNodes(model, snapshot.value),
      node,
      phase,
      attempt: node === null ? 0 : (snapshot.context.attempts[node] ?? 0),
      context: snapshot.context.context,
      error: snapshot.context.error,
      sincePreviousMs: previous === undefined ? null : millisBetween(previous.at, event.at),
      ...(attemptMs === undefined ? {} : { attemptMs }),
    });
  });
  return views;
}

/** `to - from` in milliseconds; null when either is not a time. Pure. */
export function millisBetween(from: string, to: string): number | null {
  const ms = Date.parse(to) - Date.parse(from);
  return Number.isFinite(ms) ? ms : null;
}

/**
 * An event's data as the viewer shows it: the pinned sources shortened (the
 * run's own and those of the playbooks it can start), and a
 * gate's `tokenHash` left out (the viewer's API never serves it). Pure.
 */
function publicData(event: RunEvent): unknown {
  if (event.type === 'RunStarted') {
    const shortened = (text: { source: string; sourceHash: string }): string => `(${text.source.length} characters, sha256 ${text.sourceHash})`;
    const { pinned } = event.data;
    // The texts a run can start as child runs (SPEC §12) are pinned whole: shortened like its own.
    const texts = pinned === undefined ? undefined : Object.fromEntries(Object.entries(pinned.texts).map(([id, text]) => [id, { ...text, source: shortened(text) }]));
    return { ...event.data, source: shortened(event.data), ...(pinned === undefined ? {} : { pinned: { ...pinned, texts } }) };
  }
  if (event.type === 'RunPaused') {
    const { tokenHash: _hidden, ...rest } = event.data;
    return rest;
  }
  return event.data;
}

/** Where a snapshot stands: the active node and its substate, or the final state (and, for failures, the node it failed at). */
export function positionOf(model: PlaybookModel, snapshot: RunSnapshot): { node: string | null; phase: string | null } {
  const value = snapshot.value;
  if (typeof value === 'string') {
    if (value === 'idle') return { node: null, phase: null };
    if (value === 'completed') return { node: COMPLETED_NODE, phase: value };
    return { node: snapshot.context.error?.nodeId ?? null, phase: value };
  }
  const active = activeNodes(model, value);
  const first = active.find((node) => model.nodes.get(node.nodeId)?.type !== 'parallel') ?? active[0];
  return first === undefined ? { node: null, phase: null } : { node: first.nodeId, phase: first.phase };
}

/**
 * One line per event, for the timeline. `maps`, the run's `map` node ids,
 * says which children have an item worth naming (default: none). Pure.
 */
export function summarize(event: RunEvent, maps: ReadonlySet<string> = new Set()): string {
  switch (event.type) {
    case 'RunStarted':
      return event.data.parent === undefined
        ? `run of '${event.data.playbookName}' started`
        : `run of '${event.data.playbookName}' started as a child of ${event.data.parent.runId} (node ${event.data.parent.nodeId})`;
    case 'NodeStarted':
      return `${event.data.nodeId} started (attempt ${event.data.attempt})`;
    case 'NodeSucceeded': {
      const keys = Object.keys(event.data.output);
      return `${event.data.nodeId} succeeded${keys.length === 0 ? '' : `: ${oneLine(keys.join(', '), 80)}`}`;
    }
    case 'NodeFailed':
      return `${event.data.nodeId} failed${failureFlags(event.data)}: ${oneLine(event.data.error, 120)}`;
    case 'NodeEscalated':
      return `${event.data.from} escalated to ${event.data.to}`;
    case 'RunPaused':
      return event.data.escalation === undefined ? `paused at gate '${event.data.nodeId}'` : `'${event.data.nodeId}' escalated to a human (${event.data.escalation.on})`;
    case 'ApprovalGranted':
      if (event.data.auto === true) return `${event.data.nodeId} auto-passed by policy (rule ${event.data.rule ?? 'none'})`;
      return `${event.data.nodeId} approved by ${event.data.approver}${event.data.reason ? `: ${oneLine(event.data.reason, 80)}` : ''}`;
    case 'ApprovalRejected':
      return `${event.data.nodeId} rejected by ${event.data.approver}${event.data.reason ? `: ${oneLine(event.data.reason, 80)}` : ''}`;
    case 'RunResumed':
      return `resumed after '${event.data.nodeId}'`;
    case 'ApprovalCancelled':
      return `gate '${event.data.nodeId}' cancelled: ${oneLine(event.data.reason, 80)}`;
    case 'BranchFailed':
      return `branch '${event.data.branchId}' of '${event.data.groupId}' failed (${event.data.cause}) at ${event.data.nodeId}`;
    case 'RunCompleted':
      return 'run completed';
    case 'RunFailed':
      return `run failed (${event.data.cause})${event.data.nodeId === undefined ? '' : ` at ${event.data.nodeId}`}: ${oneLine(event.data.error, 120)}`;
    case 'RunCancelled':
      return `run cancelled: ${oneLine(event.data.reason, 120)}`;
    case 'NodeRetryScheduled':
      return `${event.data.nodeId} retries at ${event.data.dueAt} (backoff)`;
    case 'ApprovalExpired':
      return `gate '${event.data.nodeId}' expired`;
    case 'RunRetried':
      return `run retried from '${event.data.fromNode}'${event.data.by === undefined ? '' : ` by ${event.data.by}`}`;
    case 'ContractViolated':
      return `${event.data.nodeId} broke its contract (${event.data.kind} ${event.data.key}): ${oneLine(event.data.message, 120)}`;
    case 'ChildRunStarted':
      return `${event.data.nodeId} started child ${childIdIn(event.runId, event.data.childRunId)}${maps.has(event.data.nodeId) ? ` for item ${event.data.index}` : ''} (attempt ${event.data.attempt})`;
    case 'ChildRunSettled': {
      const { nodeId, childRunId, status, error } = event.data;
      return `child ${childIdIn(event.runId, childRunId)} of ${nodeId} ${status}${status === 'completed' || error === undefined ? '' : `: ${oneLine(error, 120)}`}`;
    }
  }
}

/** A child's id on its parent's page: what it adds to the parent's (`….implement_all.1.2`), as the page's lists show it. Pure. */
function childIdIn(parentRunId: string, childRunId: string): string {
  return childRunId.startsWith(`${parentRunId}.`) ? `…${childRunId.slice(parentRunId.length)}` : childRunId;
}

function detailOf(node: PlaybookNode): string {
  switch (node.type) {
    case 'agentic':
      return `agent ${node.agent ?? node.skill ?? '?'}`;
    case 'deterministic':
      return `$ ${oneLine([node.command, ...node.args].join(' '), 60)}`;
    case 'approval':
      return `approval${node.policy === undefined ? '' : ` · ${node.policy}`}${node.timeout === undefined ? '' : ` · ${node.timeout}`}`;
    case 'parallel':
      return `parallel · ${node.branches.map((branch) => branch.id).join(' | ')} · ${node.failure}`;
    case 'playbook':
      return `runs ${node.playbook}`;
    case 'map':
      return describeMap(node);
  }
}
