/**
 * The model side of the model-based starter tests: a starter playbook compiled
 * to its machine, an `events(snapshot)` generator that proposes what may happen
 * next, and xstate/graph traversals that turn the machine into paths.
 *
 * The machine consumes full run events, so the generator builds real events
 * (right runId, seq = version + 1, right attempt). It separates two kinds:
 * - environment choices, which the host cannot predict: at `<node>.running` a
 *   NodeSucceeded (one output per branch outcome of the node's `when` edges) or a
 *   NodeFailed; at `<node>.paused` an ApprovalGranted or ApprovalRejected;
 * - host steps, which the machine already decided: every other phase names one
 *   event, which the generator writes from SPEC §4/§9 (not from the runtime's
 *   `nextSteps`) and keeps only when the machine accepts it.
 * A path is therefore a script for the dispatcher and the human, plus the log
 * the runtime must write when it follows that script.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { getAdjacencyMap, getShortestPaths, getSimplePaths } from 'xstate/graph';
import type { AdjacencyMap } from 'xstate/graph';
import { chooseBranch, readPath, readerOf } from '../../src/compiler/branching.js';
import type { BranchChoice } from '../../src/compiler/branching.js';
import { compileModel, finalStates } from '../../src/compiler/compilePlaybook.js';
import type { PlaybookMachine } from '../../src/compiler/compilePlaybook.js';
import type { RunSnapshot } from '../../src/compiler/foldRun.js';
import { FoldError, foldRun } from '../../src/compiler/foldRun.js';
import { branchOf, capOf, createPlaybookModel, nodeOf } from '../../src/compiler/playbookModel.js';
import { contextOf } from '../../src/compiler/runState.js';
import { activeNodes } from '../../src/compiler/stateValue.js';
import type { PlaybookModel } from '../../src/compiler/playbookModel.js';
import { canonicalJson, sha256Hex } from '../../src/events/canonicalJson.js';
import type { FailureCause, RunContext, RunEvent, RunEventDataMap, RunEventType } from '../../src/events/types.js';
import { parsePlaybook } from '../../src/playbook/parsePlaybook.js';
import type { EdgeCondition, PlaybookDefinition, PlaybookNode } from '../../src/playbook/types.js';

/** The run id and clock of model events; the runtime's differ, and nothing compares them. */
export const MODEL_RUN_ID = 'model-run';
const MODEL_AT = '2026-01-01T00:00:00.000Z';
/** The runtime's default cap (SPEC §4), which the model's RunStarted records too. */
export const MODEL_MAX_ITERATIONS_DEFAULT = 3;

/** A starter playbook with everything the model and the runtime need. */
export interface Starter {
  file: string;
  source: string;
  definition: PlaybookDefinition;
  model: PlaybookModel;
  machine: PlaybookMachine;
  /** What the caller passes to executePlaybook. */
  initialContext: RunContext;
  /** The context RunStarted records: declared defaults applied, then the caller's values. */
  startContext: RunContext;
  /** Every field a `when` condition reads: the part of the context that decides branches. */
  branchFields: string[];
}

/** Reads, parses and compiles `starter/<file>`. */
export function loadStarter(file: string, initialContext: RunContext): Starter {
  const source = readFileSync(fileURLToPath(new URL(`../../starter/${file}`, import.meta.url)), 'utf8');
  const { definition } = parsePlaybook(source, { fileName: file });
  const model = createPlaybookModel(definition);
  const startContext: RunContext = { ...initialContext };
  for (const input of definition.inputs) {
    if (startContext[input.name] === undefined && input.default !== undefined) startContext[input.name] = input.default;
  }
  const allEdges = [...model.edges.values()].flat();
  const branchFields = [...new Set(allEdges.flatMap((edge) => (edge.when ? [edge.when.field] : [])))].sort();
  return { file, source, definition, model, machine: compileModel(model), initialContext, startContext, branchFields };
}

/** The error a scripted failure of `nodeId` carries (the same text in model and runtime). */
export function failureText(nodeId: string): string {
  return `scripted failure of ${nodeId}`;
}

