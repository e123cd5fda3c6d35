import type { RunState } from './runState.js';
import type { ApprovalRow, RunRow } from './types.js';

/** The runs-projection row of a folded run. Pure. */
export function toRunRow(state: RunState): RunRow {
  return {
    runId: state.runId,
    playbookName: state.playbookName,
    playbookHash: state.sourceHash,
    status: state.status,
    currentNode: state.currentNode,
    bindings: state.context,
    iterationCounts: state.attempts,
    errorContext: state.error,
    startedAt: state.startedAt,
    updatedAt: state.updatedAt,
    completedAt: state.completedAt,
    version: state.version,
    epicId: state.epicId,
    sessionId: state.sessionId,
  };
}

/** The approvals-projection rows of a folded run, in the order the gates opened. Pure. */
export function toApprovalRows(state: RunState): ApprovalRow[] {
  return Object.values(state.approvals);
}
