import type { RunContext, RunEvent } from '../events/types.js';
import type { ApprovalRow, ErrorContext, RunStatus } from './types.js';

/**
 * The fold of one run's log: everything the runtime needs to decide the next
 * step, and everything the projections store. It is the XState machine's
 * context; `evolve` is the machine's only assign action.
 */
export interface RunState {
  runId: string;
  playbookName: string;
  sourceHash: string;
  /** The initial context: what `{{inputs.x}}` reads. */
  inputs: RunContext;
  /** The run context: inputs plus every node output merged in order. */
  context: RunContext;
  status: RunStatus;
  currentNode: string | null;
  /** Attempts per node over the whole run (the idempotency ordinal). */
  attempts: Record<string, number>;
  /** Attempts per node since it was last (re)entered by escalation: what the cap counts. */
  capCounts: Record<string, number>;
  /** Escalations made by each node (bounded by its cap). */
  escalations: Record<string, number>;
  maxIterationsDefault: number;
  error: ErrorContext | null;
  /** Every gate the run opened, by approvalId, in the order opened. */
  approvals: Record<string, ApprovalRow>;
  startedAt: string;
  updatedAt: string;
  completedAt: string | null;
  /** The seq of the last event folded. */
  version: number;
  epicId: string | null;
  sessionId: string | null;
}

/** The state before `RunStarted`: the machine's initial context. Pure. */
export function emptyRunState(): RunState {
  return {
    runId: '',
    playbookName: '',
    sourceHash: '',
    inputs: {},
    context: {},
    status: 'running',
    currentNode: null,
    attempts: {},
    capCounts: {},
    escalations: {},
    maxIterationsDefault: 3,
    error: null,
    approvals: {},
    startedAt: '',
    updatedAt: '',
    completedAt: null,
    version: 0,
    epicId: null,
    sessionId: null,
  };
}

const bump = (counts: Record<string, number>, key: string): Record<string, number> => ({ ...counts, [key]: (counts[key] ?? 0) + 1 });

/**
 * Applies one event to the fold: records facts, decides nothing. (Which event
 * may come next is the machine's business; see compiler/compilePlaybook.ts.)
 *
 * Pure; never mutates `state`.
 */
export function evolve(state: RunState, event: RunEvent): RunState {
  const next: RunState = { ...state, version: event.seq, updatedAt: event.at };
  switch (event.type) {
    case 'RunStarted': {
      const d = event.data;
      return {
        ...next,
        runId: event.runId,
        playbookName: d.playbookName,
        sourceHash: d.sourceHash,
        inputs: d.context,
        context: d.context,
        status: 'running',
        maxIterationsDefault: d.maxIterationsDefault,
        startedAt: event.at,
        epicId: d.epicId ?? null,
        sessionId: d.sessionId ?? null,
      };
    }
    case 'NodeStarted':
      return {
        ...next,
        status: 'running',
        currentNode: event.data.nodeId,
        attempts: bump(state.attempts, event.data.nodeId),
        capCounts: bump(state.capCounts, event.data.nodeId),
      };
    case 'NodeSucceeded':
      return { ...next, context: { ...state.context, ...event.data.output } };
    case 'NodeFailed':
      return next;
    case 'NodeEscalated': {
      const { from, to, error } = event.data;
      return {
        ...next,
        currentNode: to,
        context: { ...state.context, __lastError: error, __lastFailedNode: from },
        escalations: bump(state.escalations, from),
        capCounts: { ...state.capCounts, [to]: 0 },
      };
    }
    case 'RunPaused': {
      const d = event.data;
      const gate: ApprovalRow = {
        approvalId: d.approvalId,
        runId: event.runId,
        nodeId: d.nodeId,
        status: 'pending',
        prompt: d.prompt,
        tokenHash: d.tokenHash,
        contextDigest: d.contextDigest,
        expiresAt: d.expiresAt ?? null,
        requestedAt: event.at,
        decidedAt: null,
        approver: null,
        reason: null,
        resumed: false,
      };
      return { ...next, status: 'paused', currentNode: d.nodeId, approvals: { ...state.approvals, [d.approvalId]: gate } };
    }
    case 'ApprovalGranted':
    case 'ApprovalRejected': {
      const d = event.data;
      const granted = event.type === 'ApprovalGranted';
      const approvals = updateGate(state.approvals, d.approvalId, {
        status: granted ? 'approved' : 'rejected',
        decidedAt: event.at,
        approver: d.approver,
        reason: d.reason,
      });
      const context = granted
        ? { ...state.context, __lastApproval: { nodeId: d.nodeId, approvalId: d.approvalId, approver: d.approver, reason: d.reason, approvedAt: event.at } }
        : state.context;
      return { ...next, approvals, context };
    }
    case 'RunResumed':
      return { ...next, status: 'running', approvals: updateGate(state.approvals, event.data.approvalId, { resumed: true }) };
    case 'RunCompleted':
      return { ...next, status: 'completed', currentNode: null, completedAt: event.at };
    case 'RunFailed': {
      const d = event.data;
      const error: ErrorContext = { error: d.error, cause: d.cause };
      if (d.nodeId !== undefined) error.nodeId = d.nodeId;
      return { ...next, status: 'failed', error, completedAt: event.at, approvals: closePendingGates(state.approvals, event.at) };
    }
    case 'RunCancelled':
      return {
        ...next,
        status: 'cancelled',
        error: { error: event.data.reason, cause: 'cancelled' },
        completedAt: event.at,
        approvals: closePendingGates(state.approvals, event.at),
      };
  }
}

function updateGate(approvals: Record<string, ApprovalRow>, approvalId: string, patch: Partial<ApprovalRow>): Record<string, ApprovalRow> {
  const gate = approvals[approvalId];
  if (!gate) return approvals;
  return { ...approvals, [approvalId]: { ...gate, ...patch } };
}

/** A run that ends while a gate is open closes the gate as `expired`: nobody can decide it any more. */
function closePendingGates(approvals: Record<string, ApprovalRow>, at: string): Record<string, ApprovalRow> {
  let out = approvals;
  for (const gate of Object.values(approvals)) {
    if (gate.status === 'pending') out = updateGate(out, gate.approvalId, { status: 'expired', decidedAt: at });
  }
  return out;
}