/**
 * A value the built-in schema `name` accepts, written by hand from SPEC §13
 * (`task_tree`: a non-empty list of `{title: non-empty, acceptance: non-empty
 * list with a non-blank string, id?, parentId?, depends?}`; `evidence`: a
 * non-empty string, list or object), not taken from src/contracts.
 */
function satisfying(name: string): unknown {
  if (name === 'task_tree') return [{ id: 'M-1', title: 'model task', acceptance: ['the model accepts it'] }, { title: 'second', acceptance: ['', 'done'], depends: ['M-1'] }];
  if (name === 'evidence') return 'model evidence';
  throw new TypeError(`the model knows no value for the schema '${name}': starters name built-in schemas only`);
}

/**
 * The output a successful node returns when its output decides nothing: what
 * its `ensures` asks for (SPEC §13: each `outputFiles` key, the exit code as
 * the subprocess runner reports it, a value its `schema` accepts under the
 * schema's name), so the success keeps its contract. Every `requires` of the
 * starters names a key its producer `ensures`, so these successes keep those too.
 */
function plainOutput(node: PlaybookNode): RunContext {
  const output: RunContext = { [node.id]: node.ensures?.exitCode === undefined ? 'done' : { exitCode: node.ensures.exitCode } };
  for (const key of node.ensures?.outputFiles ?? []) output[key] = 'model';
  const schema = node.ensures?.schema;
  if (typeof schema === 'string') output[schema] = satisfying(schema);
  return output;
}

/**
 * A success that breaks the node's `ensures` and the `ContractViolated` that
 * must be recorded before it (SPEC §13), for a node that declares one; written
 * from the spec, not from the runtime's checks. The output sets every
 * `outputFiles` key and the schema's key to null (present counts only when not
 * null, whatever an earlier attempt left) and reports the wrong exit code, so
 * the first check in SPEC order (outputFiles, exitCode, schema) is the one recorded.
 */
function brokenContract(snapshot: RunSnapshot, node: PlaybookNode, attempt: number): RunEvent[] {
  const { outputFiles = [], exitCode, schema } = node.ensures ?? {};
  const first = outputFiles[0];
  const broken =
    first !== undefined
      ? { kind: 'outputFiles' as const, key: first }
      : exitCode !== undefined
        ? { kind: 'exitCode' as const, key: 'exitCode' }
        : typeof schema === 'string'
          ? { kind: 'schema' as const, key: schema }
          : undefined;
  if (broken === undefined) return [];
  const violated = snapshot.context.contractViolations[`${node.id}@exit`]?.attempt === attempt;
  if (!violated) return [event(snapshot, 'ContractViolated', { nodeId: node.id, attempt, ...broken, message: 'model' })];
  const output: RunContext = { [node.id]: exitCode === undefined ? 'done' : { exitCode: exitCode + 1 } };
  for (const key of outputFiles) output[key] = null;
  if (typeof schema === 'string') output[schema] = null;
  return [event(snapshot, 'NodeSucceeded', { nodeId: node.id, attempt, output })];
}

/**
 * The `ContractViolated` a start may need first (SPEC §13: `requires.fields`
 * is checked before the node is dispatched), one candidate per field: the
 * machine keeps the one for the first missing field, and none when all are there.
 */
function entryViolations(snapshot: RunSnapshot, node: PlaybookNode, attempt: number): RunEvent[] {
  return (node.requires?.fields ?? []).map((key) => event(snapshot, 'ContractViolated', { nodeId: node.id, attempt, kind: 'requires', key, message: 'model' }));
}

function event<K extends RunEventType>(snapshot: RunSnapshot, type: K, data: RunEventDataMap[K]): RunEvent {
  return { type, data, at: MODEL_AT, runId: MODEL_RUN_ID, seq: snapshot.context.version + 1, globalSeq: 0, hash: '' } as RunEvent;
}

/** A value a field may be given, or left alone. */
const ABSENT = Symbol('absent');
type Candidate = unknown;

