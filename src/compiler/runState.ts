import type { ChildRunStatus, ContractViolatedData, EscalationData, FailureCause, NewRunEvent, ParentRef, PinnedPlaybooks, RunContext, RunEvent } from '../events/types.js';
import { readPath } from './branching.js';
import { isChildNode, nextUnstarted, openChildSet } from './childRuns.js';
import { enclosingGroups } from './playbookModel.js';
import type { PlaybookModel } from './playbookModel.js';

/** Status of one approval gate. */
export type GateStatus = 'pending' | 'approved' | 'rejected' | 'expired' | 'cancelled';

/** One approval gate as the fold knows it. Holds the token's hash, never the token. */
export interface GateState {
  approvalId: string;
  runId: string;
  nodeId: string;
  status: GateStatus;
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

/** How one child run of a node's attempt ended, as its parent recorded it (SPEC §12). */
export interface ChildOutcome {
  runId: string;
  status: ChildRunStatus;
  /** The keys the child's nodes produced. */
  output: RunContext;
  error?: string;
  /** Carried over from the node's previous attempt (a map keeps the children that completed, for the same item). */
  kept?: true;
}

/** The children of the latest attempt of a `playbook` or `map` node (SPEC §12). */
export interface ChildSet {
  attempt: number;
  /** One entry per child, in order: a map's items as they read when the attempt started; `[null]` for a `playbook` node. */
  items: readonly unknown[];
  /** Why a map's items could not be read (not a list): the attempt fails without children. */
  itemsError: string | null;
  /** The child run of each started item, by index (kept ones included). */
  started: Record<number, string>;
  /** The children started and not settled, by index: what is awaited (at most `max_concurrency`). */
  inFlight: Record<number, string>;
  /** How each settled child ended, by index. */
  settled: Record<number, ChildOutcome>;
  /** The lowest index not started yet (children start in item order). */
  next: number;
  /** Started and not settled: the size of `inFlight`. */
  running: number;
  /** Settled other than `completed`. */
  failed: number;
  settledCount: number;
}

/** Why a run ended badly: the structured form of SPEC §6 (`error`). Never holds a secret or a token. */
export interface RunError {
  cause: FailureCause;
  nodeId?: string;
  message: string;
}

/**
 * The fold of one run's log: the facts the machine's guards and the runtime
 * read. It is the XState machine's context; `evolve` is the machine's only
 * assign action. Where the run *is* (its status, its active nodes, which
 * failure it ended in) is the machine's state value, never a field here.
 */
export interface RunState {
  runId: string;
  playbookName: string;
  sourceHash: string;
  /** The playbook hash the run reports: the host's `playbookHash` when it gave one for a definition without text, else `sourceHash`. */
  playbookHash: string;
  /** The initial context: what `{{inputs.x}}` reads. */
  inputs: RunContext;
  /** The top level's context: inputs plus every top-level output merged in order. */
  context: RunContext;
  /**
   * What each branch of a running parallel group has produced so far, over the
   * context as it was at the fork (SPEC §9). A node in a branch sees the top
   * level's context, then each enclosing branch's outputs, outermost first.
   */
  branchOutputs: Record<string, RunContext>;
  /** Attempts per node over the whole run (the idempotency ordinal). */
  attempts: Record<string, number>;
  /** Attempts per node since it was last (re)entered: what the cap counts. */
  capCounts: Record<string, number>;
  /** Escalations made by each node (bounded by its cap). */
  escalations: Record<string, number>;
  maxIterationsDefault: number;
  /** How the run ended badly, once it has. */
  error: RunError | null;
  /** The last error message any attempt, branch or the run recorded. */
  lastError: string | null;
  /** Each node's (and each failed branch's) latest failure message: what an exceeded cap, an escalation or a group's failure reports. */
  nodeErrors: Record<string, string>;
  /** Every gate the run opened, by approvalId, in the order opened. */
  approvals: Record<string, GateState>;
  /** When each node waiting for its backoff may start its next attempt (SPEC §10). */
  retryDue: Record<string, string>;
  /** Branches of a running or failed group that ended `succeeded` in its current round (what a redrive keeps). */
  succeededBranches: Record<string, true>;
  /** Nodes inside branches that succeeded (a gate: was resumed) in their group's current round (what a redrive keeps). */
  succeededNodes: Record<string, true>;
  /** Branches a redrive keeps: entering their group again, they are `succeeded` at once. */
  keptBranches: Record<string, true>;
  /** Nodes a redrive keeps: entered again, they go straight on to their successors, as after their success. */
  keptNodes: Record<string, true>;
  /**
   * The latest contract violation of each node's checkpoint, by
   * {@link violationKey}: `entry` (`requires`, for the attempt about to
   * start) and `exit` (the checks once an attempt's output is merged).
   */
  contractViolations: Record<string, ContractViolatedData>;
  /** The escalation gates (SPEC §13), by approvalId: what opened each one. */
  escalationGates: Record<string, EscalationData>;
  /** Set for a child run (SPEC §12): who started it. */
  parent: ParentRef | null;
  /** The playbook texts this run can start as children (`RunStarted.pinned`). */
  pinned: PinnedPlaybooks | null;
  /** The child runs of each `playbook` / `map` node's latest attempt (SPEC §12), by node id. */
  children: Record<string, ChildSet>;
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
    playbookHash: '',
    inputs: {},
    context: {},
    branchOutputs: {},
    attempts: {},
    capCounts: {},
    escalations: {},
    maxIterationsDefault: 3,
    error: null,
    lastError: null,
    nodeErrors: {},
    approvals: {},
    retryDue: {},
    succeededBranches: {},
    succeededNodes: {},
    keptBranches: {},
    keptNodes: {},
    contractViolations: {},
    escalationGates: {},
    parent: null,
    pinned: null,
    children: {},
    startedAt: '',
    updatedAt: '',
    completedAt: null,
    version: 0,
    epicId: null,
    sessionId: null,
  };
}

