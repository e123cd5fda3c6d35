import { assign, createMachine } from 'xstate';
import type { AnyStateMachine } from 'xstate';
import { canonicalJson } from '../events/canonicalJson.js';
import { entryViolation, hasEntryContract, hasExitContract, pureExitViolation } from '../contracts/checkContracts.js';
import type { EscalationTrigger, FailureCause, RunEvent } from '../events/types.js';
import type { ParallelNode, PlaybookDefinition, PlaybookNode } from '../playbook/types.js';
import { decideGatePolicy } from '../policy/gatePolicy.js';
import { chooseBranch } from './branching.js';
import { childConcurrency, childRunIdOf, childrenOutcome, isChildNode, isFailing } from './childRuns.js';
import { attemptTimeoutMs, backoffDelayMs, branchOf, createPlaybookModel, decideFailure, enclosingGroups } from './playbookModel.js';
import type { FailureDecision, PlaybookModel } from './playbookModel.js';
import { emptyRunState, evolve, joinOutput, latestGate, readContext, redriveNodeOf, violationAt } from './runState.js';
import type { RunState } from './runState.js';
import { busyLeaves, groupRegions, isGroupSettled, stoppedByFailFast } from './stateValue.js';

/** The XState machine of a playbook: context is the run fold, events are run events. */
export type PlaybookMachine = AnyStateMachine;

/**
 * The end states of every compiled machine; a run ends in exactly one. `completed`
 * and `cancelled` are final; `failed` and `exceeded_iteration_cap` accept only
 * `RunRetried` (a redrive, SPEC §10).
 */
export const finalStates = ['completed', 'failed', 'exceeded_iteration_cap', 'cancelled'] as const;
export type FinalState = (typeof finalStates)[number];

/**
 * Substates of a node state. Each one but `running` and `paused` names the one
 * event the runtime must append next; that is how the machine *decides* and the
 * host only executes (the xstate "serverless workflow" pattern, over events).
 * A parallel group's `running` is a parallel state with one region per branch.
 */
export type NodePhase =
  | 'ready' // append NodeStarted (work, group; after a backoff not before its dueAt) or RunPaused (approval)
  | 'backoff' // a retry waits for its backoff: append NodeRetryScheduled
  | 'running' // a dispatch is in flight (or died: recovery appends NodeFailed); a group's branches run
  | 'done' // no outgoing edge at the top level: append RunCompleted
  | 'no_branch' // no edge's `when` holds and there is no default: the run (or branch) fails no_branch
  | 'ambiguous_branch' // two guarded edges hold: the run (or branch) fails ambiguous_branch
  | 'escalating' // append NodeEscalated to inject_into
  | 'exhausted' // the cap is reached: the run (or branch) fails exceeded_iteration_cap
  | 'unretryable' // the attempt failed with retryable: false: the run (or branch) fails not_retryable
  | 'paused' // waiting for a human
  | 'approved' // waiting for resumePlaybook: append RunResumed
  | 'rejected' // the run (or branch) fails approval_rejected
  | 'expired' // the gate expired (ApprovalExpired): the run (or branch) fails approval_expired
  | 'checking' // transient: after a success, the contract_violation handler decides (SPEC §13)
  | 'violated' // a contract check failed and the handler aborts (or the schema is unknown): fails contract_violation
  | 'timed_out' // an attempt timed out and the agentic_timeout handler aborts: fails timed_out
  | 'hitl_entry' // an escalation gate for a `requires` violation: append RunPaused{escalation}
  | 'hitl_exit' // an escalation gate for a violation found once the output was merged
  | 'hitl_cap' // an escalation gate instead of exceeding the cap (iteration_cap_exceeded: hitl_escalate)
  | 'hitl_timeout'; // an escalation gate for a timed-out attempt (agentic_timeout: hitl_escalate)
// A work node's escalation gate waits in `paused`, then `approved` / `rejected` / `expired`, as an approval node's does.

/** The final states of a branch's region. */
export type BranchEnd = 'succeeded' | 'failed' | 'stopped';

type Guard = { type: string; params?: Record<string, unknown> };
/** No target: the event is applied and the state stays (a violation recorded while the node is ready or running). */
type Transition = { target?: string; guard?: Guard; actions?: 'apply' };
type StateJson = {
  initial?: string;
  type?: 'final' | 'parallel';
  on?: Record<string, Transition | Transition[]>;
  always?: Transition[];
  states?: Record<string, StateJson>;
  description?: string;
};

/** Guard params all carry the node the transition belongs to. */
interface NodeParams { node: string }
type GuardArgs = { context: RunState; event: RunEvent };
/** A guard that reads the machine's state as well as its context (the shape of xstate's own `stateIn`). */
type StateGuard = ((args: GuardArgs) => boolean) & { check: (snapshot: { value: unknown }, args: GuardArgs) => boolean };

/**
 * Compiles a parsed playbook to an XState v5 machine (SPEC §3, §9).
 *
 * One compound state per node under `active`; a parallel group's `running` is
 * an XState parallel state with one region per branch, each region holding its
 * branch's node states and the ends `succeeded`, `failed`, `stopped`. End
 * states `completed`, `failed`, `exceeded_iteration_cap`, `cancelled` (the two
 * failed ones accept only a redrive, `RunRetried`). Every
 * decision is a guarded transition: retry, escalation, branch choice, join,
 * fail-fast, each failure cause from the state that names it. Guards and the
 * single action (`apply`, which is `evolve`) are referenced by name, so
 * `machine.config` is plain JSON that Stately Studio can import.
 *
 * Pure. Assumes `definition` came from `parsePlaybook` (ids are identifiers).
 *
 * @example
 * const { definition } = parsePlaybook(source);
 * const machine = compilePlaybook(definition);
 * let [snapshot] = initialTransition(machine);
 * for (const event of events) [snapshot] = transition(machine, snapshot, event);
 */
