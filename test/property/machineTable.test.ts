/**
 * Differential property: the transition table fold (src/compiler/machineTable.ts)
 * equals xstate's `machine.transition` after EVERY event — both refuse, or both
 * accept with the same state value (same shape and key order), the same context
 * and the same status. Checked on random playbooks (top-level DAGs with guarded
 * edges, gates, escalation and caps; nested parallel groups, fail_fast and
 * wait_all, max_concurrency, guarded edges inside branches), on the starter
 * playbooks, and on every golden log.
 *
 * Events come from a driver: at each step it either writes one of the events
 * the machine's state calls for (a run the host would write, environment
 * choices included: success with outputs that route either way, failure,
 * approve, reject, expiry after expiresAt), or a corrupt one the machine must
 * refuse or that changes the run (wrong node, wrong attempt, wrong cause,
 * aborted flag flipped, wrong branch, unknown gate, expiry before expiresAt,
 * internal errors, cancellations, events after the end). Both folds follow
 * their own snapshots; the oracle is xstate, not the code under test.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { compileModel } from '../../src/compiler/compilePlaybook.js';
import type { PlaybookMachine } from '../../src/compiler/compilePlaybook.js';
import { FoldError, foldRun, foldRunWithXstate, initialRunSnapshot, initialRunSnapshotWithXstate } from '../../src/compiler/foldRun.js';
import type { RunSnapshot } from '../../src/compiler/foldRun.js';
import { createMachineFold } from '../../src/compiler/machineTable.js';
import { FoldDraft, redriveNodeOf } from '../../src/compiler/runState.js';
import { nextSteps } from '../../src/compiler/nextStep.js';
import type { NextStep } from '../../src/compiler/nextStep.js';
import { createPlaybookModel } from '../../src/compiler/playbookModel.js';
import type { PlaybookModel } from '../../src/compiler/playbookModel.js';
import type { FailureCause, RunEvent, RunEventDataMap, RunEventType } from '../../src/events/types.js';
import { parsePlaybook } from '../../src/playbook/parsePlaybook.js';
import { foldStoredEvents } from '../../src/runtime/loadRun.js';
import { playbookDefinitionArbitrary } from './arbitraries/playbookArbitrary.js';

const seed = Number(process.env['FC_SEED'] ?? 20_260_110);
const numRuns = Number(process.env['FC_RUNS'] ?? 500);
console.info(`machineTable: fast-check seed ${seed}, ${numRuns} runs (set FC_SEED / FC_RUNS to change)`);

const RUN_ID = 'table-run';
const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const EXPIRES_AT = new Date(T0 + 3_600_000).toISOString();
const causes: FailureCause[] = ['exceeded_iteration_cap', 'no_branch', 'ambiguous_branch', 'approval_rejected', 'approval_expired', 'internal_error', 'cancelled'];
/** Outputs that send `when` edges (on `route`, `score`, `status`) every way. */
const outputs = [{}, { route: 'a' }, { route: 'b' }, { route: 'a', score: 1 }, { score: 1 }, { status: 'ok', route: 'a', score: true }, { flags: { fast: true } }, { plan: 'p', exitCode: 0 }, { exitCode: 1, review: { verdict: 'pass' } }];
/** Exit-checkpoint violations the driver proposes (SPEC §13); the machine accepts those the pure checks agree with. */
const exitKinds = ['outputFiles', 'exitCode', 'schema', 'edge'] as const;
const contractKeys = ['plan', 'status', 'exitCode', 'route', 'review.verdict', 'flags.fast', 'task_tree'];

/** One driver decision: valid or corrupt, and which one. */
type Choice = [kind: number, pick: number, twist: number];
const choicesArbitrary = fc.array(fc.tuple(fc.nat(), fc.nat(), fc.nat()), { minLength: 10, maxLength: 80 });

// ---------------------------------------------------------------- playbooks with parallel groups

type Link = 'depends' | 'guarded' | 'guarded_default' | 'fork';
type Step =
  | { kind: 'work'; cap: number; inject: boolean; backoff: boolean; link: Link; contract: number }
  | { kind: 'gate'; link: Link }
  | { kind: 'group'; cap: number; failure: 'fail_fast' | 'wait_all'; maxConcurrency: number | null; branches: Step[][]; link: Link };