function candidatesFor(condition: EdgeCondition): Candidate[] {
  if ('equals' in condition) return [condition.equals];
  if ('notEquals' in condition) return [condition.notEquals];
  if ('in' in condition) return [...condition.in];
  if ('exists' in condition) return ['present'];
  return [true, false];
}

function withPath(target: RunContext, field: string, value: unknown): RunContext {
  const [head, ...rest] = field.split('.') as [string, ...string[]];
  if (rest.length === 0) return { ...target, [head]: value };
  const inner = target[head];
  const base = inner !== null && typeof inner === 'object' && !Array.isArray(inner) ? (inner as RunContext) : {};
  return { ...target, [head]: withPath(base, rest.join('.'), value) };
}

function choiceKey(choice: BranchChoice): string {
  if (choice.kind === 'edge') return `edge:${choice.to}`;
  if (choice.kind === 'ambiguous_branch') return `ambiguous:${choice.candidates.join(',')}`;
  return choice.kind;
}

/**
 * The outputs a successful `nodeId` may return, one per distinct branch outcome
 * on this context: each guarded edge taken alone, the default (or no_branch) when
 * none holds, and ambiguous_branch when two can hold. Found by trying the
 * literals the conditions name, a value none names, and leaving the field alone.
 */
export function branchOutputs(starter: Starter, nodeId: string, context: RunContext): RunContext[] {
  const edges = starter.model.edges.get(nodeId) ?? [];
  const guarded = edges.flatMap((edge) => (edge.when ? [edge.when] : []));
  const node = nodeOf(starter.model, nodeId);
  if (guarded.length === 0) return [plainOutput(node)];
  const fields = [...new Set(guarded.map((condition) => condition.field))];
  const perField = fields.map((field) => {
    const values = guarded.filter((condition) => condition.field === field).flatMap(candidatesFor);
    const distinct = new Map(values.map((value) => [canonicalJson(value), value] as const));
    return [...distinct.values(), '__model_other__', ABSENT];
  });
  const byOutcome = new Map<string, RunContext>();
  const visit = (index: number, output: RunContext): void => {
    if (index === fields.length) {
      const key = choiceKey(chooseBranch(edges, readerOf({ ...context, ...output })));
      if (!byOutcome.has(key)) byOutcome.set(key, output);
      return;
    }
    for (const value of perField[index] ?? []) {
      visit(index + 1, value === ABSENT ? output : withPath(output, fields[index] as string, value));
    }
  };
  visit(0, plainOutput(node));
  return [...byOutcome.values()];
}

/** The gate a paused or approved node waits at (the last one it opened). */
function gateAt(snapshot: RunSnapshot, nodeId: string) {
  return Object.values(snapshot.context.approvals).findLast((gate) => gate.nodeId === nodeId);
}

/** The causes SPEC §4/§9/§13 name for each phase that ends a run or a branch. Written here, not read from the runtime. */
const causeOfPhase: Record<string, FailureCause | undefined> = {
  exhausted: 'exceeded_iteration_cap',
  no_branch: 'no_branch',
  ambiguous_branch: 'ambiguous_branch',
  rejected: 'approval_rejected',
  violated: 'contract_violation',
};

/** The join's output, computed here from the fold's branch outputs in declaration order (SPEC §9). */
function joinOf(starter: Starter, snapshot: RunSnapshot, groupId: string): RunContext {
  const group = nodeOf(starter.model, groupId);
  if (group.type !== 'parallel') throw new TypeError(`'${groupId}' is not a group`);
  return Object.assign({}, ...group.branches.map((branch) => snapshot.context.branchOutputs[branch.id] ?? {})) as RunContext;
}

/**
 * Everything that might be appended next for one active node, right or wrong:
 * environment choices (a success per branch outcome, a failure, a human's
 * decision) and the host event its phase calls for (for a failing phase: the
 * cause SPEC §4 names, as a RunFailed at the top level and a BranchFailed in a
 * branch). The machine then keeps the ones it accepts. `nextSteps` (the
 * runtime's reading of the machine) is not consulted: the runtime is tested
 * against this, not against itself.
 */