export function compilePlaybook(definition: PlaybookDefinition): PlaybookMachine {
  return compileModel(createPlaybookModel(definition));
}

/** As `compilePlaybook`, for a model already indexed. */
export function compileModel(model: PlaybookModel): PlaybookMachine {
  const compiler = new MachineCompiler(model);
  const config = {
    id: compiler.rootId,
    initial: 'idle',
    context: emptyRunState(),
    states: {
      idle: { on: { RunStarted: { target: 'active', actions: 'apply' } } },
      active: {
        initial: model.entry,
        on: {
          // Only a host failure and a cancellation may end a run from anywhere.
          RunFailed: { target: 'failed', guard: { type: 'isInternalError' }, actions: 'apply' },
          RunCancelled: { target: 'cancelled', actions: 'apply' },
        },
        states: compiler.graphStates(model.definition.nodes, null),
      },
      completed: { type: 'final' },
      // A failed run can be driven again from the node it failed at (SPEC §10 redrive), so these two are not final.
      failed: { on: { RunRetried: compiler.redrives() } },
      exceeded_iteration_cap: { on: { RunRetried: compiler.redrives() } },
      cancelled: { type: 'final' },
    },
  };
  const apply = assign(({ context, event }: GuardArgs) => evolve(model, context, event));
  const machine = createMachine(config as never, { actions: { apply }, guards: { ...contextGuards(model), ...compiler.stateGuards } } as never) as PlaybookMachine;
  models.set(machine, model);
  return machine;
}

const models = new WeakMap<PlaybookMachine, PlaybookModel>();

/**
 * The model a machine was compiled from by `compileModel`, which its `apply`
 * action folds with; undefined for any other machine (one built elsewhere, or
 * derived with `machine.provide`). Pure.
 */
export function modelOfMachine(machine: PlaybookMachine): PlaybookModel | undefined {
  return models.get(machine);
}

/** Stately and XState ids: the playbook name when it is a plain identifier. */
function machineIdOf(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_-]*$/.test(name) ? name : 'playbook';
}

/** Where a node's graph sits: the top level, or a branch region (its state id). */
interface Scope {
  /** `#root.active...<group>.running.<branch>` for a branch, null at the top level. */
  region: string | null;
  /** The state id of the graph's node states: `#root.active` or `<region>.nodes`. */
  graph: string;
}

class MachineCompiler {
  readonly rootId: string;
  readonly stateGuards: Record<string, StateGuard> = {};

  constructor(private readonly model: PlaybookModel) {
    this.rootId = machineIdOf(model.definition.name);
  }

  /** RunRetried: back into the top-level node the run failed at, by the one rule (`redriveNodeOf`). */
  redrives(): Transition[] {
    return this.model.definition.nodes.map((node) => ({ target: `#${this.rootId}.active.${node.id}`, guard: { type: 'retriesFrom', params: { node: node.id } }, actions: 'apply' as const }));
  }

  graphStates(nodes: readonly PlaybookNode[], region: string | null): Record<string, StateJson> {
    const scope: Scope = { region, graph: region === null ? `#${this.rootId}.active` : `${region}.nodes` };
    const states: Record<string, StateJson> = {};
    for (const node of nodes) states[node.id] = this.nodeState(node, scope);
    return states;
  }