const linkArbitrary = fc.constantFrom<Link>('depends', 'depends', 'guarded', 'guarded_default', 'fork');
const stepArbitrary: fc.Arbitrary<Step> = fc.letrec<{ step: Step; chain: Step[] }>((tie) => ({
  step: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('work' as const), cap: fc.integer({ min: 0, max: 3 }), inject: fc.boolean(), backoff: fc.boolean(), link: linkArbitrary, contract: fc.nat({ max: 5 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('gate' as const), link: linkArbitrary }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('group' as const),
        cap: fc.integer({ min: 0, max: 2 }),
        failure: fc.constantFrom('fail_fast' as const, 'wait_all' as const),
        maxConcurrency: fc.option(fc.integer({ min: 1, max: 3 }), { nil: null }),
        branches: fc.array(tie('chain'), { minLength: 2, maxLength: 3 }),
        link: linkArbitrary,
      }),
    },
  ),
  chain: fc.array(tie('step'), { minLength: 1, maxLength: 3 }),
})).step;

/**
 * A chain of steps as playbook YAML: each step leads to the next by `depends`,
 * by a guarded edge (no default: no_branch possible), a guarded edge with a
 * default, or a fork (two guarded edges to the next and the last step:
 * ambiguous_branch possible).
 */
function parallelPlaybookOf(chain: Step[], handlers: Record<string, string>[] = []): string {
  let nodes = 0;
  let branches = 0;
  const build = (steps: Step[]): { nodes: Record<string, unknown>[]; edges: Record<string, unknown>[] } => {
    const out: Record<string, unknown>[] = [];
    const edges: Record<string, unknown>[] = [];
    const ids = steps.map(() => `n${++nodes}`);
    steps.forEach((step, i) => {
      const id = ids[i] as string;
      const previous = i === 0 ? undefined : (steps[i - 1] as Step);
      const base: Record<string, unknown> = { id };
      if (previous !== undefined) {
        const from = ids[i - 1] as string;
        if (previous.link === 'depends') base.depends = [from];
        if (previous.link === 'guarded') edges.push({ from, to: id, when: { field: 'route', equals: 'a' } });
        if (previous.link === 'guarded_default') edges.push({ from, to: id, when: { field: 'score', truthy: true } }, { from, to: ids.at(-1) });
        if (previous.link === 'fork') {
          edges.push({ from, to: id, when: { field: 'route', equals: 'a' } });
          if (ids.at(-1) !== id) edges.push({ from, to: ids.at(-1), when: { field: 'score', exists: true } });
        }
      }
      if (step.kind === 'gate') {
        out.push({ ...base, type: 'approval', prompt: `gate ${id}?`, timeout: '1h' });
      } else if (step.kind === 'work') {
        const inject = step.inject ? (out.find((node) => node.type === 'agentic')?.id as string | undefined) : undefined;
        const backoff = step.backoff && inject === undefined ? { backoff: { initial: '10s', factor: 3, max: '20s' } } : {};
        // Contracts (SPEC §13): 1 requires, 2 ensures, 3 both, 4 a schema; 0 and 5 none.
        const contract = {
          ...(step.contract === 1 || step.contract === 3 ? { requires: { fields: ['plan'] } } : {}),
          ...(step.contract === 2 || step.contract === 3 ? { ensures: { outputFiles: ['plan'] } } : step.contract === 4 ? { ensures: { schema: 'evidence' } } : {}),
        };
        out.push({ ...base, type: 'agentic', skill: 's', ...contract, on_failure: { max_iterations: step.cap, ...(inject === undefined ? {} : { inject_into: inject }), ...backoff } });
      } else {
        out.push({
          ...base,
          type: 'parallel',
          failure: step.failure,
          ...(step.maxConcurrency === null ? {} : { max_concurrency: step.maxConcurrency }),
          on_failure: { max_iterations: step.cap },
          branches: step.branches.map((branch) => ({ id: `b${++branches}`, ...build(branch) })),
        });
      }
    });
    return { nodes: out, edges };
  };
  return stringify({ version: '1.0', name: 'generated', ...build(chain), error_handlers: handlers });
}

