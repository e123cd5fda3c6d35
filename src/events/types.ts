/**
 * The run events of SPEC §3. Past tense; `type` equals the name.
 *
 * Pure data: a run is the ordered list of these. Everything else (the run's
 * status, its context, its approvals) is a fold of that list.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type RunContext = Record<string, unknown>;

/** Why a run failed. `internal_error` means the host, not a node, failed. */
export type FailureCause =
  | 'exceeded_iteration_cap'
  | 'no_branch'
  | 'ambiguous_branch'
  | 'approval_rejected'
  | 'approval_expired'
  | 'not_retryable'
  | 'contract_violation'
  | 'timed_out'
  | 'internal_error'
  | 'cancelled';

export interface RunStartedData {
  playbookName: string;
  sourceHash: string;
  /** The exact playbook text; the run is pinned to it. */
  source: string;
  /** Initial context: declared input defaults applied, then the caller's values. */
  context: RunContext;
  /** The cap used for nodes that set no `max_iterations`. */
  maxIterationsDefault: number;
  epicId?: string;
  sessionId?: string;
  /**
   * The hash the host reported for its playbook (`executePlaybook`'s
   * `playbookHash` with a definition but no `source`): what `getRun` reports
   * as the run's playbook hash. Replay checks the pinned text by `sourceHash`.
   */
  playbookHash?: string;
  /**
   * True for runs that check contracts, act on `error_handlers` and let gate
   * policies pass gates (SPEC §13). Runs started by earlier versions did not
   * and carry no flag: their logs fold as they ran.
   */
  contracts?: true;
  /** Set on a child run (SPEC §12): the run, node, attempt and item index that started it. */
  parent?: ParentRef;
  /**
   * Every playbook text this run can start as a child run, resolved and pinned
   * before the tree's first event (SPEC §12); absent when its playbook starts none.
   */
  pinned?: PinnedPlaybooks;
}

/** Where a child run comes from: `RunStarted.parent`. */
export interface ParentRef {
  runId: string;
  nodeId: string;
  attempt: number;
  /** The item's index for a child of a `map` node (0-based); 0 for a `playbook` node. */
  index: number;
}

/**
 * The playbook texts a run can start as child runs, each pinned by its text
 * (SPEC §12). `refs` maps the references this run's own text makes
 * (`playbook: ivtr.cantbook`) to the id its resolver gave them; `texts` holds
 * every text reachable from here, by id, with the references each one makes
 * in turn. A child's `RunStarted.pinned` is the part of its parent's reachable
 * from the child, so every log is self-contained.
 */
export interface PinnedPlaybooks {
  refs: Record<string, string>;
  texts: Record<string, PinnedText>;
}

/** One pinned text: its source, hash, and the references it makes (ref -> id in the same `texts`). */
export interface PinnedText {
  source: string;
  sourceHash: string;
  refs: Record<string, string>;
}

export interface NodeStartedData {
  nodeId: string;
  /** 1-based ordinal over the whole run; `runId:nodeId:attempt` is the idempotency key. */
  attempt: number;
  /**
   * The process that dispatches this attempt, as information for operators
   * (absent in logs written before it was recorded). Who may drive a run is
   * decided by its lease (SPEC §11), never by this.
   */
  owner?: RunOwner;
}

/** Which process drives a node attempt (information only; leases decide, SPEC §11). */
export interface RunOwner {
  /** `os.hostname()` of the process. */
  host: string;
  pid: number;
  /** The worker id of the lease holder, when a worker or a named driver dispatched it. */
  worker?: string;
}

export interface NodeSucceededData {
  nodeId: string;
  attempt: number;
  /** Shallow-merged into the context. */
  output: RunContext;
  /** What the command exited with, when the runner reported it (`ensures.exitCode` checks it). */
  exitCode?: number;
}

