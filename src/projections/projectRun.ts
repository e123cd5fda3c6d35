import { nextSteps, runStatusOf } from '../compiler/nextStep.js';
import type { NextStep, StepSnapshot } from '../compiler/nextStep.js';
import type { PlaybookModel } from '../compiler/playbookModel.js';
import { contextKeysWritten } from '../compiler/runState.js';
import { activeNodes } from '../compiler/stateValue.js';
import type { NewRunEvent, RunEvent } from '../events/types.js';
import type { ApprovalRow, RunChanges, RunRow } from './types.js';

/**
 * The runs-projection row of a folded run: facts from the fold, status and
 * active nodes from the machine state. Pure.
 */
export function toRunRow(model: PlaybookModel, snapshot: StepSnapshot): RunRow {
  const state = snapshot.context;
  const ended = typeof snapshot.value === 'string';
  const active = ended ? [] : activeNodes(model, snapshot.value);
  // One reading of the machine state serves the status and the wake time.
  const steps = ended || snapshot.value === 'idle' ? undefined : nextSteps(model, snapshot);
  const status = runStatusOf(model, snapshot, steps);
  const currentNode = status === 'completed' ? null : (state.error?.nodeId ?? active.find((node) => model.nodes.get(node.nodeId)?.type !== 'parallel')?.nodeId ?? active[0]?.nodeId ?? null);
  return {
    runId: state.runId,
    playbookName: state.playbookName,
    playbookHash: state.playbookHash,
    status,
    currentNode,
    activeNodes: active,
    bindings: state.context,
    iterationCounts: state.attempts,
    errorContext: state.error?.message ?? null,
    error: state.error,
    startedAt: state.startedAt,
    updatedAt: state.updatedAt,
    completedAt: state.completedAt,
    version: state.version,
    epicId: state.epicId,
    sessionId: state.sessionId,
    parentRunId: state.parent?.runId ?? null,
    wakeAt: steps === undefined ? null : wakeAtOf(snapshot, steps),
  };
}

/**
 * When a run that has not ended next needs a driver (RunRow.wakeAt), from the
 * steps its machine state names: the run's start when some step can be taken
 * now (a constant, so the indexed column is not rewritten on every step), else
 * the earliest due time among the retries waiting for their backoff and the
 * gates that will expire, else null. A run waiting for child runs is due
 * too: should its driver die, another one reconciles it; a driver that hands
 * it back clears the time (`releaseLease` with `wakeAt`), and each child's
 * last commit sets it again (`AppendRequest.wakeRun`). Pure.
 */
export function wakeAtOf(snapshot: StepSnapshot, steps: readonly NextStep[]): string | null {
  const now = snapshot.context.startedAt;
  let due: string | null = null;
  const wait = (at: string) => {
    if (due === null || Date.parse(at) < Date.parse(due)) due = at;
  };
  for (const step of steps) {
    switch (step.kind) {
      case 'finished':
      case 'not_started':
        continue;
      case 'paused':
        if (step.expiresAt !== undefined) wait(step.expiresAt);
        continue;
      case 'start':
        if (step.notBefore === undefined) return now;
        wait(step.notBefore);
        continue;
      default:
        return now;
    }
  }
  return due;
}

/** The approvals-projection rows of a folded run, in the order the gates opened. Pure. */
export function toApprovalRows(snapshot: StepSnapshot): ApprovalRow[] {
  return Object.values(snapshot.context.approvals);
}

/**
 * What a batch of events changes in a run's projection row: the top-level
 * context keys it writes (`contextKeysWritten`, the rule's one place) and the
 * nodes whose attempt counts it bumps (`NodeStarted`). What the store needs to
 * write only what a step changed (`AppendRequest.changed`).
 *
 * Pure. Each list holds a key once, in the order the batch first writes it, so
 * keys new to the run arrive in the order the fold's context gained them.
 *
 * @example
 * store.append({ ...request, run: toRunRow(model, after), changed: toRunChanges(model, events) });
 */
export function toRunChanges(model: PlaybookModel, events: readonly NewRunEvent[]): RunChanges {
  const bindings = new Set<string>();
  const iterationCounts = new Set<string>();
  for (const event of events) {
    for (const key of contextKeysWritten(model, event)) bindings.add(key);
    if (event.type === 'NodeStarted') iterationCounts.add(event.data.nodeId);
  }
  return { bindings: [...bindings], iterationCounts: [...iterationCounts] };
}

/**
 * The approvals rows a batch of events created or changed: the gates the
 * events name, and every gate when the batch ends the run (an end closes the
 * gates still open). Costs what the batch names, not the run's gate count.
 * Pure.
 */
export function toChangedApprovalRows(snapshot: StepSnapshot, events: readonly RunEvent[]): ApprovalRow[] {
  const approvals = snapshot.context.approvals;
  if (events.some((event) => event.type === 'RunFailed' || event.type === 'RunCancelled')) return Object.values(approvals);
  const ids = new Set<string>();
  for (const event of events) {
    const approvalId = (event.data as { approvalId?: unknown }).approvalId;
    if (typeof approvalId === 'string') ids.add(approvalId);
  }
  const rows: ApprovalRow[] = [];
  for (const id of ids) {
    const gate = approvals[id];
    if (gate !== undefined) rows.push(gate);
  }
  return rows;
}