  private nodeState(node: PlaybookNode, scope: Scope): StateJson {
    const p = { node: node.id };
    const base = { description: node.description ?? `${node.type} node`, initial: 'ready' };
    const done = this.successTargets(node, scope);
    const states: Record<string, StateJson> = {};
    const after: Transition = done.routing === undefined ? done.direct : { target: 'routing', actions: 'apply' };
    // Inside a branch, a node a redrive keeps goes straight on when entered, the way its success went (transient; no event).
    const kept: Transition[] | undefined = scope.region === null ? undefined : [{ target: after.target as string, guard: { type: 'keepsNode', params: p } }];
    if (done.routing !== undefined) states.routing = { always: done.routing };
    for (const phase of done.phases) states[phase] = this.endState(node, phase, scope);

    if (node.type === 'approval') {
      const paused: StateJson = {
        on: {
          ApprovalGranted: { target: 'approved', guard: { type: 'isOpenGate', params: p }, actions: 'apply' },
          ApprovalRejected: { target: 'rejected', guard: { type: 'isOpenGate', params: p }, actions: 'apply' },
          ApprovalExpired: { target: 'expired', guard: { type: 'expiresNow', params: p }, actions: 'apply' },
          // Logs written before ApprovalExpired existed ended an expired gate's run from here.
          ...this.ending(node, 'approval_expired', scope, { type: 'expiresGate', params: p }),
        },
      };
      const stop = this.stopTransition(node, 'ApprovalCancelled', scope);
      if (stop && paused.on) paused.on.ApprovalCancelled = stop;
      return {
        ...base,
        states: {
          ready: { on: { RunPaused: { target: 'paused', guard: this.startGuard(node), actions: 'apply' } }, ...(kept === undefined ? {} : { always: kept }) },
          paused,
          approved: { on: { RunResumed: { ...after, guard: { type: 'isResumable', params: p } } } },
          rejected: { on: this.ending(node, 'approval_rejected', scope) },
          expired: { on: this.ending(node, 'approval_expired', scope) },
          ...states,
        },
      };
    }

    const failure = this.failureTransitions(node, scope);
    const targeted = (phase: NodePhase) => failure.some((t) => t.target === phase);
    const inject = node.on_failure?.inject_into;
    if (targeted('escalating') && inject !== undefined) {
      states.escalating = { on: { NodeEscalated: { target: `${scope.graph}.${inject}`, guard: { type: 'isNode', params: p }, actions: 'apply' } } };
    }
    if (targeted('exhausted')) states.exhausted = { on: this.ending(node, 'exceeded_iteration_cap', scope) };
    if (targeted('unretryable')) states.unretryable = { on: this.ending(node, 'not_retryable', scope) };
    if (targeted('timed_out')) states.timed_out = { on: this.ending(node, 'timed_out', scope) };
    if (targeted('backoff')) {
      states.backoff = { on: { NodeRetryScheduled: { target: 'ready', guard: { type: 'schedulesRetry', params: p }, actions: 'apply' } } };
    }
    const ready: StateJson = { on: { NodeStarted: { target: 'running', guard: this.startGuard(node), actions: 'apply' } }, ...(kept === undefined ? {} : { always: kept }) };
    // Contracts (SPEC §13): a violation is recorded where it is found; the contract_violation handler decides what follows.
    const contractAction = this.model.handlers.contract_violation?.action;
    if (hasEntryContract(this.model, node) && ready.on) {
      const target = contractAction === 'abort' ? 'violated' : contractAction === 'hitl_escalate' ? 'hitl_entry' : undefined;
      ready.on.ContractViolated = { ...(target === undefined ? {} : { target }), guard: { type: 'violatesOnEntry', params: p }, actions: 'apply' };
    }
    const exit = hasExitContract(this.model, node);
    const succeeds =
      node.type === 'parallel'
        ? this.groupGuard(node, 'joins', (snapshot, args) => this.joins(node, snapshot, args) && exitConsistent(this.model, args, node.id))
        : { type: isChildNode(node) ? 'childrenSucceed' : exit ? 'succeedsNode' : 'isNode', params: p };
    const running: Record<string, Transition | Transition[]> = { NodeSucceeded: { ...after, guard: succeeds }, NodeFailed: failure };
    // A child-run node's attempt records its children's starts and ends while it runs (SPEC §12).
    if (isChildNode(node)) Object.assign(running, { ChildRunStarted: { guard: this.childStartGuard(node), actions: 'apply' }, ChildRunSettled: { guard: { type: 'settlesChild', params: p }, actions: 'apply' } });
    if (exit) {
      running.ContractViolated = { guard: { type: 'violatesOnExit', params: p }, actions: 'apply' };
      const checks: Transition[] = [];
      if (contractAction === 'abort') checks.push({ target: 'violated', guard: { type: 'exitViolated', params: p } });
      else if (contractAction === 'hitl_escalate') checks.push({ target: 'hitl_exit', guard: { type: 'exitViolated', params: p } });
      else if (typeof node.ensures?.schema === 'string') checks.push({ target: 'violated', guard: { type: 'exitFailsClosed', params: p } });
      if (checks.length > 0) {
        states.checking = { always: [...checks, { target: after.target as string }] };
        running.NodeSucceeded = { target: 'checking', guard: succeeds, actions: 'apply' };
      }
    }
    const escalations = this.escalationStates(node, scope, after);
    if ((contractAction === 'abort' && hasEntryContract(this.model, node)) || states.checking?.always?.some((t) => t.target === 'violated')) states.violated = { on: this.ending(node, 'contract_violation', scope) };
    if (contractAction === 'hitl_escalate' && hasEntryContract(this.model, node)) states.hitl_entry = escalations.open('contract_violation', 'entry');
    if (contractAction === 'hitl_escalate' && exit) states.hitl_exit = escalations.open('contract_violation', 'exit');
    if (targeted('hitl_cap')) states.hitl_cap = escalations.open('iteration_cap_exceeded');
    if (targeted('hitl_timeout')) states.hitl_timeout = escalations.open('agentic_timeout');
    // Resumed, an exit gate goes on the way the success went; every other gate starts the node again.
    const resumes = { exit: states.hitl_exit !== undefined, ready: ['hitl_entry', 'hitl_cap', 'hitl_timeout'].some((phase) => phase in states) };
    if (resumes.exit || resumes.ready) Object.assign(states, escalations.gate(resumes));

    if (node.type === 'parallel') {
      return { ...base, states: { ready, running: { type: 'parallel', on: running, states: this.regions(node, `${scope.graph}.${node.id}.running`) }, ...states } };
    }
    return { ...base, states: { ready, running: { on: running }, ...states } };
  }