/** The error handlers a generated parallel playbook declares: none, or one per trigger that branches act on. */
const handlersArbitrary = fc.constantFrom<Record<string, string>[]>(
  [],
  [{ on: 'contract_violation', action: 'abort' }],
  [{ on: 'contract_violation', action: 'hitl_escalate' }, { on: 'iteration_cap_exceeded', action: 'hitl_escalate' }],
  [{ on: 'contract_violation', action: 'inject_hint' }],
);

const parallelModelArbitrary = fc.tuple(fc.array(stepArbitrary, { minLength: 1, maxLength: 3 }), handlersArbitrary).map(([chain, handlers]) => {
  // parsePlaybook throws on an invalid playbook: the generator only writes valid ones.
  return createPlaybookModel(parsePlaybook(parallelPlaybookOf(chain, handlers)).definition);
});

const dagModelArbitrary = playbookDefinitionArbitrary({ minNodes: 1, maxNodes: 7 }).map((definition) => createPlaybookModel(definition));

// ---------------------------------------------------------------- the driver

function eventOf<K extends RunEventType>(snapshot: RunSnapshot, type: K, data: RunEventDataMap[K], at?: string): RunEvent {
  const seq = snapshot.context.version + 1;
  return { type, data, at: at ?? new Date(T0 + seq * 1000).toISOString(), runId: RUN_ID, seq, globalSeq: seq, hash: '' } as RunEvent;
}

const pickOf = <T,>(list: readonly T[], n: number): T => list[n % list.length] as T;