function candidatesAt(starter: Starter, snapshot: RunSnapshot, nodeId: string, phase: string): RunEvent[] {
  const node = nodeOf(starter.model, nodeId);
  const attempt = snapshot.context.attempts[nodeId] ?? 0;
  const branch = branchOf(starter.model, nodeId);
  const fail = (cause: FailureCause, approvalId?: string): RunEvent =>
    branch === undefined
      ? event(snapshot, 'RunFailed', { nodeId, cause, error: 'model', ...(approvalId === undefined ? {} : { approvalId }) })
      : event(snapshot, 'BranchFailed', { groupId: branch.groupId, branchId: branch.id, nodeId, cause: cause as never, error: 'model' });
  switch (phase) {
    case 'ready':
      if (node.type === 'approval') {
        // Placeholders: the model compares state values, never hashes.
        const approvalId = `gate-${Object.keys(snapshot.context.approvals).length + 1}`;
        return [event(snapshot, 'RunPaused', { approvalId, nodeId, prompt: 'model', tokenHash: 'model', contextDigest: 'model' })];
      }
      return [...entryViolations(snapshot, node, attempt + 1), event(snapshot, 'NodeStarted', { nodeId, attempt: attempt + 1 })];
    case 'running':
      if (node.type === 'parallel') {
        return [
          event(snapshot, 'NodeSucceeded', { nodeId, attempt, output: joinOf(starter, snapshot, nodeId) }),
          event(snapshot, 'NodeFailed', { nodeId, attempt, error: failureText(nodeId) }),
        ];
      }
      // A violation found in an attempt's output is recorded just before its success (SPEC §13): nothing else may follow it.
      if (snapshot.context.contractViolations[`${nodeId}@exit`]?.attempt === attempt) return brokenContract(snapshot, node, attempt);
      return [
        ...branchOutputs(starter, nodeId, contextOf(starter.model, snapshot.context, nodeId)).map((output) => event(snapshot, 'NodeSucceeded', { nodeId, attempt, output })),
        ...brokenContract(snapshot, node, attempt),
        event(snapshot, 'NodeFailed', { nodeId, attempt, error: failureText(nodeId) }),
        event(snapshot, 'NodeFailed', { nodeId, attempt, error: 'aborted: model', aborted: true }),
      ];
    case 'paused': {
      const gate = gateAt(snapshot, nodeId);
      if (gate?.status !== 'pending') throw new TypeError(`paused at '${nodeId}' without a pending gate`);
      const data = { approvalId: gate.approvalId, nodeId, approver: 'model', reason: '' };
      return [
        event(snapshot, 'ApprovalGranted', data),
        event(snapshot, 'ApprovalRejected', data),
        event(snapshot, 'ApprovalCancelled', { approvalId: gate.approvalId, nodeId, reason: 'model' }),
      ];
    }
    case 'approved': {
      const gate = gateAt(snapshot, nodeId);
      return gate === undefined ? [] : [event(snapshot, 'RunResumed', { approvalId: gate.approvalId, nodeId })];
    }
    case 'escalating': {
      const to = node.on_failure?.inject_into;
      return to === undefined ? [] : [event(snapshot, 'NodeEscalated', { from: nodeId, to, error: failureText(nodeId) })];
    }
    case 'done':
      return [event(snapshot, 'RunCompleted', {})];
    default: {
      const cause = causeOfPhase[phase];
      return cause === undefined ? [] : [fail(cause)];
    }
  }
}

/** Whether the machine accepts `proposed` where the snapshot stands. */
function accepts(starter: Starter, snapshot: RunSnapshot, proposed: RunEvent): boolean {
  try {
    foldRun(starter.machine, snapshot, [proposed]);
    return true;
  } catch (error) {
    if (error instanceof FoldError) return false;
    throw error;
  }
}

/**
 * The traversal's `events(snapshot)`: for every active node, the candidates
 * its phase admits that the machine accepts; RunStarted before the start;
 * nothing in a final state.
 */