  /**
   * A work node's escalation gates (SPEC §13, `hitl_escalate`): a state per
   * trigger that opens the gate (`RunPaused{escalation}`), then `paused`,
   * `approved`, `rejected` as at an approval node. Resumed, a contract
   * violation found after a success goes on the way the success goes; every
   * other trigger starts the node again (the cap and timeout ones with a fresh
   * round of its cap: the fold resets its counts). Rejected, the run (or
   * branch) fails `approval_rejected`.
   */
  private escalationStates(node: PlaybookNode, scope: Scope, after: Transition) {
    const p = { node: node.id };
    return {
      open: (on: EscalationTrigger, checkpoint?: 'entry' | 'exit'): StateJson => ({
        on: { RunPaused: { target: 'paused', guard: { type: 'opensEscalation', params: { ...p, on, ...(checkpoint === undefined ? {} : { checkpoint }) } }, actions: 'apply' } },
      }),
      gate: (resumes: { exit: boolean; ready: boolean }): Record<string, StateJson> => {
        const paused: StateJson = {
          on: {
            ApprovalGranted: { target: 'approved', guard: { type: 'isOpenGate', params: p }, actions: 'apply' },
            ApprovalRejected: { target: 'rejected', guard: { type: 'isOpenGate', params: p }, actions: 'apply' },
          },
        };
        const stop = this.stopTransition(node, 'ApprovalCancelled', scope);
        if (stop && paused.on) paused.on.ApprovalCancelled = stop;
        // A handler with `timeout` gives its gates an expiry, decided as at any gate.
        const expires = Object.values(this.model.handlers).some((handler) => handler?.action === 'hitl_escalate' && handler.timeout !== undefined);
        const expiry: Record<string, StateJson> = {};
        if (expires && paused.on) {
          paused.on.ApprovalExpired = { target: 'expired', guard: { type: 'expiresNow', params: p }, actions: 'apply' };
          expiry.expired = { on: this.ending(node, 'approval_expired', scope) };
        }
        return {
          ...expiry,
          paused,
          approved: {
            on: {
              RunResumed: [
                ...(resumes.exit ? [{ target: after.target as string, guard: { type: 'resumesEscalation', params: { ...p, to: 'exit' } }, actions: 'apply' as const }] : []),
                ...(resumes.ready ? [{ target: 'ready', guard: { type: 'resumesEscalation', params: { ...p, to: 'ready' } }, actions: 'apply' as const }] : []),
              ],
            },
          },
          rejected: { on: this.ending(node, 'approval_rejected', scope) },
        };
      },
    };
  }

  /** One region per branch: its nodes, then how it ended. */
  private regions(group: ParallelNode, runningId: string): Record<string, StateJson> {
    const regions: Record<string, StateJson> = {};
    for (const branch of group.branches) {
      const region = `${runningId}.${branch.id}`;
      regions[branch.id] = {
        description: branch.description ?? `branch of '${group.id}'`,
        initial: 'entering',
        states: {
          // A redrive keeps the branches that had succeeded: they end at once (transient state).
          entering: { always: [{ target: 'succeeded', guard: { type: 'keepsBranch', params: { branch: branch.id } } }, { target: 'nodes' }] },
          nodes: { initial: this.model.branches.get(branch.id)?.entry as string, states: this.graphStates(branch.nodes, region) },
          succeeded: { type: 'final' },
          failed: { type: 'final' },
          stopped: { type: 'final' },
        },
      };
    }
    return regions;
  }

  /**
   * Where success leads: straight on when only one place is possible, else a
   * transient `routing` state whose eventless transitions choose the edge on
   * the context the success produced. Only ends that can happen get a state.
   */
  private successTargets(node: PlaybookNode, scope: Scope): { direct: Transition; routing?: Transition[]; phases: NodePhase[] } {
    const p = { node: node.id };
    const edges = this.model.edges.get(node.id) ?? [];
    const exit = scope.region === null ? 'done' : `${scope.region}.succeeded`;
    const phases: NodePhase[] = scope.region === null && edges.length === 0 ? ['done'] : [];
    if (edges.length === 0) return { direct: { target: exit, actions: 'apply' }, phases };
    const guarded = edges.filter((edge) => edge.when !== undefined);
    const fallback = edges.find((edge) => edge.when === undefined);
    if (guarded.length === 0 && fallback) return { direct: { target: `${scope.graph}.${fallback.to}`, actions: 'apply' }, phases };
    const routing: Transition[] = [];
    if (guarded.length > 1) {
      routing.push({ target: 'ambiguous_branch', guard: { type: 'isAmbiguous', params: p } });
      phases.push('ambiguous_branch');
    }
    for (const to of new Set(guarded.map((edge) => edge.to))) {
      if (to !== fallback?.to) routing.push({ target: `${scope.graph}.${to}`, guard: { type: 'branchesTo', params: { ...p, to } } });
    }
    if (fallback) {
      routing.push({ target: `${scope.graph}.${fallback.to}` });
    } else {
      routing.push({ target: 'no_branch' });
      phases.push('no_branch');
    }
    return { direct: { target: exit, actions: 'apply' }, routing, phases };
  }

  private endState(node: PlaybookNode, phase: NodePhase, scope: Scope): StateJson {
    if (phase === 'done') return { on: { RunCompleted: { target: `#${this.rootId}.completed`, actions: 'apply' } } };
    return { on: this.ending(node, phase as FailureCause, scope) };
  }

  /**
   * The one event that ends the run (top level) or the branch (inside a
   * group) with `cause`, accepted only from the state that names the cause.
   */
  private ending(node: PlaybookNode, cause: FailureCause, scope: Scope, guard?: Guard): Record<string, Transition> {
    const own = guard ?? { type: 'endsWith', params: { node: node.id, cause } };
    if (scope.region !== null) return { BranchFailed: { target: `${scope.region}.failed`, guard: own, actions: 'apply' } };
    const target = cause === 'exceeded_iteration_cap' ? 'exceeded_iteration_cap' : 'failed';
    return { RunFailed: { target: `#${this.rootId}.${target}`, guard: own, actions: 'apply' } };
  }