/** The events the machine's state calls for (plus the environment's choices where it waits). */
function validEvents(model: PlaybookModel, s: RunSnapshot, twist: number): RunEvent[] {
  const out: RunEvent[] = [];
  const steps: NextStep[] = nextSteps(model, s);
  for (const step of steps) {
    switch (step.kind) {
      case 'not_started':
        out.push(eventOf(s, 'RunStarted', { playbookName: model.definition.name, sourceHash: 'h', source: '', context: pickOf(outputs, twist), maxIterationsDefault: 1 + (twist % 3) }));
        break;
      case 'start':
        // After a backoff: at its due time (accepted), and at the event's default time (refused while that is earlier).
        out.push(eventOf(s, 'NodeStarted', { nodeId: step.nodeId, attempt: step.attempt }, twist % 2 === 0 ? step.notBefore : undefined));
        break;
      case 'schedule_retry': {
        const at = new Date(T0 + (s.context.version + 1) * 1000);
        const dueAt = new Date(at.getTime() + step.delayMs + (twist % 4 === 0 ? 1 : 0)).toISOString();
        out.push(eventOf(s, 'NodeRetryScheduled', { nodeId: step.nodeId, attempt: step.attempt, dueAt }, at.toISOString()));
        break;
      }
      case 'pause': {
        // An escalation gate carries what opened it; now and then the driver drops or changes that (refused).
        const escalation = twist % 7 === 0 ? undefined : twist % 11 === 0 ? { on: 'agentic_timeout' as const } : step.escalation;
        out.push(eventOf(s, 'RunPaused', { approvalId: `g${s.context.version}`, nodeId: step.nodeId, prompt: 'p', tokenHash: 't', contextDigest: 'd', ...(twist % 3 === 0 || step.escalation !== undefined ? {} : { expiresAt: EXPIRES_AT }), ...(escalation === undefined ? {} : { escalation }) }));
        break;
      }
      case 'violate':
        out.push(eventOf(s, 'ContractViolated', { nodeId: step.nodeId, attempt: step.attempt, ...step.violation }));
        out.push(eventOf(s, 'ContractViolated', { nodeId: step.nodeId, attempt: step.attempt, ...step.violation, key: pickOf(contractKeys, twist) }));
        break;
      case 'in_flight':
        // Success twice as likely as failure, so runs get somewhere.
        out.push(eventOf(s, 'NodeSucceeded', { nodeId: step.nodeId, attempt: step.attempt, output: pickOf(outputs, twist) }));
        out.push(eventOf(s, 'NodeSucceeded', { nodeId: step.nodeId, attempt: step.attempt, output: pickOf(outputs, twist >> 3) }));
        out.push(eventOf(s, 'NodeFailed', { nodeId: step.nodeId, attempt: step.attempt, error: `failed ${step.nodeId}`, ...(twist % 3 === 0 ? { retryable: false } : twist % 3 === 1 ? { timedOut: true } : {}) }));
        out.push(eventOf(s, 'ContractViolated', { nodeId: step.nodeId, attempt: step.attempt, kind: pickOf(exitKinds, twist), key: pickOf(contractKeys, twist >> 2), message: 'm', ...(twist % 5 === 0 ? { failClosed: true as const } : {}) }));
        break;
      case 'abort':
      case 'stop_group':
        out.push(eventOf(s, 'NodeFailed', { nodeId: step.nodeId, attempt: step.attempt, error: 'aborted', aborted: true }));
        break;
      case 'cancel_gate':
        out.push(eventOf(s, 'ApprovalCancelled', { approvalId: step.approvalId, nodeId: step.nodeId, reason: 'stopped' }));
        break;
      case 'paused': {
        const decision = { approvalId: step.approvalId, nodeId: step.nodeId, approver: 'p', reason: 'r' };
        out.push(eventOf(s, 'ApprovalGranted', decision), eventOf(s, 'ApprovalRejected', decision));
        if (twist % 4 === 0) out.push(eventOf(s, 'ApprovalGranted', { ...decision, approver: 'policy', auto: true, rule: 'r' }));
        out.push(...expiries(model, s, step.nodeId, step.approvalId, twist));
        const at = new Date(T0 + 3_600_000 + ((twist % 3) - 1) * 1000).toISOString();
        out.push(eventOf(s, 'ApprovalExpired', { approvalId: step.approvalId, nodeId: step.nodeId }, at));
        break;
      }
      case 'resume':
        out.push(eventOf(s, 'RunResumed', { approvalId: step.approvalId, nodeId: step.nodeId }));
        break;
      case 'escalate':
        out.push(eventOf(s, 'NodeEscalated', { from: step.from, to: step.to, error: step.error }));
        break;
      case 'join':
        out.push(eventOf(s, 'NodeSucceeded', { nodeId: step.nodeId, attempt: step.attempt, output: step.output }));
        break;
      case 'fail_group':
        out.push(eventOf(s, 'NodeFailed', { nodeId: step.nodeId, attempt: step.attempt, error: step.error }));
        break;
      case 'complete':
        out.push(eventOf(s, 'RunCompleted', {}));
        break;
      case 'fail':
        out.push(failEvent(s, step.nodeId, step.cause, step.error, step.branch));
        break;
      case 'finished': {
        // A failed run can be redriven from the node it failed at (and from no other).
        const from = redriveNodeOf(model, s.context);
        const ids = [...model.nodes.keys()];
        if (from !== undefined) out.push(eventOf(s, 'RunRetried', { fromNode: twist % 5 === 0 ? pickOf(ids, twist) : from, by: 'p' }));
        break;
      }
    }
  }
  return out;
}

function failEvent(s: RunSnapshot, nodeId: string, cause: FailureCause, error: string, branch?: { groupId: string; branchId: string }, extra: { approvalId?: string; at?: string } = {}): RunEvent {
  const { at, ...rest } = extra;
  if (branch === undefined) return eventOf(s, 'RunFailed', { nodeId, cause, error, ...rest }, at);
  return eventOf(s, 'BranchFailed', { ...branch, nodeId, cause: cause as RunEventDataMap['BranchFailed']['cause'], error, ...rest }, at);
}

/** Expiry of the gate, after and before its expiresAt. */
function expiries(model: PlaybookModel, s: RunSnapshot, nodeId: string, approvalId: string, twist: number): RunEvent[] {
  const branch = branchRefOf(model, nodeId);
  const after = new Date(T0 + 3_600_000 + (twist % 5) * 1000).toISOString();
  const before = new Date(T0 + 3_600_000 - 1 - (twist % 5) * 1000).toISOString();
  return [
    failEvent(s, nodeId, 'approval_expired', 'expired', branch, { approvalId, at: after }),
    failEvent(s, nodeId, 'approval_expired', 'expired', branch, { approvalId, at: before }),
  ];
}

