import type { GateState, GateStatus, RunError } from '../compiler/runState.js';
import type { RunStatus } from '../compiler/nextStep.js';
import type { ActiveNode } from '../compiler/stateValue.js';
import type { RunContext } from '../events/types.js';

export type { ActiveNode, RunError, RunStatus };

/** Status of one approval gate. */
export type ApprovalStatus = GateStatus;

/** One row of the runs projection: the fold of a run's log, flattened for queries. */
export interface RunRow {
  runId: string;
  playbookName: string;
  playbookHash: string;
  /** Derived from the machine state (SPEC §9). */
  status: RunStatus;
  /** The first active node (running, paused), or the node the run failed at; null when completed. */
  currentNode: string | null;
  /** Every active node of the machine state and its phase (several while a parallel group runs). */
  activeNodes: ActiveNode[];
  /** The run context (bindings). */
  bindings: RunContext;
  /** Attempts per node over the whole run. */
  iterationCounts: Record<string, number>;
  /** The last error message, as `@cleocode/playbooks` reports it; null when nothing failed. */
  errorContext: string | null;
  /** How the run ended badly, structured; null unless it failed or was cancelled. */
  error: RunError | null;
  startedAt: string;
  updatedAt: string;
  completedAt: string | null;
  /** The seq of the last event folded: the stream version. */
  version: number;
  epicId: string | null;
  sessionId: string | null;
  /**
   * The run that started this one as a child run (`RunStarted.parent.runId`,
   * SPEC §12); null for a root run. Set by the first event, never changed:
   * what `listRuns({parentRunId})` finds a run's children by.
   */
  parentRunId: string | null;
  /**
   * When the run next needs a driver (SPEC §10 durable timers): `startedAt`
   * while it has something to do now (a step, an approved gate to resume, an
   * attempt whose driver may have died), a retry's backoff due time, a pending
   * gate's expiry; null when only a human can move it, or it ended. What a
   * worker's claim reads (a run with a live lease is skipped).
   */
  wakeAt: string | null;
}

/**
 * Which parts of a run's row a batch of events changed: the `bindings` keys it
 * wrote and the nodes whose `iterationCounts` it bumped. Everything else in the
 * row is small and written whole.
 */
export interface RunChanges {
  bindings: readonly string[];
  iterationCounts: readonly string[];
}

/** One row of the approvals projection. Holds the token's hash, never the token. */
export type ApprovalRow = GateState;