export interface NodeFailedData {
  nodeId: string;
  attempt: number;
  error: string;
  /** True when the process running the node died and recovery recorded the failure. */
  interrupted?: boolean;
  /**
   * True when the runtime gave the attempt up because a sibling branch failed a
   * `fail_fast` group (SPEC §9): its signal was aborted, and the attempt changes nothing.
   */
  aborted?: boolean;
  /** True when the attempt ran past its `timeout` / `timeout_ms` and was stopped (SPEC §10). */
  timedOut?: boolean;
  /** False when the dispatcher said retrying in place is pointless (`{status:'failure', retryable:false}`). */
  retryable?: boolean;
}

/**
 * The next in-place attempt of a node waits for its backoff (SPEC §10): it may
 * start at `dueAt` (the event's time plus the delay the node's backoff names),
 * not before. Durable, so whoever drives the run after a restart waits only for
 * the rest.
 */
export interface NodeRetryScheduledData {
  nodeId: string;
  /** The attempt that will start (the next `NodeStarted.attempt`). */
  attempt: number;
  dueAt: string;
}

/** A pending gate reached its `expiresAt` before anyone decided it (SPEC §5.5); the run or branch then fails `approval_expired`. */
export interface ApprovalExpiredData {
  approvalId: string;
  nodeId: string;
}

/**
 * A failed run is driven again from the node that ended it (SPEC §10, redrive):
 * that node starts with fresh attempt counts; every earlier success is kept.
 */
export interface RunRetriedData {
  /** The top-level node the run failed at, where it continues. */
  fromNode: string;
  by?: string;
  reason?: string;
}

export interface NodeEscalatedData {
  from: string;
  to: string;
  error: string;
}

export interface RunPausedData {
  approvalId: string;
  nodeId: string;
  /** The prompt with its templates rendered. */
  prompt: string;
  /** SHA-256 hex of the resume token; the token itself is never stored. */
  tokenHash: string;
  /** SHA-256 hex of the canonical JSON of the whole context at the gate. */
  contextDigest: string;
  expiresAt?: string;
  /**
   * Set when the gate is an escalation opened by an `error_handlers` entry
   * with `action: hitl_escalate` (SPEC §13) on a work node, not an approval
   * node's own gate: approving and resuming it goes on, rejecting it fails.
   */
  escalation?: EscalationData;
}

/**
 * What opened an escalation gate: the trigger, and for a contract violation
 * where it was found (`entry`: `requires`, before an attempt; `exit`: once its
 * output was merged). Resuming goes on from there.
 */
export interface EscalationData {
  on: EscalationTrigger;
  checkpoint?: 'entry' | 'exit';
}

/** What opened an escalation gate: the `error_handlers` trigger. */
export type EscalationTrigger = 'contract_violation' | 'iteration_cap_exceeded' | 'agentic_timeout';

export interface ApprovalDecisionData {
  approvalId: string;
  nodeId: string;
  approver: string;
  reason: string;
  /** True when the gate's policy passed it without a human (SPEC §13); `approver` is then `policy`. */
  auto?: true;
  /** For an auto-pass: the reasons of the auto-approve rules that matched (`safe-qa-tool`). */
  rule?: string;
}

/** Which contract check failed (SPEC §13). */
export type ContractKind = 'requires' | 'outputFiles' | 'exitCode' | 'schema' | 'edge';

/**
 * A contract check failed (SPEC §13). `requires` is checked before an
 * attempt starts (`attempt` is the one about to start); the others when the
 * attempt's output is merged, and recorded just before its `NodeSucceeded`
 * (`edge`: the `contract.requires` of the edge the success takes, `to`).
 * The run's `contract_violation` handler decides what follows.
 */
export interface ContractViolatedData {
  nodeId: string;
  attempt: number;
  kind: ContractKind;
  /** The context key (or schema name) that failed. */
  key: string;
  message: string;
  /** An `ensures.schema` that names no known schema: the run fails unless a human decides (fails closed). */
  failClosed?: true;
  /** For `edge`: the node the edge leads to. */
  to?: string;
}

/**
 * A `playbook` or `map` node started a child run for its current attempt
 * (SPEC §12), recorded before the child's own `RunStarted`: a child never
 * exists without its parent's record of it. `childRunId` is derived
 * ({@link childRunIdOf}), so the same item of the same attempt never gets two children.
 */
