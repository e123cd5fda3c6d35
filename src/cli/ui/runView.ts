/**
 * What the web viewer shows of a run, as JSON: the playbook's graph (nodes and
 * transitions between them) and, for every event of the log, the state the
 * fold reached. Pure: built from a parsed playbook and a replayed run.
 */
import { activeNodes, runStatusOf } from '../../index.js';
import type { ActiveNode, PlaybookDefinition, PlaybookModel, PlaybookNode, RunEvent, RunSnapshot } from '../../index.js';
import { describeCondition, successorsOf } from '../exportFormats.js';
import { oneLine } from '../output.js';

/** The id of the drawn final state `completed` (not an identifier, so it never clashes with a node id). */
export const COMPLETED_NODE = '@completed';

export interface GraphNode {
  id: string;
  type: PlaybookNode['type'] | 'final';
  /** One line: the agent, the command or the gate's policy. */
  detail: string;
  description?: string;
}

export interface GraphEdge {
  from: string;
  to: string;
  /**
   * `next`: taken on success (or approval); `retry`: a failure runs the node
   * again (`from === to`); `escalate`: a failure hands control back (`inject_into`).
   */
  kind: 'next' | 'retry' | 'escalate';
  label?: string;
}

/** The statechart at node level: one state per node plus `completed`. */
export interface RunGraph {
  name: string;
  entry: string;
  nodes: GraphNode[];
  edges: GraphEdge[];
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
}

/**
 * The playbook's graph: explicit edges and `depends` (as the runtime reads
 * them), guarded edges labelled with their condition and the default one
 * `otherwise`, what a failure does (a retry loop, or an escalation to the
 * `inject_into` node, with the cap from `max_iterations` or
 * `maxIterationsDefault`), and an edge to `completed` from every node without
 * successors. Pure.
 */
export function buildRunGraph(definition: PlaybookDefinition, maxIterationsDefault = 3): RunGraph {
  const successors = successorsOf(definition);
  const edges: GraphEdge[] = [];
  for (const node of definition.nodes) {
    const out = successors.get(node.id) ?? [];
    const branching = out.some((edge) => edge.when !== undefined);
    const approved = node.type === 'approval' ? 'approved' : undefined;
    for (const edge of out) {
      const condition = edge.when !== undefined ? `when ${describeCondition(edge.when)}` : branching ? 'otherwise' : undefined;
      const label = [approved, condition].filter((part) => part !== undefined).join(', ');
      edges.push({ from: node.id, to: edge.to, kind: 'next', ...(label === '' ? {} : { label }) });
    }
    if (out.length === 0) edges.push({ from: node.id, to: COMPLETED_NODE, kind: 'next', ...(approved === undefined ? {} : { label: approved }) });
    if (node.type === 'approval') continue;
    // The runtime's caps (SPEC §4): retries in place up to max(cap, 1) attempts, or at most `cap` escalations.
    const cap = node.on_failure?.max_iterations ?? maxIterationsDefault;
    const inject = node.on_failure?.inject_into;
    if (inject !== undefined) {
      if (cap > 0) edges.push({ from: node.id, to: inject, kind: 'escalate', label: `on failure (≤ ${cap}×)` });
    } else if (cap > 1) {
      edges.push({ from: node.id, to: node.id, kind: 'retry', label: `retry (${cap} attempts)` });
    }
  }
  const targets = new Set(edges.filter((edge) => edge.kind === 'next').map((edge) => edge.to));
  const entry = definition.nodes.find((node) => !targets.has(node.id))?.id ?? definition.nodes[0]?.id ?? '';
  const nodes: GraphNode[] = definition.nodes.map((node) => ({
    id: node.id,
    type: node.type,
    detail: detailOf(node),
    ...(node.description === undefined ? {} : { description: oneLine(node.description, 200) }),
  }));
  nodes.push({ id: COMPLETED_NODE, type: 'final', detail: 'completed' });
  return { name: definition.name, entry, nodes, edges };
}

/** One StepView per event; `steps[i]` is the fold after `events[i]`. Pure. */
export function buildStepViews(model: PlaybookModel, events: readonly RunEvent[], steps: readonly RunSnapshot[]): StepView[] {
  return events.map((event, index) => {
    const snapshot = steps[index] as RunSnapshot;
    const { node, phase } = positionOf(model, snapshot);
    return {
      seq: event.seq,
      type: event.type,
      at: event.at,
      summary: summarize(event),
      data: publicData(event),
      value: snapshot.value,
      status: runStatusOf(model, snapshot),
      activeNodes: typeof snapshot.value === 'string' ? [] : activeNodes(model, snapshot.value),
      node,
      phase,
      attempt: node === null ? 0 : (snapshot.context.attempts[node] ?? 0),
      context: snapshot.context.context,
      error: snapshot.context.error,
    };
  });
}

/**
 * An event's data as the viewer shows it: the pinned source shortened, and a
 * gate's `tokenHash` left out (the viewer's API never serves it). Pure.
 */
function publicData(event: RunEvent): unknown {
  if (event.type === 'RunStarted') return { ...event.data, source: `(${event.data.source.length} characters, sha256 ${event.data.sourceHash})` };
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

/** One line per event, for the timeline. Pure. */
export function summarize(event: RunEvent): string {
  switch (event.type) {
    case 'RunStarted':
      return `run of '${event.data.playbookName}' started`;
    case 'NodeStarted':
      return `${event.data.nodeId} started (attempt ${event.data.attempt})`;
    case 'NodeSucceeded': {
      const keys = Object.keys(event.data.output);
      return `${event.data.nodeId} succeeded${keys.length === 0 ? '' : `: ${oneLine(keys.join(', '), 80)}`}`;
    }
    case 'NodeFailed':
      return `${event.data.nodeId} failed${event.data.interrupted ? ' (interrupted)' : ''}${event.data.aborted ? ' (aborted)' : ''}: ${oneLine(event.data.error, 120)}`;
    case 'NodeEscalated':
      return `${event.data.from} escalated to ${event.data.to}`;
    case 'RunPaused':
      return `paused at gate '${event.data.nodeId}'`;
    case 'ApprovalGranted':
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
  }
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
  }
}
