import { entryViolation } from '../contracts/checkContracts.js';
import type { Violation } from '../contracts/checkContracts.js';
import type { EscalationData, FailureCause, RunContext } from '../events/types.js';
import { clipText } from '../playbook/describeValue.js';
import type { ChildRunNode, ParallelNode, PlaybookNode } from '../playbook/types.js';
import { chooseBranch } from './branching.js';
import { childConcurrency, childRunIdOf, childrenOutcome, isChildNode, isFailing } from './childRuns.js';
import type { FinalState } from './compilePlaybook.js';
import { finalStates } from './compilePlaybook.js';
import { backoffDelayMs, branchOf, describeFailurePolicy, enclosingGroups } from './playbookModel.js';
import type { PlaybookModel } from './playbookModel.js';
import { joinOutput, latestGate, readContext, violationAt } from './runState.js';
import type { RunState } from './runState.js';
import { activeNodes, busyLeaves, groupRegions, isGroupSettled, stoppedByFailFast } from './stateValue.js';

/** Where the branch a failure ends sits, when it is inside a parallel group. */
export interface BranchRef {
  groupId: string;
  branchId: string;
}

/** One thing the machine's state says happens next in a run. */
export type NextStep =
  /** `notBefore`: a retry waiting for its backoff may start at that time, not earlier (the machine refuses it). */
  | { kind: 'start'; nodeId: string; attempt: number; notBefore?: string }
  /** A retry waits for its backoff: record NodeRetryScheduled, due `delayMs` after the event's time. */
  | { kind: 'schedule_retry'; nodeId: string; attempt: number; delayMs: number }
  /** Open a gate: the approval node's own, or (`escalation`) one an error handler opens on a work node; `reason` says why. */
  | { kind: 'pause'; nodeId: string; escalation?: EscalationData; reason?: string }
  /** A contract check failed before the attempt starts: record ContractViolated (SPEC §13). */
  | { kind: 'violate'; nodeId: string; attempt: number; violation: Violation }
  | { kind: 'in_flight'; nodeId: string; attempt: number }
  | { kind: 'abort'; nodeId: string; attempt: number }
  | { kind: 'cancel_gate'; nodeId: string; approvalId: string }
  /** Waiting for a human; at `expiresAt` (if any) the gate expires: record ApprovalExpired. */
  | { kind: 'paused'; nodeId: string; approvalId: string; expiresAt?: string }
  | { kind: 'resume'; nodeId: string; approvalId: string }
  | { kind: 'escalate'; from: string; to: string; error: string }
  /** Join: every branch of a group succeeded, or every child of a `playbook` / `map` node settled within `tolerate`. */
  | { kind: 'join'; nodeId: string; attempt: number; output: RunContext }
  /** A group failed as its failure mode says, or a child-run node's children failed it (`retryable: false`: its items are no list). */
  | { kind: 'fail_group'; nodeId: string; attempt: number; error: string; retryable?: false }
  /** Start the child for item `index` (SPEC §12): record ChildRunStarted, then create the child run `childRunId`. */
  | { kind: 'start_child'; nodeId: string; attempt: number; index: number; childRunId: string }
  /** A child started and not settled: it runs on its own; once its log says it ended, record ChildRunSettled. */
  | { kind: 'await_child'; nodeId: string; attempt: number; index: number; childRunId: string }
  /** A child that must stop (its node failed, a fail_fast sibling failed): cancel the child run, then record how it ended. */
  | { kind: 'cancel_child'; nodeId: string; attempt: number; index: number; childRunId: string }
  | { kind: 'stop_group'; nodeId: string; attempt: number }
  | { kind: 'complete' }
  | { kind: 'fail'; nodeId: string; cause: FailureCause; error: string; branch?: BranchRef; approvalId?: string }
  | { kind: 'finished'; state: FinalState }
  | { kind: 'not_started' };

/** The snapshot fields nextSteps reads (a subset of an xstate MachineSnapshot). */
export interface StepSnapshot {
  value: unknown;
  context: RunState;
}

/**
 * Reads the machine state of a folded run as the things to do next, one per
 * active node that calls for something, in graph order. The machine already
 * made each decision (which substate it moved to); this names them. Starts
 * are left out where the machine would refuse them: inside a failing
 * `fail_fast` group, or past a group's `max_concurrency`.
 *
 * Pure. Throws TypeError for a state value no compiled machine produces.
 */