export interface ChildRunStartedData {
  nodeId: string;
  attempt: number;
  /** The item's index (0 for a `playbook` node). */
  index: number;
  childRunId: string;
}

/** How a child run ended, as its parent records it. */
export type ChildRunStatus = 'completed' | 'failed' | 'cancelled';

/**
 * A child run of the node's current attempt ended (SPEC §12), as read from the
 * child's own log: `output` holds the keys its nodes produced (internal `__`
 * keys left out); `error` why it did not complete.
 */
export interface ChildRunSettledData {
  nodeId: string;
  attempt: number;
  index: number;
  childRunId: string;
  status: ChildRunStatus;
  output: RunContext;
  error?: string;
}

/** A pending gate nobody may decide any more: its branch was stopped by a failed sibling (SPEC §9). */
export interface ApprovalCancelledData {
  approvalId: string;
  nodeId: string;
  reason: string;
}

/**
 * A branch of a parallel group ended the way a run ends badly (cap exceeded,
 * no or ambiguous branch, a rejected or expired gate): the same causes, for
 * the branch only. The group then follows its `failure` mode.
 */
export interface BranchFailedData {
  groupId: string;
  branchId: string;
  /** The node that ended the branch. */
  nodeId: string;
  error: string;
  cause: Exclude<FailureCause, 'internal_error' | 'cancelled'>;
  /** For `approval_expired`: the gate that expired. */
  approvalId?: string;
}

export interface RunResumedData {
  approvalId: string;
  nodeId: string;
}

export interface RunCompletedData {
  /** Empty; the final context is the fold. Kept as an object for forward compatibility. */
  [key: string]: never;
}

export interface RunFailedData {
  nodeId?: string;
  error: string;
  cause: FailureCause;
  /** For `approval_expired`: the gate that expired. */
  approvalId?: string;
}

export interface RunCancelledData {
  reason: string;
  by?: string;
}

export interface RunEventDataMap {
  RunStarted: RunStartedData;
  NodeStarted: NodeStartedData;
  NodeSucceeded: NodeSucceededData;
  NodeFailed: NodeFailedData;
  NodeEscalated: NodeEscalatedData;
  RunPaused: RunPausedData;
  ApprovalGranted: ApprovalDecisionData;
  ApprovalRejected: ApprovalDecisionData;
  ApprovalCancelled: ApprovalCancelledData;
  RunResumed: RunResumedData;
  BranchFailed: BranchFailedData;
  RunCompleted: RunCompletedData;
  RunFailed: RunFailedData;
  RunCancelled: RunCancelledData;
  NodeRetryScheduled: NodeRetryScheduledData;
  ApprovalExpired: ApprovalExpiredData;
  RunRetried: RunRetriedData;
  ContractViolated: ContractViolatedData;
  ChildRunStarted: ChildRunStartedData;
  ChildRunSettled: ChildRunSettledData;
}

export type RunEventType = keyof RunEventDataMap;

export const runEventTypes: readonly RunEventType[] = [
  'RunStarted', 'NodeStarted', 'NodeSucceeded', 'NodeFailed', 'NodeEscalated', 'RunPaused',
  'ApprovalGranted', 'ApprovalRejected', 'ApprovalCancelled', 'RunResumed', 'BranchFailed', 'RunCompleted',
  'RunFailed', 'RunCancelled', 'NodeRetryScheduled', 'ApprovalExpired', 'RunRetried',
  'ContractViolated', 'ChildRunStarted', 'ChildRunSettled',
];

/** An event about to be appended: the store assigns seq, globalSeq and hash. */
export type NewRunEvent = {
  [K in RunEventType]: { type: K; data: RunEventDataMap[K]; at: string };
}[RunEventType];

/** An event as stored. `hash` chains it to the previous event of the same run. */
export type RunEvent = NewRunEvent & {
  runId: string;
  /** 1..n per run, no gaps. */
  seq: number;
  /** Position in the whole store, increasing. */
  globalSeq: number;
  hash: string;
};