  /** Retry, escalate or exhaust: only the transitions this node's policy can take. */
  private failureTransitions(node: PlaybookNode, scope: Scope): Transition[] {
    const inject = node.on_failure?.inject_into;
    const work = node.type !== 'parallel';
    const decisions: FailureDecision[] =
      inject === undefined ? (work ? ['retry', 'give_up', 'exhaust'] : ['retry', 'exhaust']) : node.on_failure?.max_iterations === 0 ? ['exhaust'] : ['escalate', 'exhaust'];
    const retry = node.on_failure?.backoff === undefined ? 'ready' : 'backoff';
    const exhaust = this.model.handlers.iteration_cap_exceeded?.action === 'hitl_escalate' ? 'hitl_cap' : 'exhausted';
    const targets: Record<FailureDecision, string> = { retry, give_up: 'unretryable', escalate: 'escalating', exhaust };
    const out: Transition[] = [];
    const stop = this.stopTransition(node, 'NodeFailed', scope);
    if (stop) out.push(stop);
    // A timed-out attempt meets the agentic_timeout handler first (SPEC §13); inject_hint only adds a hint (the fold) and retries as usual.
    const onTimeout = this.model.handlers.agentic_timeout?.action;
    if (work && attemptTimeoutMs(node) !== null && (onTimeout === 'abort' || onTimeout === 'hitl_escalate')) {
      out.push({ target: onTimeout === 'abort' ? 'timed_out' : 'hitl_timeout', guard: { type: 'timesOut', params: { node: node.id } }, actions: 'apply' });
    }
    for (const decision of decisions) {
      const guard: Guard =
        node.type === 'parallel'
          ? this.groupGuard(node, `fails:${decision}`, (snapshot, args) => this.groupFails(node, snapshot, args) && failureIs(this.model, args, node.id, decision))
          : { type: 'failsWith', params: { node: node.id, decision } };
      out.push({ target: targets[decision], guard, actions: 'apply' });
    }
    return out;
  }

  /**
   * Inside a `fail_fast` group whose sibling branch failed, an in-flight
   * attempt ends aborted and a pending gate is cancelled: the region stops.
   */
  private stopTransition(node: PlaybookNode, event: 'NodeFailed' | 'ApprovalCancelled', scope: Scope): Transition | undefined {
    if (scope.region === null) return undefined;
    const failFast = this.failFastGroups(node.id);
    if (failFast.length === 0) return undefined;
    const name = `${event === 'NodeFailed' ? 'aborts' : 'cancelsGate'}:${node.id}`;
    this.stateGuards[name] = stateGuard((snapshot, args) => {
      const e = args.event;
      const ofNode =
        e.type === 'NodeFailed'
          ? e.data.nodeId === node.id && e.data.aborted === true && e.data.attempt === (args.context.attempts[node.id] ?? 0)
          : e.type === 'ApprovalCancelled' && e.data.nodeId === node.id && args.context.approvals[e.data.approvalId]?.status === 'pending';
      // A nested group stops only once nothing inside it is in flight or waiting any more; a child-run node once no child is.
      const settled = node.type === 'parallel' ? this.isSettled(node.id, snapshot.value) : !isChildNode(node) || args.context.children[node.id]?.running === 0;
      return ofNode && settled && stoppedByFailFast(this.model, snapshot.value, node.id);
    });
    return { target: `${scope.region}.stopped`, guard: { type: name }, actions: 'apply' };
  }

  /**
   * A child of a `playbook` / `map` node starts (SPEC §12): the next item in
   * order, under the derived id, while fewer than `max_concurrency` are in
   * flight and no more than `tolerate` failed; never inside a failing
   * `fail_fast` group.
   */
  private childStartGuard(node: PlaybookNode): Guard {
    if (this.failFastGroups(node.id).length === 0) return { type: 'startsChild', params: { node: node.id } };
    const name = `startsChild:${node.id}`;
    this.stateGuards[name] = stateGuard((snapshot, args) => startsChild(this.model, args, node.id) && !stoppedByFailFast(this.model, snapshot.value, node.id));
    return { type: name };
  }

  /**
   * Starting work: the node's turn, unless an enclosing `fail_fast` group is
   * failing, or an enclosing group already has `max_concurrency` dispatches in
   * flight.
   */
  private startGuard(node: PlaybookNode): Guard {
    const groups = enclosingGroups(this.model, node.id).map((id) => this.model.nodes.get(id) as ParallelNode);
    const failFast = groups.filter((group) => group.failure === 'fail_fast');
    const bounded = groups.filter((group) => group.max_concurrency !== undefined);
    const entry = hasEntryContract(this.model, node);
    if (failFast.length === 0 && (bounded.length === 0 || node.type === 'approval')) return { type: entry ? 'startsNode' : 'isNode', params: { node: node.id } };
    const name = `starts:${node.id}`;
    const dispatches = node.type !== 'approval' && node.type !== 'parallel';
    this.stateGuards[name] = stateGuard((snapshot, args) => {
      if (!belongs(args.context, args.event, node.id) || (entry && !entryChecked(this.model, args.context, node.id))) return false;
      if (stoppedByFailFast(this.model, snapshot.value, node.id)) return false;
      return !dispatches || bounded.every((group) => busyLeaves(this.model, snapshot.value, group.id, 'running') < (group.max_concurrency as number));
    });
    return { type: name };
  }

  /** Every branch succeeded and the join carries exactly their outputs in declaration order. */
  private joins(group: ParallelNode, snapshot: { value: unknown }, args: GuardArgs): boolean {
    const { context, event } = args;
    if (event.type !== 'NodeSucceeded' || !belongs(context, event, group.id)) return false;
    const regions = groupRegions(this.model, snapshot.value, group.id);
    if (regions === undefined || group.branches.some((branch) => regions[branch.id] !== 'succeeded')) return false;
    return canonicalJson(event.data.output) === canonicalJson(joinOutput(this.model, context, group.id));
  }