function branchRefOf(model: PlaybookModel, nodeId: string): { groupId: string; branchId: string } | undefined {
  const chain = model.branchChain.get(nodeId) ?? [];
  const branchId = chain.at(-1);
  if (branchId === undefined) return undefined;
  return { groupId: model.branches.get(branchId)?.groupId as string, branchId };
}

/** A corrupt variant of `base` (or a stray event), picked by `pick` and `twist`. */
function corruptEvent(model: PlaybookModel, s: RunSnapshot, base: RunEvent | undefined, pick: number, twist: number): RunEvent {
  const ids = [...model.nodes.keys()];
  const branchIds = [...model.branches.keys()];
  const otherNode = pickOf(ids, twist);
  const cause = pickOf(causes, twist);
  const data = (base?.data ?? {}) as Record<string, unknown>;
  const nodeId = (data.nodeId as string | undefined) ?? otherNode;
  // Ending the run from anywhere is valid (an internal error, a cancellation): only now and then, so runs go on.
  switch (pick % 8 === 0 ? pick % 12 : 2 + (pick % 10)) {
    case 0:
      return eventOf(s, 'RunFailed', { error: 'host', cause: twist % 2 === 0 ? 'internal_error' : cause });
    case 1:
      return eventOf(s, 'RunCancelled', { reason: 'stop' });
    case 2:
      if (base !== undefined && 'nodeId' in data) return { ...base, data: { ...data, nodeId: otherNode } } as RunEvent;
      return eventOf(s, 'NodeStarted', { nodeId: otherNode, attempt: 1 });
    case 3:
      if (base !== undefined && 'attempt' in data) return { ...base, data: { ...data, attempt: (data.attempt as number) + (twist % 2 === 0 ? 1 : -1) } } as RunEvent;
      return eventOf(s, 'NodeSucceeded', { nodeId: otherNode, attempt: s.context.attempts[otherNode] ?? 0, output: pickOf(outputs, twist) });
    case 4:
      if (base !== undefined && 'cause' in data) return { ...base, data: { ...data, cause } } as RunEvent;
      return failEvent(s, nodeId, cause, 'x', twist % 2 === 0 ? branchRefOf(model, nodeId) : undefined);
    case 5:
      if (base?.type === 'NodeFailed') return { ...base, data: { ...data, aborted: data.aborted !== true } } as RunEvent;
      return eventOf(s, 'NodeFailed', { nodeId, attempt: s.context.attempts[nodeId] ?? 0, error: 'e', aborted: twist % 2 === 0 });
    case 6: {
      const ref = branchRefOf(model, nodeId);
      const branchId = branchIds.length === 0 ? 'nope' : pickOf(branchIds, twist);
      return eventOf(s, 'BranchFailed', { groupId: ref?.groupId ?? 'nope', branchId, nodeId, cause: pickOf(causes.slice(0, 5), twist) as 'no_branch', error: 'x' });
    }
    case 7: {
      const approvalId = twist % 2 === 0 ? 'unknown' : (Object.keys(s.context.approvals).at(-1) ?? 'unknown');
      return eventOf(s, pickOf(['ApprovalCancelled', 'ApprovalGranted', 'ApprovalRejected', 'RunResumed'] as const, pick >> 4), { approvalId, nodeId, approver: 'p', reason: 'r' } as never);
    }
    case 8: {
      const gate = Object.values(s.context.approvals).at(-1);
      return failEvent(s, gate?.nodeId ?? nodeId, 'approval_expired', 'expired', twist % 2 === 0 ? branchRefOf(model, gate?.nodeId ?? nodeId) : undefined, { approvalId: gate?.approvalId ?? 'g', at: twist % 3 === 0 ? EXPIRES_AT : new Date(T0).toISOString() });
    }
    case 9:
      return eventOf(s, 'NodeEscalated', { from: nodeId, to: otherNode, error: 'e' });
    case 10:
      return eventOf(s, 'RunCompleted', {});
    default:
      return eventOf(s, 'RunStarted', { playbookName: 'x', sourceHash: 'h', source: '', context: {}, maxIterationsDefault: 2 });
  }
}