/**
 * Who may write a fold's maps in place. `evolve` without a draft is pure: it
 * copies every map it changes. Given a draft it copies a map only the first
 * time it writes one this draft did not make, then updates that copy in place,
 * so folding n events costs O(n), not O(n × the size of the run's maps)
 * (SPEC §15). The price: snapshots folded earlier with the same draft share
 * those maps and move on with it, so only the latest one may be read. The
 * snapshot a draft starts from, and everything made without it, is never
 * touched.
 */
export class FoldDraft {
  private readonly owned = new WeakSet<object>();

  /** `map` itself when this draft made it, else a copy of it that this draft now owns. */
  writable<T extends object>(map: T): T {
    if (this.owned.has(map)) return map;
    return this.adopt({ ...map });
  }

  /** A map made by the fold itself, owned from the start. */
  adopt<T extends object>(map: T): T {
    this.owned.add(map);
    return map;
  }
}

/** The map to write: a copy without a draft (pure), else the draft's own. */
function edit<T extends object>(draft: FoldDraft | undefined, map: T): T {
  return draft === undefined ? { ...map } : draft.writable(map);
}

function bump(draft: FoldDraft | undefined, counts: Record<string, number>, key: string): Record<string, number> {
  const out = edit(draft, counts);
  out[key] = (counts[key] ?? 0) + 1;
  return out;
}

/** Where a contract is checked: before an attempt starts, or once its output is merged. */
export type Checkpoint = 'entry' | 'exit';

/** The key of a node's checkpoint in `RunState.contractViolations`. Pure. */
export function violationKey(nodeId: string, checkpoint: Checkpoint): string {
  return `${nodeId}@${checkpoint}`;
}

/** The violation recorded at a node's checkpoint for `attempt`, if any. Pure. */
export function violationAt(state: RunState, nodeId: string, checkpoint: Checkpoint, attempt: number): ContractViolatedData | undefined {
  const fact = state.contractViolations[violationKey(nodeId, checkpoint)];
  return fact !== undefined && fact.attempt === attempt ? fact : undefined;
}

/** The last gate a node opened (the one a paused or approved node waits at), if any. Pure. */
export function latestGate(state: RunState, nodeId: string): GateState | undefined {
  return Object.values(state.approvals).findLast((gate) => gate.nodeId === nodeId);
}

/**
 * The context a node sees: the top level's, then the outputs of every branch
 * that encloses it, outermost first. Pure; returns `state.context` itself for
 * a top-level node.
 */
export function contextOf(model: PlaybookModel, state: RunState, nodeId: string): RunContext {
  const chain = model.branchChain.get(nodeId) ?? [];
  if (chain.length === 0) return state.context;
  let view = state.context;
  for (const branchId of chain) view = { ...view, ...state.branchOutputs[branchId] };
  return view;
}

