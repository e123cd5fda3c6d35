/**
 * What the viewer's side panel shows of one node of a run: each attempt (when
 * it started and ended, what was dispatched, its output or error, its log and
 * the child runs it started) and each gate the node opened. Pure: folded from
 * a replayed run's events and snapshots and the attempt logs the store kept.
 */
import { contextOf, renderTemplate } from '../../index.js';
import type {
  AttemptLog,
  ChildRunStatus,
  ContractViolatedData,
  EscalationData,
  PlaybookModel,
  PlaybookNode,
  RunContext,
  RunEvent,
  RunSnapshot,
  RunState,
} from '../../index.js';
import { millisBetween } from './runView.js';

/** How an attempt ended, or that it has not. */
export type AttemptStatus =
  /** Started, no result yet, and the run goes on. */
  | 'running'
  | 'succeeded'
  | 'failed'
  /** Stopped at its `timeout` / `timeout_ms` (SPEC §10). */
  | 'timed_out'
  /** Given up because a sibling branch failed a `fail_fast` group (SPEC §9). */
  | 'aborted'
  /** Its process died; recovery recorded the failure. */
  | 'interrupted'
  /** The run ended (cancelled, failed elsewhere) while it had no result. */
  | 'unfinished'
  /** Waiting for its backoff (SPEC §10): it has not started yet. */
  | 'scheduled';

/** What an attempt was dispatched with, rendered from the fold at its `NodeStarted` as the runtime renders it. */
export type DispatchedInputs =
  | { kind: 'agent'; agentId: string; bindings: Record<string, string> }
  | { kind: 'command'; command: string; args: string[]; cwd?: string; env?: Record<string, string> };

/** A child run an attempt of a `playbook` or `map` node started (SPEC §12). */
export interface AttemptChildRun {
  runId: string;
  index: number;
  /** `running` until the parent recorded how it ended. */
  status: 'running' | ChildRunStatus;
  startedAt: string;
  settledAt?: string;
  error?: string;
}

/** One attempt of the node. */
export interface AttemptDetail {
  attempt: number;
  status: AttemptStatus;
  /** `NodeStarted`'s time and seq (null while it waits for its backoff). */
  startedAt: string | null;
  startSeq: number | null;
  endedAt: string | null;
  endSeq: number | null;
  /** endedAt - startedAt; null while it runs. */
  durationMs: number | null;
  /** The process that dispatched it (information only). */
  owner?: { host: string; pid: number; worker?: string };
  /** Null for node types that dispatch nothing (groups, gates, child-run nodes). */
  dispatched: DispatchedInputs | null;
  output?: RunContext;
  exitCode?: number;
  error?: string;
  /** False when the dispatcher said retrying in place is pointless. */
  retryable?: boolean;
  /** When a backoff let it start (`NodeRetryScheduled.dueAt`). */
  retryDueAt?: string;
  contractViolations: ContractViolatedData[];
  childRuns: AttemptChildRun[];
  /** What the attempt wrote to stderr, as the store kept it (bounded: `droppedBytes` of its start are gone); null when none was kept. */
  log: { text: string; droppedBytes: number } | null;
}

/** A gate the node opened: its approval gate, or an escalation an error handler opened on it (SPEC §13). */
export interface GateDetail {
  approvalId: string;
  status: string;
  prompt: string;
  requestedAt: string;
  expiresAt: string | null;
  decidedAt: string | null;
  approver: string | null;
  reason: string | null;
  resumed: boolean;
  escalation?: EscalationData;
  /** Passed by the gate's policy, without a human. */
  auto?: true;
  rule?: string;
}

/** The side panel of one node. */
export interface NodeDetail {
  runId: string;
  nodeId: string;
  type: PlaybookNode['type'];
  description?: string;
  /** The branches that enclose the node, outermost first. */
  branches: readonly string[];
  /** Oldest first. */
  attempts: AttemptDetail[];
  /** Oldest first. */
  gates: GateDetail[];
}

export interface NodeDetailInput {
  runId: string;
  model: PlaybookModel;
  events: readonly RunEvent[];
  /** `steps[i]` is the fold after `events[i]` (`replayRun`). */
  steps: readonly RunSnapshot[];
  nodeId: string;
  /** The run's attempt logs (any node's; only `nodeId`'s are used). */
  logs: readonly AttemptLog[];
}

/**
 * Folds one node's attempts and gates out of a replayed run. Returns null when
 * the run's playbook has no node `nodeId`. Pure.
 *
 * What an agent or command was dispatched with is rendered again from the
 * fold at the attempt's `NodeStarted`, with the node's own templates, as the
 * runtime renders it: the log records the state, not the request.
 *
 * @example
 * const { model, events, steps } = await replayRun(store, runId);
 * const panel = buildNodeDetail({ runId, model, events, steps, nodeId: 'changelog', logs: await store.listAttemptLogs(runId, { nodeId: 'changelog' }) });
 */