export function proposeEvents(starter: Starter): (snapshot: RunSnapshot) => RunEvent[] {
  return (snapshot) => {
    if (snapshot.value === 'idle') {
      return [
        event(snapshot, 'RunStarted', {
          playbookName: starter.definition.name,
          sourceHash: sha256Hex(starter.source),
          source: starter.source,
          context: starter.startContext,
          maxIterationsDefault: MODEL_MAX_ITERATIONS_DEFAULT,
        }),
      ];
    }
    if (typeof snapshot.value === 'string') return [];
    const accepted = activeNodes(starter.model, snapshot.value)
      .flatMap(({ nodeId, phase }) => candidatesAt(starter, snapshot, nodeId, phase))
      .filter((proposed) => accepts(starter, snapshot, proposed));
    // The host acts before it waits (SPEC §9: entering a group starts every branch):
    // while it has something to record, nothing from outside happens first.
    const host = accepted.filter((proposed) => !isEnvironment(starter, proposed));
    return host.length > 0 ? host : accepted;
  };
}

/** What the world decides (a dispatch's answer, a human's decision), as opposed to what the host records. */
function isEnvironment(starter: Starter, proposed: RunEvent): boolean {
  switch (proposed.type) {
    case 'NodeSucceeded':
      return starter.model.nodes.get(proposed.data.nodeId)?.type !== 'parallel';
    case 'NodeFailed':
      return proposed.data.aborted !== true && starter.model.nodes.get(proposed.data.nodeId)?.type !== 'parallel';
    case 'ApprovalGranted':
    case 'ApprovalRejected':
      return true;
    case 'ContractViolated':
      // A check of an attempt's output comes with the output: the dispatcher's outcome decides it.
      return proposed.data.kind !== 'requires';
    default:
      return false;
  }
}

/**
 * A state's identity for the traversal: its value, the counters the guards read
 * (attempts, capCounts, escalations), the contract violations recorded (and
 * for which attempt), its gates and the fields branches read.
 * Everything else (timestamps, __lastError, outputs nobody branches on) is left
 * out so that runs which differ only there meet in one state. The counters are
 * bounded by the caps, so the traversal terminates.
 */
export function serializeRunSnapshot(starter: Starter): (snapshot: RunSnapshot) => string {
  return (snapshot) => {
    const { context } = snapshot;
    return canonicalJson({
      value: snapshot.value,
      attempts: context.attempts,
      capCounts: context.capCounts,
      branchOutputs: Object.keys(context.branchOutputs).sort(),
      escalations: context.escalations,
      // A recorded violation changes what may follow (the success that must come with it, the handler's ending).
      violations: Object.fromEntries(Object.entries(context.contractViolations).map(([key, violation]) => [key, violation.attempt])),
      gates: Object.values(context.approvals).map((gate) => [gate.nodeId, gate.status, gate.resumed]),
      branch: Object.fromEntries(starter.branchFields.map((field) => [field, readPath(context.context, field)])),
    });
  };
}

/**
 * Whether the runtime comes to rest here: a final state, or only humans can
 * move the run (every active node is a pending gate and the host has nothing
 * to record).
 */
export function isRestingState(snapshot: RunSnapshot, starter: Starter): boolean {
  const { value } = snapshot;
  if (typeof value === 'string') return (finalStates as readonly string[]).includes(value);
  const leaves = activeNodes(starter.model, value).filter(({ nodeId }) => nodeOf(starter.model, nodeId).type !== 'parallel');
  if (leaves.length === 0 || !leaves.every(({ phase }) => phase === 'paused')) return false;
  return proposeEvents(starter)(snapshot).every((proposed) => isEnvironment(starter, proposed));
}

/** The terminal status the runtime returns when it rests in `value`. */
export function expectedStatus(value: unknown): string {
  return typeof value === 'string' ? value : 'pending_approval';
}

/** One path through a starter's machine: the events of a run, and the states it passes. */
export interface ModelPath {
  kind: 'shortest' | 'simple';
  events: RunEvent[];
  states: RunSnapshot[];
  final: RunSnapshot;
}

