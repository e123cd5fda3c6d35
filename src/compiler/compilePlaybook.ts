import { assign, createMachine } from 'xstate';
import type { AnyStateMachine } from 'xstate';
import type { FailureCause, RunEvent } from '../events/types.js';
import type { PlaybookDefinition, PlaybookNode } from '../playbook/types.js';
import { emptyRunState, evolve } from '../projections/runState.js';
import type { RunState } from '../projections/runState.js';
import { chooseBranch } from './branching.js';
import { capOf, createPlaybookModel } from './playbookModel.js';
import type { PlaybookModel } from './playbookModel.js';

/** The XState machine of a playbook: context is the run fold, events are run events. */
export type PlaybookMachine = AnyStateMachine;

/** The final states of every compiled machine; a run ends in exactly one. */
export const finalStates = ['completed', 'failed', 'exceeded_iteration_cap', 'cancelled'] as const;
export type FinalState = (typeof finalStates)[number];

/**
 * Substates of a node state. Each one but `running` and `paused` names the one
 * event the runtime must append next; that is how the machine *decides* and the
 * host only executes (the xstate "serverless workflow" pattern, over events).
 */
export type NodePhase =
  | 'ready' // append NodeStarted (work) or RunPaused (approval)
  | 'running' // a dispatch is in flight (or died: recovery appends NodeFailed)
  | 'done' // no outgoing edge: append RunCompleted
  | 'unrouted' // no edge or two edges hold: append RunFailed no_branch/ambiguous_branch
  | 'escalating' // append NodeEscalated to inject_into
  | 'exhausted' // append RunFailed exceeded_iteration_cap
  | 'paused' // waiting for a human
  | 'approved' // waiting for resumePlaybook: append RunResumed
  | 'rejected'; // append RunFailed approval_rejected

type Transition = { target: string; guard?: { type: string; params: Record<string, unknown> }; actions: 'apply' };
type StateJson = { initial?: string; type?: 'final'; on?: Record<string, Transition | Transition[]>; states?: Record<string, StateJson>; description?: string };

/** Guard params all carry the node the transition belongs to. */
interface NodeParams { node: string }

/**
 * Compiles a parsed playbook to an XState v5 machine (SPEC §3).
 *
 * One compound state per node under `active`, final states `completed`,
 * `failed`, `exceeded_iteration_cap`, `cancelled`. Guards and the single
 * action (`apply`, which is `evolve`) are referenced by name, so
 * `machine.config` is plain JSON that Stately Studio can import. Feeding a run's
 * events through xstate's pure `transition` yields the run's state.
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
  const rootId = machineIdOf(model.definition.name);
  const nodeStates: Record<string, StateJson> = {};
  for (const node of model.definition.nodes) nodeStates[node.id] = nodeState(model, node, rootId);

  const config = {
    id: rootId,
    initial: 'idle',
    context: emptyRunState(),
    states: {
      idle: { on: { RunStarted: { target: 'active', actions: 'apply' } } },
      active: {
        initial: model.entry,
        on: {
          RunFailed: [
            { target: 'exceeded_iteration_cap', guard: { type: 'causeIs', params: { cause: 'exceeded_iteration_cap' } }, actions: 'apply' },
            { target: 'failed', actions: 'apply' },
          ],
          RunCancelled: { target: 'cancelled', actions: 'apply' },
        },
        states: nodeStates,
      },
      completed: { type: 'final' },
      failed: { type: 'final' },
      exceeded_iteration_cap: { type: 'final' },
      cancelled: { type: 'final' },
    },
  };
  return createMachine(config as never, { actions: { apply: assign(applyEvent) }, guards: guardsFor(model) } as never) as PlaybookMachine;
}

function applyEvent({ context, event }: { context: RunState; event: RunEvent }): RunState {
  return evolve(context, event);
}

/** Stately and XState ids: the playbook name when it is a plain identifier. */
function machineIdOf(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_-]*$/.test(name) ? name : 'playbook';
}