export function buildNodeDetail(input: NodeDetailInput): NodeDetail | null {
  const { model, events, steps, nodeId } = input;
  const node = model.nodes.get(nodeId);
  if (node === undefined) return null;
  const attempts = new Map<number, AttemptDetail>();
  const extra = new Map<string, { escalation?: EscalationData; auto?: true; rule?: string }>();
  const attemptOf = (attempt: number): AttemptDetail => {
    let entry = attempts.get(attempt);
    if (entry === undefined) {
      entry = { attempt, status: 'scheduled', startedAt: null, startSeq: null, endedAt: null, endSeq: null, durationMs: null, dispatched: null, contractViolations: [], childRuns: [], log: null };
      attempts.set(attempt, entry);
    }
    return entry;
  };

  events.forEach((event, index) => {
    switch (event.type) {
      case 'NodeRetryScheduled':
        if (event.data.nodeId === nodeId) attemptOf(event.data.attempt).retryDueAt = event.data.dueAt;
        return;
      case 'NodeStarted': {
        if (event.data.nodeId !== nodeId) return;
        const entry = attemptOf(event.data.attempt);
        entry.status = 'running';
        entry.startedAt = event.at;
        entry.startSeq = event.seq;
        if (event.data.owner !== undefined) entry.owner = event.data.owner;
        entry.dispatched = dispatchedBy(model, node, (steps[index] as RunSnapshot).context);
        return;
      }
      case 'NodeSucceeded':
      case 'NodeFailed': {
        if (event.data.nodeId !== nodeId) return;
        const entry = attemptOf(event.data.attempt);
        entry.endedAt = event.at;
        entry.endSeq = event.seq;
        entry.durationMs = entry.startedAt === null ? null : millisBetween(entry.startedAt, event.at);
        if (event.type === 'NodeSucceeded') {
          entry.status = 'succeeded';
          entry.output = event.data.output;
          if (event.data.exitCode !== undefined) entry.exitCode = event.data.exitCode;
        } else {
          const { error, timedOut, aborted, interrupted, retryable } = event.data;
          entry.status = timedOut === true ? 'timed_out' : aborted === true ? 'aborted' : interrupted === true ? 'interrupted' : 'failed';
          entry.error = error;
          if (retryable !== undefined) entry.retryable = retryable;
        }
        return;
      }
      case 'ContractViolated':
        if (event.data.nodeId === nodeId) attemptOf(event.data.attempt).contractViolations.push(event.data);
        return;
      case 'ChildRunStarted':
        if (event.data.nodeId === nodeId) attemptOf(event.data.attempt).childRuns.push({ runId: event.data.childRunId, index: event.data.index, status: 'running', startedAt: event.at });
        return;
      case 'ChildRunSettled': {
        if (event.data.nodeId !== nodeId) return;
        const child = attemptOf(event.data.attempt).childRuns.find((c) => c.runId === event.data.childRunId);
        if (child === undefined) return;
        child.status = event.data.status;
        child.settledAt = event.at;
        if (event.data.error !== undefined) child.error = event.data.error;
        return;
      }
      case 'RunPaused':
        if (event.data.nodeId === nodeId && event.data.escalation !== undefined) extra.set(event.data.approvalId, { escalation: event.data.escalation });
        return;
      case 'ApprovalGranted':
        if (event.data.nodeId === nodeId && event.data.auto === true) {
          extra.set(event.data.approvalId, { ...extra.get(event.data.approvalId), auto: true, ...(event.data.rule === undefined ? {} : { rule: event.data.rule }) });
        }
        return;
      default:
        return;
    }
  });

  const last = steps.at(-1);
  const ended = last !== undefined && typeof last.value === 'string' && last.value !== 'idle';
  for (const entry of attempts.values()) {
    if (entry.status === 'running' && ended) entry.status = 'unfinished';
    const log = input.logs.find((l) => l.nodeId === nodeId && l.attempt === entry.attempt);
    if (log !== undefined) entry.log = { text: log.text, droppedBytes: log.droppedBytes };
  }

  // The gates as the fold has them (decided, expired, cancelled with their run), never their token hash.
  const gates: GateDetail[] = Object.values(last?.context.approvals ?? {})
    .filter((gate) => gate.nodeId === nodeId)
    .map((gate) => ({
      approvalId: gate.approvalId,
      status: gate.status,
      prompt: gate.prompt,
      requestedAt: gate.requestedAt,
      expiresAt: gate.expiresAt,
      decidedAt: gate.decidedAt,
      approver: gate.approver,
      reason: gate.reason,
      resumed: gate.resumed,
      ...extra.get(gate.approvalId),
    }));

  return {
    runId: input.runId,
    nodeId,
    type: node.type,
    ...(node.description === undefined ? {} : { description: node.description }),
    branches: model.branchChain.get(nodeId) ?? [],
    attempts: [...attempts.values()].sort((a, b) => a.attempt - b.attempt),
    gates,
  };
}

/** What the runtime hands the dispatcher or runner for `node`, rendered from `state` (runSession's dispatch). */
function dispatchedBy(model: PlaybookModel, node: PlaybookNode, state: RunState): DispatchedInputs | null {
  const context = contextOf(model, state, node.id);
  const render = (text: string): string => renderTemplate(text, { inputs: state.inputs, context });
  // cwd and env read the inputs only (SPEC §2 trust note).
  const renderFromInputs = (text: string): string => renderTemplate(text, { inputs: state.inputs, context: {} });
  if (node.type === 'deterministic') {
    return {
      kind: 'command',
      command: node.command,
      args: node.args.map(render),
      ...(node.cwd === undefined ? {} : { cwd: renderFromInputs(node.cwd) }),
      ...(node.env === undefined ? {} : { env: Object.fromEntries(Object.entries(node.env).map(([name, value]) => [name, renderFromInputs(value)])) }),
    };
  }
  if (node.type !== 'agentic') return null;
  const bindings: Record<string, string> = {};
  for (const [key, template] of Object.entries(node.inputs ?? {})) bindings[key] = render(template);
  return { kind: 'agent', agentId: (node.agent ?? node.skill) as string, bindings };
}
