import type { FailureCause, RunContext } from '../events/types.js';

/** Status of a run as stored in the runs projection. */
export type RunStatus = 'running' | 'paused' | 'completed' | 'failed' | 'cancelled';

/** Status of one approval gate. */
export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'expired';

/** What went wrong, when something did. Never holds a secret or a token. */
export interface ErrorContext {
  nodeId?: string;
  error: string;
  cause: FailureCause;
}

/** One row of the runs projection: the fold of a run's log, flattened for queries. */
export interface RunRow {
  runId: string;
  playbookName: string;
  playbookHash: string;
  status: RunStatus;
  /** The node the run is at (running, paused) or stopped at (failed); null when completed. */
  currentNode: string | null;
  /** The run context (bindings). */
  bindings: RunContext;
  /** Attempts per node over the whole run. */
  iterationCounts: Record<string, number>;
  errorContext: ErrorContext | null;
  startedAt: string;
  updatedAt: string;
  completedAt: string | null;
  /** The seq of the last event folded: the stream version. */
  version: number;
  epicId: string | null;
  sessionId: string | null;
}

/** One row of the approvals projection. Holds the token's hash, never the token. */
export interface ApprovalRow {
  approvalId: string;
  runId: string;
  nodeId: string;
  status: ApprovalStatus;
  prompt: string;
  tokenHash: string;
  contextDigest: string;
  expiresAt: string | null;
  requestedAt: string;
  decidedAt: string | null;
  approver: string | null;
  reason: string | null;
  /** True once `RunResumed` has been recorded for this gate. */
  resumed: boolean;
}