  /**
   * A group fails once a branch failed and, for `fail_fast`, nothing inside it
   * is still in flight or waiting at a gate; for `wait_all`, once every branch ended.
   */
  private groupFails(group: ParallelNode, snapshot: { value: unknown }, args: GuardArgs): boolean {
    const { context, event } = args;
    if (event.type !== 'NodeFailed' || event.data.aborted === true || !belongs(context, event, group.id)) return false;
    const regions = groupRegions(this.model, snapshot.value, group.id);
    if (regions === undefined || !group.branches.some((branch) => regions[branch.id] === 'failed')) return false;
    if (group.failure === 'wait_all') return group.branches.every((branch) => typeof regions[branch.id] === 'string');
    return this.isSettled(group.id, snapshot.value);
  }

  private isSettled(groupId: string, value: unknown): boolean {
    return isGroupSettled(this.model, value, groupId);
  }

  /** The fail_fast groups enclosing a node: whether its stop and start guards need the state at all. */
  private failFastGroups(nodeId: string): ParallelNode[] {
    return enclosingGroups(this.model, nodeId)
      .map((id) => this.model.nodes.get(id) as ParallelNode)
      .filter((group) => group.failure === 'fail_fast');
  }

  private groupGuard(group: ParallelNode, what: string, check: (snapshot: { value: unknown }, args: GuardArgs) => boolean): Guard {
    const name = `${what}:${group.id}`;
    this.stateGuards[name] = stateGuard(check);
    return { type: name };
  }
}

/**
 * Wraps a check of (state, context, event) as an xstate guard. xstate calls a
 * guard implementation that has a `check` method with the current snapshot,
 * exactly as it does for its own `stateIn`; the plain call (no snapshot) is
 * never made for such guards.
 */
function stateGuard(check: (snapshot: { value: unknown }, args: GuardArgs) => boolean): StateGuard {
  const guard = (() => false) as unknown as StateGuard;
  guard.check = check;
  return guard;
}

/** The node an event is about, if any. */
export function eventNodeId(event: RunEvent): string | undefined {
  switch (event.type) {
    case 'NodeEscalated':
      return event.data.from;
    case 'RunStarted':
    case 'RunCompleted':
    case 'RunCancelled':
    case 'RunRetried':
      return undefined;
    default:
      return event.data.nodeId;
  }
}

/**
 * Whether an event belongs to this node at this point: right node id, and for
 * node events the attempt the fold expects. An aborted failure only ever
 * belongs to a stopping branch (see stopTransition). A log that breaks this is
 * corrupt.
 */
function belongs(context: RunState, event: RunEvent, node: string): boolean {
  if (eventNodeId(event) !== node) return false;
  const attempts = context.attempts[node] ?? 0;
  if (event.type === 'NodeStarted') {
    // After a backoff, not before its due time (SPEC §10).
    const due = context.retryDue[node];
    return event.data.attempt === attempts + 1 && (due === undefined || Date.parse(event.at) >= Date.parse(due));
  }
  if (event.type === 'NodeSucceeded') return event.data.attempt === attempts;
  // A violation found in an attempt's output is recorded with its success, never before a failure.
  if (event.type === 'NodeFailed') return event.data.attempt === attempts && event.data.aborted !== true && violationAt(context, node, 'exit', attempts) === undefined;
  return true;
}

function failureIs(model: PlaybookModel, { context, event }: GuardArgs, nodeId: string, decision: FailureDecision): boolean {
  const node = model.nodes.get(nodeId);
  if (!node || !belongs(context, event, nodeId)) return false;
  if (isChildNode(node) && !childrenFail(model, context, event, nodeId)) return false;
  const retryable = event.type === 'NodeFailed' ? event.data.retryable : undefined;
  const counts = { attempts: context.capCounts[nodeId] ?? 0, escalations: context.escalations[nodeId] ?? 0, ...(retryable === undefined ? {} : { retryable }) };
  return decideFailure(node, counts, context.maxIterationsDefault) === decision;
}

/**
 * A child-run node's attempt fails only as its children say (SPEC §12): more
 * failed than it tolerates and none is in flight, or its items are no list
 * (then, and only then, not retryable). Its process dying fails nothing: the
 * children run on, and whoever drives the run next reads their logs. Pure.
 */
function childrenFail(model: PlaybookModel, context: RunState, event: RunEvent, nodeId: string): boolean {
  const node = model.nodes.get(nodeId);
  const set = context.children[nodeId];
  if (event.type !== 'NodeFailed' || !isChildNode(node) || set === undefined || set.attempt !== event.data.attempt || event.data.interrupted === true) return false;
  const outcome = childrenOutcome(node, set);
  return outcome.kind === 'failed' && (event.data.retryable === false) === (outcome.retryable === false);
}

/** The next child of a node's attempt, as `childStartGuard` describes. Pure. */
function startsChild(model: PlaybookModel, { context, event }: GuardArgs, nodeId: string): boolean {
  const node = model.nodes.get(nodeId);
  if (event.type !== 'ChildRunStarted' || event.data.nodeId !== nodeId || !isChildNode(node)) return false;
  const set = context.children[nodeId];
  const { attempt, index, childRunId } = event.data;
  if (set === undefined || attempt !== (context.attempts[nodeId] ?? 0) || set.attempt !== attempt) return false;
  if (index !== set.next || index >= set.items.length || isFailing(node, set) || set.running >= childConcurrency(node)) return false;
  return childRunId === childRunIdOf(context.runId, nodeId, attempt, index);
}

/** A RunFailed (top level) or BranchFailed (naming the node's own branch) for this node with this cause. */
function endsAt(model: PlaybookModel, event: RunEvent, node: string, cause: FailureCause): boolean {
  if (event.type === 'RunFailed') return event.data.nodeId === node && event.data.cause === cause;
  if (event.type !== 'BranchFailed' || event.data.nodeId !== node || event.data.cause !== cause) return false;
  const branch = branchOf(model, node);
  return branch !== undefined && branch.id === event.data.branchId && branch.groupId === event.data.groupId;
}