/**
 * Reads `a.b.c` from the context a node sees without building it: the
 * innermost enclosing branch that wrote `a` wins, then the top level. What the
 * branch guards read, so routing inside a branch costs what the path costs,
 * not the size of the context. Pure.
 */
export function readContext(model: PlaybookModel, state: RunState, nodeId: string, field: string): unknown {
  const chain = model.branchChain.get(nodeId) ?? [];
  const head = field.split('.', 1)[0] as string;
  for (let i = chain.length - 1; i >= 0; i--) {
    const outputs = state.branchOutputs[chain[i] as string];
    if (outputs !== undefined && Object.hasOwn(outputs, head)) return readPath(outputs, field);
  }
  return readPath(state.context, field);
}

/**
 * What a parallel group's join adds to the context around it: its branches'
 * outputs merged in branch declaration order, so the result never depends on
 * which branch finished first (SPEC §9). Pure.
 */
export function joinOutput(model: PlaybookModel, state: RunState, groupId: string): RunContext {
  const group = model.nodes.get(groupId);
  if (group?.type !== 'parallel') throw new TypeError(`node '${groupId}' is not a parallel group`);
  let merged: RunContext = {};
  for (const branch of group.branches) merged = { ...merged, ...state.branchOutputs[branch.id] };
  return merged;
}

/**
 * Copies `patch`'s keys onto `target` as own data properties, the way a spread
 * does: an agent's output key `__proto__` (JSON.parse makes it an own key)
 * stays a key and never becomes the context's prototype.
 */
function assignOwn(target: RunContext, patch: RunContext): RunContext {
  if (!Object.hasOwn(patch, '__proto__')) return Object.assign(target, patch);
  for (const key of Object.keys(patch)) {
    if (key === '__proto__') Object.defineProperty(target, key, { value: patch[key], writable: true, enumerable: true, configurable: true });
    else target[key] = patch[key];
  }
  return target;
}

/** Merges `patch` into the context the node writes to (its branch's outputs, or the top level) of `next`. */
function writeContext(model: PlaybookModel, next: RunState, nodeId: string, patch: RunContext, draft: FoldDraft | undefined): void {
  const chain = model.branchChain.get(nodeId) ?? [];
  const branchId = chain[chain.length - 1];
  if (branchId === undefined) {
    next.context = assignOwn(edit(draft, next.context), patch);
    return;
  }
  const branchOutputs = edit(draft, next.branchOutputs);
  const outputs = branchOutputs[branchId];
  branchOutputs[branchId] = assignOwn(outputs === undefined ? (draft?.adopt({}) ?? {}) : edit(draft, outputs), patch);
  next.branchOutputs = branchOutputs;
}

/**
 * A group (re)starts: its branches begin from their entries with no outputs
 * and fresh caps, except what a redrive keeps: a kept branch, or a branch
 * with kept nodes, keeps its outputs (everything in them came from the
 * successes the redrive keeps).
 */
function resetGroup(model: PlaybookModel, next: RunState, groupId: string, draft: FoldDraft | undefined): void {
  const inner = model.descendants.get(groupId) ?? [];
  const capCounts = edit(draft, next.capCounts);
  const escalations = edit(draft, next.escalations);
  const retryDue = edit(draft, next.retryDue);
  const succeededNodes = edit(draft, next.succeededNodes);
  const keptNodeIds = Object.keys(next.keptNodes);
  const preserved = (branchId: string) => next.keptBranches[branchId] === true || keptNodeIds.some((id) => (model.branchChain.get(id) ?? []).includes(branchId));
  for (const id of inner) {
    delete capCounts[id];
    delete escalations[id];
    delete retryDue[id];
    if (!(model.branchChain.get(id) ?? []).some(preserved)) delete succeededNodes[id];
  }
  const branchOutputs = edit(draft, next.branchOutputs);
  const succeeded = edit(draft, next.succeededBranches);
  for (const id of [groupId, ...inner]) {
    const node = model.nodes.get(id);
    if (node?.type !== 'parallel') continue;
    for (const branch of node.branches) {
      if (preserved(branch.id)) continue;
      delete branchOutputs[branch.id];
      delete succeeded[branch.id];
    }
  }
  Object.assign(next, { capCounts, escalations, branchOutputs, retryDue, succeededBranches: succeeded, succeededNodes });
  forgetViolations(next, inner, draft);
}