/** xstate's fold of one event, or undefined when it refuses. */
function xstateStep(machine: PlaybookMachine, snapshot: RunSnapshot, event: RunEvent): RunSnapshot | undefined {
  try {
    return foldRunWithXstate(machine, snapshot, [event]);
  } catch (error) {
    if (error instanceof FoldError) return undefined;
    throw error;
  }
}

/** foldRun of one event under a draft that spans the run (as a RunSession folds), or undefined when it refuses. */
function draftedStep(machine: PlaybookMachine, snapshot: RunSnapshot, event: RunEvent, draft: FoldDraft): RunSnapshot | undefined {
  try {
    return foldRun(machine, snapshot, [event], { draft });
  } catch (error) {
    if (error instanceof FoldError) return undefined;
    throw error;
  }
}

/** Asserts the two folds agree on one event's outcome. */
function expectSame(table: RunSnapshot | undefined, reference: RunSnapshot | undefined, label: () => string): void {
  if (table === undefined || reference === undefined) {
    if (table !== reference) expect.fail(`${label()}: table ${table === undefined ? 'refused' : 'accepted'}, xstate ${reference === undefined ? 'refused' : 'accepted'}`);
    return;
  }
  // Key order too: the value is what the projections and the viewer print.
  if (JSON.stringify(table.value) !== JSON.stringify(reference.value)) expect.fail(`${label()}: value ${JSON.stringify(table.value)} vs xstate ${JSON.stringify(reference.value)}`);
  if (table.status !== reference.status) expect.fail(`${label()}: status ${table.status} vs xstate ${reference.status}`);
  if (!isDeepStrictEqual(table.context, reference.context)) expect(table.context, label()).toEqual(reference.context);
}

/** Every event type some driven run had accepted: the properties below check that the new kinds were reached. */
const acceptedTypes = new Set<RunEventType>();
/** SPEC §13 decisions both folds accepted: an escalation gate, an auto-pass, a contract failure. */
const acceptedDecisions = new Set<string>();

/** Drives both folds with the same events; returns how many events each accepted, refused. */
function drive(model: PlaybookModel, choices: readonly Choice[]): { accepted: number; refused: number } {
  const machine = compileModel(model);
  const fold = createMachineFold(machine);
  let table = fold.initial();
  let reference = initialRunSnapshotWithXstate(machine);
  expectSame(table, reference, () => 'initial snapshot');
  // The run session's fold: one event per call, one draft writing the run's maps in place throughout.
  const draft = new FoldDraft();
  let drafted = initialRunSnapshot(machine);
  let accepted = 0;
  let refused = 0;
  const log: string[] = [];
  let afterEnd = 0;
  for (const [kind, pick, twist] of choices) {
    // A few events after the end are enough: the machine must refuse them all.
    if (table.status === 'done' && ++afterEnd > 4) break;
    const valid = validEvents(model, table, twist);
    const corrupt = kind % 10 < 2 || valid.length === 0;
    const event = corrupt ? corruptEvent(model, table, valid.length === 0 ? undefined : pickOf(valid, pick), pick, twist) : pickOf(valid, pick);
    log.push(`${event.type} ${JSON.stringify(event.data)} @${event.at}`);
    const nextTable = fold.step(table, event);
    const nextReference = xstateStep(machine, reference, event);
    const nextDrafted = draftedStep(machine, drafted, event, draft);
    expectSame(nextTable, nextReference, () => `after\n  ${log.join('\n  ')}\nfrom ${JSON.stringify(table.value)}`);
    expectSame(nextDrafted, nextReference, () => `drafted fold, after\n  ${log.join('\n  ')}`);
    if (nextTable === undefined || nextReference === undefined || nextDrafted === undefined) {
      refused += 1;
      continue;
    }
    accepted += 1;
    acceptedTypes.add(event.type);
    if (event.type === 'RunPaused' && event.data.escalation !== undefined) acceptedDecisions.add(`escalation:${event.data.escalation.on}`);
    if (event.type === 'ApprovalGranted' && event.data.auto === true) acceptedDecisions.add('auto-pass');
    if ((event.type === 'RunFailed' || event.type === 'BranchFailed') && event.data.cause === 'contract_violation') acceptedDecisions.add('contract_violation');
    table = nextTable;
    reference = nextReference;
    drafted = nextDrafted;
  }
  return { accepted, refused };
}