function nodeState(model: PlaybookModel, node: PlaybookNode, rootId: string): StateJson {
  const p = { node: node.id };
  const to = (target: string): string => `#${rootId}.active.${target}`;
  const finish: Transition[] = [
    ...distinctTargets(model, node.id).map((target): Transition => ({ target: to(target), guard: { type: 'branchesTo', params: { ...p, to: target } }, actions: 'apply' })),
    { target: 'done', guard: { type: 'exits', params: p }, actions: 'apply' },
    { target: 'unrouted', guard: { type: 'isNode', params: p }, actions: 'apply' },
  ];
  const completes: StateJson = { on: { RunCompleted: { target: `#${rootId}.completed`, actions: 'apply' } } };
  const base = { description: node.description ?? `${node.type} node` };

  if (node.type === 'approval') {
    return {
      ...base,
      initial: 'ready',
      states: {
        ready: { on: { RunPaused: { target: 'paused', guard: { type: 'isNode', params: p }, actions: 'apply' } } },
        paused: {
          on: {
            ApprovalGranted: { target: 'approved', guard: { type: 'isOpenGate', params: p }, actions: 'apply' },
            ApprovalRejected: { target: 'rejected', guard: { type: 'isOpenGate', params: p }, actions: 'apply' },
          },
        },
        approved: { on: { RunResumed: finish } },
        rejected: {},
        done: completes,
        unrouted: {},
      },
    };
  }

  const failure: Transition[] = [{ target: 'ready', guard: { type: 'canRetry', params: p }, actions: 'apply' }];
  const states: Record<string, StateJson> = {
    ready: { on: { NodeStarted: { target: 'running', guard: { type: 'isNode', params: p }, actions: 'apply' } } },
    running: { on: { NodeSucceeded: finish, NodeFailed: failure } },
    done: completes,
    unrouted: {},
    exhausted: {},
  };
  const inject = node.on_failure?.inject_into;
  if (inject !== undefined) {
    failure.push({ target: 'escalating', guard: { type: 'canEscalate', params: p }, actions: 'apply' });
    states.escalating = { on: { NodeEscalated: { target: to(inject), guard: { type: 'isNode', params: p }, actions: 'apply' } } };
  }
  failure.push({ target: 'exhausted', guard: { type: 'isNode', params: p }, actions: 'apply' });
  return { ...base, initial: 'ready', states };
}

function distinctTargets(model: PlaybookModel, nodeId: string): string[] {
  return [...new Set((model.edges.get(nodeId) ?? []).map((edge) => edge.to))];
}

/** The node an event is about, if any. */
export function eventNodeId(event: RunEvent): string | undefined {
  switch (event.type) {
    case 'NodeEscalated':
      return event.data.from;
    case 'RunStarted':
    case 'RunCompleted':
    case 'RunCancelled':
      return undefined;
    default:
      return event.data.nodeId;
  }
}

/**
 * Whether an event belongs to this node at this point: right node id, and for
 * node events the attempt the fold expects. A log that breaks this is corrupt.
 */
function belongs(context: RunState, event: RunEvent, node: string): boolean {
  if (eventNodeId(event) !== node) return false;
  const attempts = context.attempts[node] ?? 0;
  if (event.type === 'NodeStarted') return event.data.attempt === attempts + 1;
  if (event.type === 'NodeSucceeded' || event.type === 'NodeFailed') return event.data.attempt === attempts;
  return true;
}

type GuardArgs = { context: RunState; event: RunEvent };

function guardsFor(model: PlaybookModel) {
  const nodeCap = (id: string, context: RunState): number => {
    const node = model.nodes.get(id);
    return node ? capOf(node, context.maxIterationsDefault) : 0;
  };
  const contextAfter = ({ context, event }: GuardArgs) =>
    event.type === 'NodeSucceeded' ? { ...context.context, ...event.data.output } : context.context;

  return {
    isNode: ({ context, event }: GuardArgs, { node }: NodeParams) => belongs(context, event, node),
    causeIs: ({ event }: GuardArgs, { cause }: { cause: FailureCause }) => event.type === 'RunFailed' && event.data.cause === cause,
    exits: (args: GuardArgs, { node }: NodeParams) => belongs(args.context, args.event, node) && (model.edges.get(node) ?? []).length === 0,
    branchesTo: (args: GuardArgs, { node, to }: NodeParams & { to: string }) => {
      if (!belongs(args.context, args.event, node)) return false;
      const choice = chooseBranch(model.edges.get(node) ?? [], contextAfter(args));
      return choice.kind === 'edge' && choice.to === to;
    },
    // Failure without inject_into: retry in place while attempts < max(cap, 1).
    canRetry: ({ context, event }: GuardArgs, { node }: NodeParams) =>
      belongs(context, event, node) &&
      model.nodes.get(node)?.on_failure?.inject_into === undefined &&
      (context.capCounts[node] ?? 0) < Math.max(nodeCap(node, context), 1),
    // Failure with inject_into: hand control back at most `cap` times per run.
    canEscalate: ({ context, event }: GuardArgs, { node }: NodeParams) =>
      belongs(context, event, node) && (context.escalations[node] ?? 0) < nodeCap(node, context),
    isOpenGate: ({ context, event }: GuardArgs, { node }: NodeParams) => {
      if (!belongs(context, event, node) || (event.type !== 'ApprovalGranted' && event.type !== 'ApprovalRejected')) return false;
      const gate = context.approvals[event.data.approvalId];
      return gate !== undefined && gate.nodeId === node && gate.status === 'pending';
    },
  };
}