export function nextSteps(model: PlaybookModel, snapshot: StepSnapshot): NextStep[] {
  const { value, context } = snapshot;
  if (value === 'idle') return [{ kind: 'not_started' }];
  if (typeof value === 'string' && (finalStates as readonly string[]).includes(value)) return [{ kind: 'finished', state: value as FinalState }];
  const active = activeNodes(model, value);
  if (active.length === 0) throw new TypeError(`unexpected machine state ${JSON.stringify(value)}`);

  // Dispatch slots left in each bounded group; starts below spend them.
  const slots = new Map<string, number>();
  const takeSlot = (nodeId: string): boolean => {
    const bounded = enclosingGroups(model, nodeId).filter((id) => (model.nodes.get(id) as ParallelNode).max_concurrency !== undefined);
    for (const id of bounded) {
      if (!slots.has(id)) slots.set(id, ((model.nodes.get(id) as ParallelNode).max_concurrency as number) - busyLeaves(model, value, id, 'running'));
      if ((slots.get(id) as number) <= 0) return false;
    }
    for (const id of bounded) slots.set(id, (slots.get(id) as number) - 1);
    return true;
  };

  const steps: NextStep[] = [];
  for (const { nodeId, phase } of active) {
    const node = model.nodes.get(nodeId);
    if (!node) throw new TypeError(`machine state names unknown node '${nodeId}'`);
    const attempts = context.attempts[nodeId] ?? 0;
    const branch = branchOf(model, nodeId);
    const ref = branch === undefined ? {} : { branch: { groupId: branch.groupId, branchId: branch.id } };
    const stopping = stoppedByFailFast(model, value, nodeId);
    switch (phase) {
      case 'ready': {
        if (stopping) break;
        const violation = node.type === 'approval' || violationAt(context, nodeId, 'entry', attempts + 1) !== undefined ? undefined : entryViolation(model, context, nodeId);
        if (violation !== undefined) steps.push({ kind: 'violate', nodeId, attempt: attempts + 1, violation });
        else if (node.type === 'approval') steps.push({ kind: 'pause', nodeId });
        else if (node.type === 'parallel' || takeSlot(nodeId)) {
          const due = context.retryDue[nodeId];
          steps.push(due === undefined ? { kind: 'start', nodeId, attempt: attempts + 1 } : { kind: 'start', nodeId, attempt: attempts + 1, notBefore: due });
        }
        break;
      }
      case 'hitl_entry':
      case 'hitl_exit': {
        if (stopping) break;
        const checkpoint = phase === 'hitl_entry' ? 'entry' : 'exit';
        const fact = violationAt(context, nodeId, checkpoint, checkpoint === 'entry' ? attempts + 1 : attempts);
        steps.push({ kind: 'pause', nodeId, escalation: { on: 'contract_violation', checkpoint }, reason: fact?.message ?? `a contract of '${nodeId}' was violated` });
        break;
      }
      case 'hitl_cap':
        if (!stopping) steps.push({ kind: 'pause', nodeId, escalation: { on: 'iteration_cap_exceeded' }, reason: exhaustedMessage(node, context, nodeId) });
        break;
      case 'hitl_timeout':
        if (!stopping) steps.push({ kind: 'pause', nodeId, escalation: { on: 'agentic_timeout' }, reason: context.nodeErrors[nodeId] ?? `node '${nodeId}' timed out` });
        break;
      case 'violated': {
        // The latest checkpoint: a requires check for the next attempt comes after any check of the last one.
        const fact = violationAt(context, nodeId, 'entry', attempts + 1) ?? violationAt(context, nodeId, 'exit', attempts);
        steps.push({ kind: 'fail', nodeId, cause: 'contract_violation', error: clipError(fact?.message ?? `a contract of '${nodeId}' was violated`), ...ref });
        break;
      }
      case 'timed_out':
        steps.push({ kind: 'fail', nodeId, cause: 'timed_out', error: clipError(context.nodeErrors[nodeId] ?? `node '${nodeId}' timed out`), ...ref });
        break;
      case 'backoff':
        if (!stopping) steps.push({ kind: 'schedule_retry', nodeId, attempt: attempts + 1, delayMs: backoffDelayMs(node, context.capCounts[nodeId] ?? 0) });
        break;
      case 'running':
        if (node.type === 'parallel') {
          const step = stopping ? stopGroup(model, snapshot, node, attempts) : groupStep(model, snapshot, node, attempts);
          if (step) steps.push(step);
        } else if (isChildNode(node)) {
          steps.push(...childSteps(snapshot.context, node, attempts, stopping));
        } else {
          steps.push({ kind: stopping ? 'abort' : 'in_flight', nodeId, attempt: attempts });
        }
        break;
      case 'paused': {
        const gate = latestGate(context, nodeId);
        if (gate && stopping) steps.push({ kind: 'cancel_gate', nodeId, approvalId: gate.approvalId });
        else if (gate) steps.push(gate.expiresAt === null ? { kind: 'paused', nodeId, approvalId: gate.approvalId } : { kind: 'paused', nodeId, approvalId: gate.approvalId, expiresAt: gate.expiresAt });
        break;
      }
      case 'expired': {
        const gate = latestGate(context, nodeId);
        const error = `approval gate '${nodeId}' expired at ${gate?.expiresAt ?? 'its due time'}`;
        steps.push({ kind: 'fail', nodeId, cause: 'approval_expired', error, ...ref, ...(gate === undefined ? {} : { approvalId: gate.approvalId }) });
        break;
      }
      case 'approved': {
        const gate = latestGate(context, nodeId);
        if (gate && !stopping) steps.push({ kind: 'resume', nodeId, approvalId: gate.approvalId });
        break;
      }
      case 'done':
        steps.push({ kind: 'complete' });
        break;
      case 'escalating': {
        const to = node.on_failure?.inject_into;
        if (to === undefined) throw new TypeError(`node '${nodeId}' escalates without inject_into`);
        if (!stopping) steps.push({ kind: 'escalate', from: nodeId, to, error: context.nodeErrors[nodeId] ?? `node '${nodeId}' failed` });
        break;
      }
      case 'exhausted':
        steps.push({ kind: 'fail', nodeId, cause: 'exceeded_iteration_cap', error: exhaustedMessage(node, context, nodeId), ...ref });
        break;
      case 'unretryable': {
        const last = context.nodeErrors[nodeId];
        const error = `node '${nodeId}' failed and its dispatcher said not to retry it${last === undefined ? '' : `: ${last}`}`;
        steps.push({ kind: 'fail', nodeId, cause: 'not_retryable', error: clipError(error), ...ref });
        break;
      }
      case 'rejected': {
        const gate = latestGate(context, nodeId);
        const who = gate?.approver ? ` by ${gate.approver}` : '';
        const why = gate?.reason ? `: ${gate.reason}` : '';
        steps.push({ kind: 'fail', nodeId, cause: 'approval_rejected', error: clipError(`approval '${nodeId}' was rejected${who}${why}`), ...ref });
        break;
      }
      case 'ambiguous_branch': {
        const choice = chooseBranch(model.edges.get(nodeId) ?? [], (field) => readContext(model, context, nodeId, field));
        const candidates = choice.kind === 'ambiguous_branch' ? choice.candidates.map((c) => `'${c}'`).join(', ') : '';
        steps.push({ kind: 'fail', nodeId, cause: 'ambiguous_branch', error: `after '${nodeId}' several guarded edges hold: ${candidates}`, ...ref });
        break;
      }
      case 'no_branch':
        steps.push({ kind: 'fail', nodeId, cause: 'no_branch', error: `after '${nodeId}' no edge's 'when' holds and there is no default edge`, ...ref });
        break;
    }
  }
  return steps;
}

