import type { FailureCause } from '../events/types.js';
import type { RunState } from '../projections/runState.js';
import { chooseBranch } from './branching.js';
import type { FinalState, NodePhase } from './compilePlaybook.js';
import { finalStates } from './compilePlaybook.js';
import type { PlaybookModel } from './playbookModel.js';

/** Where a folded run stands: a machine state read as "what happens next". */
export type NextStep =
  | { kind: 'start'; nodeId: string; attempt: number }
  | { kind: 'pause'; nodeId: string }
  | { kind: 'in_flight'; nodeId: string; attempt: number }
  | { kind: 'paused'; nodeId: string }
  | { kind: 'resume'; nodeId: string }
  | { kind: 'escalate'; from: string; to: string }
  | { kind: 'complete' }
  | { kind: 'fail'; nodeId: string; cause: FailureCause; error: string }
  | { kind: 'finished'; state: FinalState }
  | { kind: 'not_started' };

/** The snapshot fields nextStep reads (a subset of an xstate MachineSnapshot). */
export interface StepSnapshot {
  value: unknown;
  context: RunState;
}

/**
 * Reads the machine state of a folded run as the next thing to do. The machine
 * already made the decision (which substate it moved to); this names it.
 *
 * Pure. Throws TypeError for a state value no compiled machine produces.
 */
export function nextStep(model: PlaybookModel, snapshot: StepSnapshot): NextStep {
  const { value, context } = snapshot;
  if (value === 'idle') return { kind: 'not_started' };
  if (typeof value === 'string' && (finalStates as readonly string[]).includes(value)) return { kind: 'finished', state: value as FinalState };
  const active = (value as { active?: Record<string, NodePhase> }).active;
  const entry = active ? Object.entries(active)[0] : undefined;
  if (!entry) throw new TypeError(`unexpected machine state ${JSON.stringify(value)}`);
  const [nodeId, phase] = entry;
  const attempts = context.attempts[nodeId] ?? 0;
  switch (phase) {
    case 'ready':
      return model.nodes.get(nodeId)?.type === 'approval' ? { kind: 'pause', nodeId } : { kind: 'start', nodeId, attempt: attempts + 1 };
    case 'running':
      return { kind: 'in_flight', nodeId, attempt: attempts };
    case 'paused':
      return { kind: 'paused', nodeId };
    case 'approved':
      return { kind: 'resume', nodeId };
    case 'done':
      return { kind: 'complete' };
    case 'escalating': {
      const to = model.nodes.get(nodeId)?.on_failure?.inject_into;
      if (to === undefined) throw new TypeError(`node '${nodeId}' escalates without inject_into`);
      return { kind: 'escalate', from: nodeId, to };
    }
    case 'exhausted':
      return {
        kind: 'fail',
        nodeId,
        cause: 'exceeded_iteration_cap',
        error: `node '${nodeId}' failed after reaching its cap of ${capText(model, context, nodeId)}`,
      };
    case 'rejected': {
      const gate = Object.values(context.approvals).findLast((g) => g.nodeId === nodeId);
      const who = gate?.approver ? ` by ${gate.approver}` : '';
      const why = gate?.reason ? `: ${gate.reason}` : '';
      return { kind: 'fail', nodeId, cause: 'approval_rejected', error: `approval '${nodeId}' was rejected${who}${why}` };
    }
    case 'unrouted': {
      const choice = chooseBranch(model.edges.get(nodeId) ?? [], context.context);
      if (choice.kind === 'ambiguous_branch') {
        return { kind: 'fail', nodeId, cause: 'ambiguous_branch', error: `after '${nodeId}' several guarded edges hold: ${choice.candidates.map((c) => `'${c}'`).join(', ')}` };
      }
      return { kind: 'fail', nodeId, cause: 'no_branch', error: `after '${nodeId}' no edge's 'when' holds and there is no default edge` };
    }
  }
}

function capText(model: PlaybookModel, context: RunState, nodeId: string): string {
  const node = model.nodes.get(nodeId);
  const cap = node?.on_failure?.max_iterations ?? context.maxIterationsDefault;
  return node?.on_failure?.inject_into !== undefined ? `${cap} escalation(s) to '${node.on_failure.inject_into}'` : `${Math.max(cap, 1)} attempt(s)`;
}