/** Limits that keep a traversal small. */
export interface TraversalBounds {
  /** Drop proposals from states this returns true for (e.g. too many escalations so far). */
  prune?: (snapshot: RunSnapshot, proposed: RunEvent) => boolean;
  /** xstate's own limit on adjacency iterations; exceeding it throws rather than hangs. */
  limit?: number;
}

function traversalOptions(starter: Starter, bounds: TraversalBounds) {
  const propose = proposeEvents(starter);
  const serialize = serializeRunSnapshot(starter);
  return {
    events: (snapshot: RunSnapshot) => propose(snapshot),
    serializeState: (snapshot: RunSnapshot) => serialize(snapshot),
    filterEvents: (snapshot: RunSnapshot, proposed: RunEvent) => !(bounds.prune?.(snapshot, proposed) ?? false),
    limit: bounds.limit ?? 200_000,
  };
}

/** Every reachable state and its outgoing transitions, as xstate/graph sees them. */
export function adjacencyOf(starter: Starter, bounds: TraversalBounds = {}): AdjacencyMap<RunSnapshot, RunEvent> {
  return getAdjacencyMap(starter.machine, traversalOptions(starter, bounds) as never) as unknown as AdjacencyMap<RunSnapshot, RunEvent>;
}

/**
 * Paths from the initial state to every resting state (final or paused):
 * `shortest` gives one per distinct resting state, `simple` every path that
 * visits no state twice (within `bounds`).
 */
export function modelPaths(starter: Starter, kind: ModelPath['kind'], bounds: TraversalBounds = {}): ModelPath[] {
  const options = traversalOptions(starter, bounds);
  const paths = kind === 'shortest' ? getShortestPaths(starter.machine, options as never) : getSimplePaths(starter.machine, options as never);
  return paths
    .filter((path) => isRestingState(path.state as RunSnapshot, starter))
    .map((path) => {
      // xstate/graph puts the initial state first, reached by a synthetic 'xstate.init'.
      const steps = path.steps as unknown as { state: RunSnapshot; event: RunEvent }[];
      return { kind, events: steps.slice(1).map((step) => step.event), states: steps.map((step) => step.state), final: path.state as RunSnapshot };
    });
}

/**
 * The cap rules of SPEC §4 checked along one path's events: a node retried in
 * place (restarted right after its own failure) stays within max(cap, 1)
 * attempts in a row; a node with `inject_into` never retries in place; a node
 * escalates at most `cap` times in the run.
 */
export function capViolations(starter: Starter, events: readonly RunEvent[]): string[] {
  const problems: string[] = [];
  const streak = new Map<string, number>();
  const escalations = new Map<string, number>();
  let previous: RunEvent | undefined;
  for (const event of events) {
    if (event.type === 'NodeStarted') {
      const node = nodeOf(starter.model, event.data.nodeId);
      const cap = capOf(node, MODEL_MAX_ITERATIONS_DEFAULT);
      const retry = previous?.type === 'NodeFailed' && previous.data.nodeId === event.data.nodeId;
      const inARow = retry ? (streak.get(event.data.nodeId) ?? 0) + 1 : 1;
      streak.set(event.data.nodeId, inARow);
      if (inARow > Math.max(cap, 1)) problems.push(`${event.data.nodeId}: ${inARow} attempts in a row > max(cap ${cap}, 1)`);
      if (retry && node.on_failure?.inject_into !== undefined) problems.push(`${event.data.nodeId}: retried in place despite inject_into`);
    }
    if (event.type === 'NodeEscalated') {
      const cap = capOf(nodeOf(starter.model, event.data.from), MODEL_MAX_ITERATIONS_DEFAULT);
      const count = (escalations.get(event.data.from) ?? 0) + 1;
      escalations.set(event.data.from, count);
      if (count > cap) problems.push(`${event.data.from}: ${count} escalations > cap ${cap}`);
    }
    previous = event;
  }
  return problems;
}