/** Why a node that reached its cap fails (or, with an iteration_cap_exceeded escalation, asks a human). */
function exhaustedMessage(node: PlaybookNode, context: RunState, nodeId: string): string {
  const last = context.nodeErrors[nodeId];
  return clipError(`node '${nodeId}' failed after reaching its cap of ${describeFailurePolicy(node, context.maxIterationsDefault)}${last === undefined ? '' : `; last error: ${last}`}`);
}

/**
 * A running `playbook` / `map` node's steps (SPEC §12): join or fail once its
 * children add up to an outcome; else cancel every child in flight when it
 * is failing (or stopped by a fail_fast sibling), else wait for those in
 * flight and start the next items, in order, up to `max_concurrency`.
 */
function childSteps(state: RunState, node: ChildRunNode, attempt: number, stopping: boolean): NextStep[] {
  const set = state.children[node.id];
  if (set === undefined || set.attempt !== attempt) throw new TypeError(`node '${node.id}' runs attempt ${attempt} without its children`);
  const ref = (index: number) => ({ nodeId: node.id, attempt, index, childRunId: set.started[index] as string });
  const inFlight = Object.keys(set.inFlight).map(Number);
  if (stopping || isFailing(node, set)) {
    if (inFlight.length > 0) return inFlight.map((index) => ({ kind: 'cancel_child', ...ref(index) }));
    if (stopping) return [{ kind: 'stop_group', nodeId: node.id, attempt }];
  }
  const outcome = childrenOutcome(node, set);
  if (outcome.kind === 'succeeded') return [{ kind: 'join', nodeId: node.id, attempt, output: outcome.output }];
  if (outcome.kind === 'failed') return [{ kind: 'fail_group', nodeId: node.id, attempt, error: outcome.error, ...(outcome.retryable === false ? { retryable: false as const } : {}) }];
  const steps: NextStep[] = inFlight.map((index) => ({ kind: 'await_child', ...ref(index) }));
  let room = childConcurrency(node) - set.running;
  for (let index = set.next; index < set.items.length && room > 0; index += 1) {
    if (set.started[index] !== undefined) continue;
    steps.push({ kind: 'start_child', nodeId: node.id, attempt, index, childRunId: childRunIdOf(state.runId, node.id, attempt, index) });
    room -= 1;
  }
  return steps;
}