/** Nodes entered afresh (a group's new round, a redrive) check their contracts again. */
function forgetViolations(next: RunState, nodeIds: readonly string[], draft: FoldDraft | undefined): void {
  if (Object.keys(next.contractViolations).length === 0) return;
  const violations = edit(draft, next.contractViolations);
  for (const id of nodeIds) {
    delete violations[violationKey(id, 'entry')];
    delete violations[violationKey(id, 'exit')];
  }
  next.contractViolations = violations;
}

/** A group ended (joined or failed): what a redrive kept inside it is plain history again. */
function settleGroup(model: PlaybookModel, next: RunState, groupId: string, draft: FoldDraft | undefined): void {
  const group = model.nodes.get(groupId);
  if (group?.type !== 'parallel') return;
  const inner = model.descendants.get(groupId) ?? [];
  if (group.branches.some((branch) => next.keptBranches[branch.id])) {
    const keptBranches = edit(draft, next.keptBranches);
    for (const id of [groupId, ...inner]) {
      const node = model.nodes.get(id);
      if (node?.type === 'parallel') for (const branch of node.branches) delete keptBranches[branch.id];
    }
    next.keptBranches = keptBranches;
  }
  if (inner.some((id) => next.keptNodes[id])) {
    const keptNodes = edit(draft, next.keptNodes);
    for (const id of inner) delete keptNodes[id];
    next.keptNodes = keptNodes;
  }
}

/**
 * A redrive (RunRetried): the node the run failed at, and everything inside
 * it, gets fresh caps; inside a group, every branch and every node that had
 * succeeded is kept (entered again, it goes straight on as it did).
 */
function redrive(model: PlaybookModel, next: RunState, fromNode: string, draft: FoldDraft | undefined): void {
  const inner = model.descendants.get(fromNode) ?? [];
  const capCounts = edit(draft, next.capCounts);
  const escalations = edit(draft, next.escalations);
  for (const id of [fromNode, ...inner]) {
    delete capCounts[id];
    delete escalations[id];
  }
  const keptBranches = edit(draft, next.keptBranches);
  const keptNodes = edit(draft, next.keptNodes);
  for (const id of [fromNode, ...inner]) {
    const node = model.nodes.get(id);
    if (id !== fromNode && next.succeededNodes[id]) keptNodes[id] = true;
    if (node?.type === 'parallel') for (const branch of node.branches) if (next.succeededBranches[branch.id]) keptBranches[branch.id] = true;
  }
  Object.assign(next, { capCounts, escalations, keptBranches, keptNodes, retryDue: draft?.adopt({}) ?? {}, error: null, completedAt: null });
  forgetViolations(next, [fromNode, ...inner], draft);
}

/** A node inside a branch succeeded (or, a gate, was resumed): a redrive of its group keeps it. */
function noteSuccess(model: PlaybookModel, next: RunState, nodeId: string, draft: FoldDraft | undefined): void {
  if ((model.branchChain.get(nodeId) ?? []).length > 0 && !next.succeededNodes[nodeId]) next.succeededNodes = put(draft, next.succeededNodes, nodeId, true);
}

/**
 * Applies one event to the fold: records facts, decides nothing. (Which event
 * may come next is the machine's business; see compilePlaybook.ts.)
 *
 * Pure without a draft (never mutates `state`); with one, updates in place
 * the state and the maps the draft owns (see FoldDraft).
 */