/**
 * A node may start when its `requires` hold, or when the violation was
 * recorded for the attempt about to start (the handler let it go on). Pure.
 */
function entryChecked(model: PlaybookModel, context: RunState, nodeId: string): boolean {
  return violationAt(context, nodeId, 'entry', (context.attempts[nodeId] ?? 0) + 1) !== undefined || entryViolation(model, context, nodeId) === undefined;
}

/**
 * A success agrees with the checks that need no host registry: none failed
 * and none was recorded, or the one recorded (before the success) is the first
 * that fails, or a schema violation was recorded and no other check failed
 * before it (the schema's verdict is the runtime's, SPEC §13). Pure.
 */
function exitConsistent(model: PlaybookModel, { context, event }: GuardArgs, nodeId: string): boolean {
  if (event.type !== 'NodeSucceeded') return false;
  const recorded = violationAt(context, nodeId, 'exit', event.data.attempt);
  const found = pureExitViolation(model, context, nodeId, event.data.output, event.data.exitCode);
  if (recorded === undefined || recorded.kind === 'schema') return found === undefined;
  return found !== undefined && found.kind === recorded.kind && found.key === recorded.key;
}

/**
 * Whether a violation names a check the node declares (an exit check: the
 * output files, exit code and schema it ensures, the contract of one of its
 * edges); only an unknown schema fails closed. Pure.
 */
function declaresCheck(model: PlaybookModel, data: Extract<RunEvent, { type: 'ContractViolated' }>['data']): boolean {
  const node = model.nodes.get(data.nodeId);
  if (node === undefined || (data.failClosed === true && data.kind !== 'schema')) return false;
  const ensures = node.ensures;
  switch (data.kind) {
    case 'outputFiles':
      return ensures?.outputFiles?.includes(data.key) === true;
    case 'exitCode':
      return ensures?.exitCode !== undefined && data.key === 'exitCode';
    case 'schema':
      return typeof ensures?.schema === 'string' && ensures.schema === data.key;
    case 'edge':
      return (model.edges.get(node.id) ?? []).some((edge) => edge.to === data.to && edge.contract?.requires?.fields?.includes(data.key) === true);
    default:
      return false;
  }
}