// ---------------------------------------------------------------- the properties

describe('the transition table fold equals machine.transition after every event', () => {
  it('on random top-level playbooks (guarded edges, gates, escalation, caps)', () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(dagModelArbitrary, choicesArbitrary, (model, choices) => {
        const counts = drive(model, choices);
        accepted += counts.accepted;
        refused += counts.refused;
      }),
      { seed, numRuns },
    );
    console.info(`top-level: ${accepted} accepted, ${refused} refused`);
    expect(accepted, 'the driver wrote runs, not only refusals').toBeGreaterThan(numRuns * 5);
    expect(refused, 'and corrupt events the machine had to refuse').toBeGreaterThan(numRuns);
  }, 60_000);

  it('on random playbooks with nested parallel groups (fail_fast, wait_all, max_concurrency, guarded edges in branches)', () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(parallelModelArbitrary, choicesArbitrary, (model, choices) => {
        const counts = drive(model, choices);
        accepted += counts.accepted;
        refused += counts.refused;
      }),
      { seed: seed + 1, numRuns },
    );
    console.info(`parallel: ${accepted} accepted, ${refused} refused`);
    // Time and redrive were driven through both folds, not only generated.
    for (const type of ['NodeRetryScheduled', 'ApprovalExpired', 'RunRetried', 'ContractViolated'] as const) expect(acceptedTypes.has(type), type).toBe(true);
    for (const decision of ['escalation:contract_violation', 'escalation:iteration_cap_exceeded', 'auto-pass', 'contract_violation']) expect(acceptedDecisions.has(decision), decision).toBe(true);
    expect(accepted).toBeGreaterThan(numRuns * 5);
    expect(refused).toBeGreaterThan(numRuns);
  }, 60_000);

  const starterDir = join(import.meta.dirname, '..', '..', 'starter');
  const starters = readdirSync(starterDir).filter((file) => file.endsWith('.cantbook'));
  it('on runs of every starter playbook', () => {
    const models = starters.map((file) => createPlaybookModel(parsePlaybook(readFileSync(join(starterDir, file), 'utf8'), { fileName: file }).definition));
    expect(models.length).toBeGreaterThanOrEqual(4);
    fc.assert(
      fc.property(fc.nat({ max: models.length - 1 }), choicesArbitrary, (index, choices) => {
        drive(models[index] as PlaybookModel, choices);
      }),
      { seed: seed + 2, numRuns: Math.max(100, numRuns / 2) },
    );
  }, 60_000);

  const logDir = join(import.meta.dirname, '..', 'fixtures', 'logs');
  const goldens = readdirSync(logDir).filter((file) => file.endsWith('.json'));
  it.each(goldens)('on the golden log %s', (file) => {
    const { events } = JSON.parse(readFileSync(join(logDir, file), 'utf8')) as { events: RunEvent[] };
    const { playbook } = foldStoredEvents(events[0]!.runId, events);
    const fold = createMachineFold(playbook.machine);
    let table = fold.initial();
    let reference = initialRunSnapshotWithXstate(playbook.machine);
    for (const event of events) {
      const nextTable = fold.step(table, event);
      const nextReference = xstateStep(playbook.machine, reference, event);
      expectSame(nextTable, nextReference, () => `${file} event ${event.seq} (${event.type})`);
      expect(nextTable, `${file} event ${event.seq} is accepted`).toBeDefined();
      table = nextTable as RunSnapshot;
      reference = nextReference as RunSnapshot;
    }
    // foldRun is the table, with the seq check: the same end state.
    expect(foldRun(playbook.machine, initialRunSnapshot(playbook.machine), events)).toEqual({ value: table.value, context: table.context, status: table.status });
  });
});