export function evolve(model: PlaybookModel, state: RunState, event: RunEvent, draft?: FoldDraft): RunState {
  const next = edit(draft, state);
  next.version = event.seq;
  next.updatedAt = event.at;
  switch (event.type) {
    case 'RunStarted': {
      const d = event.data;
      next.runId = event.runId;
      next.playbookName = d.playbookName;
      next.sourceHash = d.sourceHash;
      next.playbookHash = d.playbookHash ?? d.sourceHash;
      next.inputs = d.context;
      next.context = d.context;
      next.maxIterationsDefault = d.maxIterationsDefault;
      next.startedAt = event.at;
      next.epicId = d.epicId ?? null;
      next.sessionId = d.sessionId ?? null;
      next.parent = d.parent ?? null;
      next.pinned = d.pinned ?? null;
      break;
    }
    case 'NodeStarted': {
      const { nodeId } = event.data;
      next.attempts = bump(draft, next.attempts, nodeId);
      next.capCounts = bump(draft, next.capCounts, nodeId);
      if (Object.hasOwn(next.retryDue, nodeId)) next.retryDue = remove(draft, next.retryDue, nodeId);
      const node = model.nodes.get(nodeId);
      if (node?.type === 'parallel') resetGroup(model, next, nodeId, draft);
      // A child-run node's attempt reads its items now, once: a replay never renders them again.
      else if (isChildNode(node)) next.children = put(draft, next.children, nodeId, openChildSet(model, next, node, next.attempts[nodeId] as number, next.children[nodeId]));
      break;
    }
    case 'ChildRunStarted': {
      const { nodeId, index, childRunId } = event.data;
      const before = next.children[nodeId];
      if (before === undefined) break;
      // Through the draft, a map of n items folds its 2n child events in O(n), not O(n²) (SPEC §15).
      const set = edit(draft, before);
      set.started = put(draft, set.started, String(index), childRunId);
      set.inFlight = put(draft, set.inFlight, String(index), childRunId);
      set.running += 1;
      set.next = nextUnstarted(set, index);
      next.children = put(draft, next.children, nodeId, set);
      break;
    }
    case 'ChildRunSettled': {
      const d = event.data;
      const before = next.children[d.nodeId];
      if (before === undefined) break;
      const set = edit(draft, before);
      const outcome: ChildOutcome = { runId: d.childRunId, status: d.status, output: d.output, ...(d.error === undefined ? {} : { error: d.error }) };
      set.settled = put(draft, set.settled, String(d.index), outcome);
      set.inFlight = remove(draft, set.inFlight, String(d.index));
      set.running -= 1;
      set.settledCount += 1;
      if (d.status !== 'completed') set.failed += 1;
      next.children = put(draft, next.children, d.nodeId, set);
      break;
    }
    case 'NodeSucceeded': {
      const { nodeId, patch } = contextWriteOf(model, event) as { nodeId: string; patch: RunContext };
      writeContext(model, next, nodeId, patch, draft);
      // A node with no edge out ends its branch: the branch succeeded (what a redrive keeps).
      const branchId = model.branchChain.get(nodeId)?.at(-1);
      if (branchId !== undefined && (model.edges.get(nodeId) ?? []).length === 0) next.succeededBranches = put(draft, next.succeededBranches, branchId, true);
      noteSuccess(model, next, nodeId, draft);
      settleGroup(model, next, nodeId, draft);
      break;
    }
    case 'NodeFailed': {
      settleGroup(model, next, event.data.nodeId, draft);
      // An aborted attempt changes nothing (SPEC §9): its error is not the run's.
      if (event.data.aborted === true) break;
      next.lastError = event.data.error;
      next.nodeErrors = put(draft, next.nodeErrors, event.data.nodeId, event.data.error);
      const hint = contextWriteOf(model, event);
      if (hint !== undefined) writeContext(model, next, hint.nodeId, hint.patch, draft);
      break;
    }
    case 'ContractViolated': {
      const d = event.data;
      next.contractViolations = put(draft, next.contractViolations, violationKey(d.nodeId, d.kind === 'requires' ? 'entry' : 'exit'), d);
      const hint = contextWriteOf(model, event);
      if (hint !== undefined) writeContext(model, next, hint.nodeId, hint.patch, draft);
      break;
    }
    case 'NodeEscalated': {
      const { from, to } = event.data;
      const { patch } = contextWriteOf(model, event) as { patch: RunContext };
      writeContext(model, next, from, patch, draft);
      next.escalations = bump(draft, next.escalations, from);
      next.capCounts = put(draft, next.capCounts, to, 0);
      if (Object.hasOwn(next.retryDue, to)) next.retryDue = remove(draft, next.retryDue, to);
      // Handed control again, a node the redrive kept runs again.
      if (Object.hasOwn(next.keptNodes, to)) next.keptNodes = remove(draft, next.keptNodes, to);
      break;
    }
    case 'NodeRetryScheduled':
      next.retryDue = put(draft, next.retryDue, event.data.nodeId, event.data.dueAt);
      break;
    case 'ApprovalExpired':
      next.approvals = updateGate(draft, next.approvals, event.data.approvalId, { status: 'expired', decidedAt: event.at });
      break;
    case 'RunRetried':
      redrive(model, next, event.data.fromNode, draft);
      break;
    case 'RunPaused': {
      const d = event.data;
      const gate: GateState = {
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
      next.approvals = put(draft, next.approvals, d.approvalId, gate);
      if (d.escalation !== undefined) next.escalationGates = put(draft, next.escalationGates, d.approvalId, d.escalation);
      break;
    }
    case 'ApprovalGranted':
    case 'ApprovalRejected': {
      const d = event.data;
      next.approvals = updateGate(draft, next.approvals, d.approvalId, {
        status: event.type === 'ApprovalGranted' ? 'approved' : 'rejected',
        decidedAt: event.at,
        approver: d.approver,
        reason: d.reason,
      });
      const write = contextWriteOf(model, event);
      if (write !== undefined) writeContext(model, next, write.nodeId, write.patch, draft);
      break;
    }
    case 'ApprovalCancelled':
      next.approvals = updateGate(draft, next.approvals, event.data.approvalId, { status: 'cancelled', decidedAt: event.at });
      break;
    case 'RunResumed': {
      const { approvalId, nodeId } = event.data;
      next.approvals = updateGate(draft, next.approvals, approvalId, { resumed: true });
      const trigger = next.escalationGates[approvalId]?.on;
      if (trigger === undefined) noteSuccess(model, next, nodeId, draft);
      else if (trigger !== 'contract_violation') {
        // A human granted the node another round of its cap (SPEC §13).
        if (Object.hasOwn(next.capCounts, nodeId)) next.capCounts = remove(draft, next.capCounts, nodeId);
        if (Object.hasOwn(next.escalations, nodeId)) next.escalations = remove(draft, next.escalations, nodeId);
        if (Object.hasOwn(next.retryDue, nodeId)) next.retryDue = remove(draft, next.retryDue, nodeId);
      }
      break;
    }
    case 'BranchFailed': {
      const d = event.data;
      if (d.cause === 'approval_expired' && d.approvalId !== undefined) next.approvals = updateGate(draft, next.approvals, d.approvalId, { status: 'expired', decidedAt: event.at });
      // A branch's failure is kept by branch id: the group's own failure names its branches in order.
      next.lastError = d.error;
      next.nodeErrors = put(draft, next.nodeErrors, d.branchId, d.error);
      break;
    }
    case 'RunCompleted':
      next.completedAt = event.at;
      break;
    case 'RunFailed': {
      const d = event.data;
      const error: RunError = { cause: d.cause, message: d.error };
      if (d.nodeId !== undefined) error.nodeId = d.nodeId;
      if (d.cause === 'approval_expired' && d.approvalId !== undefined) next.approvals = updateGate(draft, next.approvals, d.approvalId, { status: 'expired', decidedAt: event.at });
      next.error = error;
      next.lastError = d.error;
      next.completedAt = event.at;
      next.approvals = closePendingGates(draft, next.approvals, event.at);
      break;
    }
    case 'RunCancelled':
      next.error = { cause: 'cancelled', message: event.data.reason };
      next.lastError = event.data.reason;
      next.completedAt = event.at;
      next.approvals = closePendingGates(draft, next.approvals, event.at);
      break;
  }
  return next;
}

function remove<T>(draft: FoldDraft | undefined, map: Record<string, T>, key: string): Record<string, T> {
  const out = edit(draft, map);
  delete out[key];
  return out;
}

function put<T>(draft: FoldDraft | undefined, map: Record<string, T>, key: string, value: T): Record<string, T> {
  const out = edit(draft, map);
  out[key] = value;
  return out;
}

/** A gate's new state is a new object (rows already handed to the store never change under it). */
function updateGate(draft: FoldDraft | undefined, approvals: Record<string, GateState>, approvalId: string, patch: Partial<GateState>): Record<string, GateState> {
  const gate = approvals[approvalId];
  if (!gate) return approvals;
  return put(draft, approvals, approvalId, { ...gate, ...patch });
}

/**
 * A run that ends while a gate is open closes the gate: nobody can decide it
 * any more. Logs written before v2 recorded the expiry of a gate as a plain
 * `RunFailed`; that gate reads `expired` (handled by the caller), every other
 * open gate reads `cancelled`.
 */
function closePendingGates(draft: FoldDraft | undefined, approvals: Record<string, GateState>, at: string): Record<string, GateState> {
  // Without a draft, a local one: the first gate closed copies the map, the others reuse that copy.
  const own = draft ?? new FoldDraft();
  let out = approvals;
  for (const gate of Object.values(approvals)) {
    if (gate.status === 'pending') out = updateGate(own, out, gate.approvalId, { status: 'cancelled', decidedAt: at });
  }
  return out;
}

/**
 * What an event writes into the context of the node it names: a node's output,
 * an escalation's `__lastError`/`__lastFailedNode`, a granted gate's
 * `__lastApproval`, and the hints of `inject_hint` handlers (SPEC §13): a
 * contract violation's `__contractViolation`, a timed-out attempt's
 * `__timeoutHint`. The one place that rule lives: `evolve` applies it (to the
 * top level, or to the node's branch outputs), `contextKeysWritten` reports it.
 * Pure.
 */
function contextWriteOf(model: PlaybookModel, event: NewRunEvent): { nodeId: string; patch: RunContext } | undefined {
  switch (event.type) {
    case 'ContractViolated': {
      const handler = model.handlers.contract_violation;
      if (handler?.action !== 'inject_hint') return undefined;
      const { nodeId, kind, key, message } = event.data;
      return { nodeId, patch: { __contractViolation: { nodeId, kind, key, message, ...(handler.message === undefined ? {} : { hint: handler.message }) } } };
    }
    case 'NodeFailed': {
      const handler = model.handlers.agentic_timeout;
      const d = event.data;
      if (handler?.action !== 'inject_hint' || d.timedOut !== true || d.aborted === true) return undefined;
      const message = handler.message ?? `attempt ${d.attempt} of '${d.nodeId}' ran out of time (${d.error}); finish faster or in smaller steps`;
      return { nodeId: d.nodeId, patch: { __timeoutHint: { nodeId: d.nodeId, attempt: d.attempt, message } } };
    }
    case 'NodeSucceeded':
      return { nodeId: event.data.nodeId, patch: event.data.output };
    case 'NodeEscalated':
      return { nodeId: event.data.from, patch: { __lastError: event.data.error, __lastFailedNode: event.data.from } };
    case 'ApprovalGranted': {
      const d = event.data;
      return { nodeId: d.nodeId, patch: { __lastApproval: { nodeId: d.nodeId, approvalId: d.approvalId, approver: d.approver, reason: d.reason, approvedAt: event.at } } };
    }
    default:
      return undefined;
  }
}

/**
 * The top-level context keys an event writes (what the runs projection stores
 * per key): `RunStarted`'s initial context, and what `contextWriteOf` writes
 * for a node at the top level (a parallel group's join included). A node
 * inside a branch writes its branch's outputs, never the top level.
 *
 * Pure. Keys come in the order the event writes them, so a caller collecting
 * them over a batch sees new keys in the order the context gained them.
 */
export function contextKeysWritten(model: PlaybookModel, event: NewRunEvent): readonly string[] {
  if (event.type === 'RunStarted') return Object.keys(event.data.context);
  const write = contextWriteOf(model, event);
  if (write === undefined || (model.branchChain.get(write.nodeId) ?? []).length > 0) return [];
  return Object.keys(write.patch);
}

/**
 * Where a redrive (`retryRun`, SPEC §10) continues a failed run: the top-level
 * node it failed at (the group around it, when it failed inside one).
 * Undefined when the run may not be redriven: it has not failed, a human
 * rejected it, it was cancelled, or the failure names no node. Pure.
 */
export function redriveNodeOf(model: PlaybookModel, state: RunState): string | undefined {
  const error = state.error;
  if (!isRedrivable(error) || error.nodeId === undefined || !model.nodes.has(error.nodeId)) return undefined;
  return enclosingGroups(model, error.nodeId)[0] ?? error.nodeId;
}

/**
 * The redrive rule on a run's error alone (what a result or a runs row has):
 * it failed at a node, and neither a human's rejection nor a cancellation
 * ended it. Pure.
 */
export function isRedrivable(error: RunError | null | undefined): error is RunError {
  return error != null && error.nodeId !== undefined && error.cause !== 'approval_rejected' && error.cause !== 'cancelled';
}