/** A running group inside a failing fail_fast group stops (aborted) once nothing inside it runs or waits. */
function stopGroup(model: PlaybookModel, snapshot: StepSnapshot, group: ParallelNode, attempt: number): NextStep | undefined {
  return isGroupSettled(model, snapshot.value, group.id) ? { kind: 'stop_group', nodeId: group.id, attempt } : undefined;
}

/** A running group's own next step: join when every branch succeeded, fail when its failure mode says so. */
function groupStep(model: PlaybookModel, snapshot: StepSnapshot, group: ParallelNode, attempt: number): NextStep | undefined {
  const regions = groupRegions(model, snapshot.value, group.id);
  if (regions === undefined) return undefined;
  const ends = group.branches.map((branch) => regions[branch.id]);
  if (ends.every((end) => end === 'succeeded')) {
    return { kind: 'join', nodeId: group.id, attempt, output: joinOutput(model, snapshot.context, group.id) };
  }
  const failed = group.branches.filter((branch) => regions[branch.id] === 'failed');
  if (failed.length === 0) return undefined;
  const settled =
    group.failure === 'wait_all'
      ? ends.every((end) => typeof end === 'string')
      : isGroupSettled(model, snapshot.value, group.id);
  if (!settled) return undefined;
  // In declaration order, so the message never depends on which branch failed first.
  const why = failed.map((branch) => `branch '${branch.id}': ${snapshot.context.nodeErrors[branch.id] ?? 'failed'}`).join('; ');
  const error = `parallel group '${group.id}' failed: ${why}`;
  return { kind: 'fail_group', nodeId: group.id, attempt, error: clipError(error) };
}

/** The longest error message an event records. */
const MAX_ERROR_LENGTH = 4000;

/** An error message as events record it: at most 4,000 characters. Pure. */
export function clipError(text: string): string {
  return clipText(text, MAX_ERROR_LENGTH);
}

/** Run status as the projections store it. */
export type RunStatus = 'running' | 'paused' | 'completed' | 'failed' | 'cancelled';

/**
 * The run's status, read from the machine state (SPEC §9): a final state names
 * it; otherwise the run is `paused` when nothing is running or ready to run and
 * at least one gate waits for a human, else `running`. `known`: the state's
 * `nextSteps`, when the caller has them. Pure.
 */
export function runStatusOf(model: PlaybookModel, snapshot: StepSnapshot, known?: readonly NextStep[]): RunStatus {
  const { value } = snapshot;
  if (value === 'completed') return 'completed';
  if (value === 'cancelled') return 'cancelled';
  if (value === 'failed' || value === 'exceeded_iteration_cap') return 'failed';
  if (value === 'idle') return 'running';
  const steps = known ?? nextSteps(model, snapshot);
  const waiting = steps.some((step) => step.kind === 'paused');
  const working = steps.some((step) => step.kind !== 'paused');
  return waiting && !working ? 'paused' : 'running';
}

/** Why a gate cannot be resumed, or the gate that can. */
export type GateResumability =
  | { resumable: true; approvalId: string; nodeId: string }
  | { resumable: false; reason: 'unknown' | 'pending' | 'rejected' | 'expired' | 'cancelled' | 'resumed' | 'not_waiting'; message: string };

/**
 * Whether the gate `approvalId` can be resumed now: it was approved, nobody
 * resumed it, and the machine waits at it (SPEC §5.4). The one rule the
 * runtime, the CLI and the viewer use. Pure.
 */
export function resumableGate(snapshot: StepSnapshot, approvalId: string): GateResumability {
  const gate = snapshot.context.approvals[approvalId];
  if (gate === undefined) return { resumable: false, reason: 'unknown', message: `run '${snapshot.context.runId}' has no gate '${approvalId}'` };
  const name = `gate '${approvalId}' of run '${gate.runId}'`;
  if (gate.resumed) return { resumable: false, reason: 'resumed', message: `${name} was already resumed` };
  if (gate.status !== 'approved') return { resumable: false, reason: gate.status, message: `${name} is ${gate.status}, not approved` };
  const waits = typeof snapshot.value !== 'string' && isWaitingAt(snapshot.value, gate.nodeId);
  if (!waits) return { resumable: false, reason: 'not_waiting', message: `${name} is not a gate the run waits at` };
  return { resumable: true, approvalId, nodeId: gate.nodeId };
}

/** True when some node state named `nodeId` is in phase `approved` anywhere in the state value. */
function isWaitingAt(value: unknown, nodeId: string): boolean {
  if (typeof value !== 'object' || value === null) return false;
  for (const [key, child] of Object.entries(value)) {
    if (key === nodeId && child === 'approved') return true; // an approval node's gate, or a work node's escalation gate
    if (isWaitingAt(child, nodeId)) return true;
  }
  return false;
}