/** The guards that read only the fold and the event (named, parameterised, plain JSON in the config). */
function contextGuards(model: PlaybookModel) {
  const edgesOf = (node: string) => model.edges.get(node) ?? [];
  return {
    isNode: ({ context, event }: GuardArgs, { node }: NodeParams) => belongs(context, event, node),
    isInternalError: ({ event }: GuardArgs) => event.type === 'RunFailed' && event.data.cause === 'internal_error',
    failsWith: (args: GuardArgs, { node, decision }: NodeParams & { decision: FailureDecision }) => failureIs(model, args, node, decision),
    // Routing runs after the success was applied: the context already holds the output.
    branchesTo: ({ context }: GuardArgs, { node, to }: NodeParams & { to: string }) => {
      const choice = chooseBranch(edgesOf(node), (field) => readContext(model, context, node, field));
      return choice.kind === 'edge' && choice.to === to;
    },
    isAmbiguous: ({ context }: GuardArgs, { node }: NodeParams) => chooseBranch(edgesOf(node), (field) => readContext(model, context, node, field)).kind === 'ambiguous_branch',
    endsWith: ({ event }: GuardArgs, { node, cause }: NodeParams & { cause: FailureCause }) => endsAt(model, event, node, cause),
    // A gate expires only at or after its expiresAt, and only the gate the node waits at.
    expiresGate: ({ context, event }: GuardArgs, { node }: NodeParams) => {
      if (!endsAt(model, event, node, 'approval_expired') || (event.type !== 'RunFailed' && event.type !== 'BranchFailed')) return false;
      const gate = latestGate(context, node);
      return gate !== undefined && gate.status === 'pending' && gate.approvalId === event.data.approvalId && gate.expiresAt !== null && Date.parse(event.at) >= Date.parse(gate.expiresAt);
    },
    // ApprovalExpired: the pending gate the node waits at, at or after its expiresAt.
    expiresNow: ({ context, event }: GuardArgs, { node }: NodeParams) => {
      if (event.type !== 'ApprovalExpired' || event.data.nodeId !== node) return false;
      const gate = latestGate(context, node);
      return gate !== undefined && gate.status === 'pending' && gate.approvalId === event.data.approvalId && gate.expiresAt !== null && Date.parse(event.at) >= Date.parse(gate.expiresAt);
    },
    // The retry's due time is the event's own time plus the delay the node's backoff names for this attempt.
    schedulesRetry: ({ context, event }: GuardArgs, { node }: NodeParams) => {
      if (event.type !== 'NodeRetryScheduled' || event.data.nodeId !== node || event.data.attempt !== (context.attempts[node] ?? 0) + 1) return false;
      const delay = backoffDelayMs(model.nodes.get(node) as PlaybookNode, context.capCounts[node] ?? 0);
      return Date.parse(event.data.dueAt) === Date.parse(event.at) + delay;
    },
    retriesFrom: ({ context, event }: GuardArgs, { node }: NodeParams) => event.type === 'RunRetried' && event.data.fromNode === node && redriveNodeOf(model, context) === node,
    keepsBranch: ({ context }: GuardArgs, { branch }: { branch: string }) => context.keptBranches[branch] === true,
    keepsNode: ({ context }: GuardArgs, { node }: NodeParams) => context.keptNodes[node] === true,
    isOpenGate: ({ context, event }: GuardArgs, { node }: NodeParams) => {
      if (!belongs(context, event, node) || (event.type !== 'ApprovalGranted' && event.type !== 'ApprovalRejected')) return false;
      const gate = context.approvals[event.data.approvalId];
      if (gate === undefined || gate.nodeId !== node || gate.status !== 'pending') return false;
      // Only a gate whose policy may pass it is granted without a human (SPEC §13).
      if (event.type === 'ApprovalGranted' && event.data.auto === true) {
        const own = model.nodes.get(node);
        if (own?.type !== 'approval' || event.data.approver !== 'policy') return false;
        // permissive reads the frozen default rules, so the machine decides it again; custom reads the host's rules, which the log does not hold.
        if (own.policy === 'permissive') {
          const decision = decideGatePolicy(model.definition, node);
          return decision.autoPass && decision.rule === event.data.rule;
        }
        return own.policy === 'custom';
      }
      return true;
    },
    startsNode: ({ context, event }: GuardArgs, { node }: NodeParams) => belongs(context, event, node) && entryChecked(model, context, node),
    startsChild: (args: GuardArgs, { node }: NodeParams) => startsChild(model, args, node),
    // Once per started child of the current attempt; the outcome is the child's log's (SPEC §12), which this log does not hold.
    settlesChild: ({ context, event }: GuardArgs, { node }: NodeParams) => {
      if (event.type !== 'ChildRunSettled' || event.data.nodeId !== node) return false;
      const set = context.children[node];
      const { attempt, index, childRunId, status, output } = event.data;
      if (set === undefined || attempt !== (context.attempts[node] ?? 0) || set.attempt !== attempt) return false;
      const known = status === 'completed' || status === 'failed' || status === 'cancelled';
      return known && set.started[index] === childRunId && set.settled[index] === undefined && typeof output === 'object' && output !== null && !Array.isArray(output);
    },
    // Every child settled within `tolerate`, and the output is exactly what they add up to (item order for a map).
    childrenSucceed: (args: GuardArgs, { node }: NodeParams) => {
      const { context, event } = args;
      const own = model.nodes.get(node);
      const set = context.children[node];
      if (event.type !== 'NodeSucceeded' || !belongs(context, event, node) || !isChildNode(own) || set === undefined || set.attempt !== event.data.attempt) return false;
      const outcome = childrenOutcome(own, set);
      if (outcome.kind !== 'succeeded' || canonicalJson(event.data.output) !== canonicalJson(outcome.output)) return false;
      return !hasExitContract(model, own) || exitConsistent(model, args, node);
    },
    succeedsNode: (args: GuardArgs, { node }: NodeParams) => belongs(args.context, args.event, node) && exitConsistent(model, args, node),
    // requires: the attempt about to start, not yet recorded, and really missing that field.
    violatesOnEntry: ({ context, event }: GuardArgs, { node }: NodeParams) => {
      if (event.type !== 'ContractViolated' || event.data.nodeId !== node || event.data.kind !== 'requires') return false;
      const attempt = (context.attempts[node] ?? 0) + 1;
      return event.data.attempt === attempt && violationAt(context, node, 'entry', attempt) === undefined && entryViolation(model, context, node)?.key === event.data.key;
    },
    // Once per attempt, before its success; the success checks it against the pure checks (exitConsistent).
    violatesOnExit: ({ context, event }: GuardArgs, { node }: NodeParams) => {
      if (event.type !== 'ContractViolated' || event.data.nodeId !== node || !declaresCheck(model, event.data)) return false;
      const attempt = context.attempts[node] ?? 0;
      return event.data.attempt === attempt && violationAt(context, node, 'exit', attempt) === undefined;
    },
    exitViolated: ({ context }: GuardArgs, { node }: NodeParams) => violationAt(context, node, 'exit', context.attempts[node] ?? 0) !== undefined,
    exitFailsClosed: ({ context }: GuardArgs, { node }: NodeParams) => violationAt(context, node, 'exit', context.attempts[node] ?? 0)?.failClosed === true,
    timesOut: ({ context, event }: GuardArgs, { node }: NodeParams) => belongs(context, event, node) && event.type === 'NodeFailed' && event.data.timedOut === true,
    opensEscalation: ({ event }: GuardArgs, { node, on, checkpoint }: NodeParams & { on: EscalationTrigger; checkpoint?: 'entry' | 'exit' }) =>
      event.type === 'RunPaused' && event.data.nodeId === node && event.data.escalation?.on === on && event.data.escalation.checkpoint === checkpoint,
    // An approved escalation gate, resumed once: a violation found after a success goes on from there; anything else starts the node again.
    resumesEscalation: ({ context, event }: GuardArgs, { node, to }: NodeParams & { to: 'exit' | 'ready' }) => {
      if (event.type !== 'RunResumed' || event.data.nodeId !== node) return false;
      const gate = latestGate(context, node);
      const escalation = context.escalationGates[event.data.approvalId];
      if (gate === undefined || gate.approvalId !== event.data.approvalId || gate.status !== 'approved' || gate.resumed || escalation === undefined) return false;
      return (escalation.checkpoint === 'exit') === (to === 'exit');
    },
    isResumable: ({ context, event }: GuardArgs, { node }: NodeParams) => {
      if (event.type !== 'RunResumed' || event.data.nodeId !== node) return false;
      const gate = latestGate(context, node);
      return gate !== undefined && gate.approvalId === event.data.approvalId && gate.status === 'approved' && !gate.resumed;
    },
  };
}
