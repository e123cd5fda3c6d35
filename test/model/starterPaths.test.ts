/**
 * Model-based tests of the starters (issue: xstate/graph). xstate/graph walks
 * each starter's compiled machine over success / failure / approve / reject;
 * every path it finds becomes a script for a dispatcher and a human, and the
 * real runtime — SQLite file, approval tokens, resume — follows that script.
 * Each runtime run must end where the machine says, having written the events
 * the path consists of, and its log must fold to the path's final state.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentDispatcher, DispatchRequest, NodeOutcome } from '../../src/adapters/types.js';
import { foldRun, initialRunSnapshot } from '../../src/compiler/foldRun.js';
import type { RunSnapshot } from '../../src/compiler/foldRun.js';
import type { RunEvent } from '../../src/events/types.js';
import { executePlaybook } from '../../src/runtime/executePlaybook.js';
import { approveGate, rejectGate, resumePlaybook } from '../../src/runtime/gates.js';
import { loadRun } from '../../src/runtime/loadRun.js';
import { readRunEvents, verifyRun } from '../../src/runtime/queries.js';
import type { PlaybookResult } from '../../src/runtime/runSession.js';
import type { EventStore } from '../../src/store/eventStore.js';
import { manualClock, SECRET, tempStore } from '../helpers/runtimeHarness.js';
import { capViolations, expectedStatus, loadStarter, modelPaths } from './starterModel.js';
import type { ModelPath, Starter, TraversalBounds } from './starterModel.js';

/** The environment's choices along a path, in the order the runtime meets them. */
type Choice =
  | { kind: 'outcome'; nodeId: string; attempt: number; outcome: NodeOutcome }
  | { kind: 'decision'; nodeId: string; approve: boolean };

function choicesOf(path: ModelPath): Choice[] {
  return path.events.flatMap((event): Choice[] => {
    switch (event.type) {
      case 'NodeSucceeded':
        return [{ kind: 'outcome', nodeId: event.data.nodeId, attempt: event.data.attempt, outcome: { status: 'success', output: event.data.output } }];
      case 'NodeFailed':
        return [{ kind: 'outcome', nodeId: event.data.nodeId, attempt: event.data.attempt, outcome: { status: 'failure', error: event.data.error } }];
      case 'ApprovalGranted':
        return [{ kind: 'decision', nodeId: event.data.nodeId, approve: true }];
      case 'ApprovalRejected':
        return [{ kind: 'decision', nodeId: event.data.nodeId, approve: false }];
      default:
        return [];
    }
  });
}

/**
 * What two logs must agree on: the event types in order and the fields the
 * machine's decisions produce. Ids, hashes, clocks and rendered prompts differ
 * between the model's events and the runtime's and decide nothing.
 */
function shapeOf(event: RunEvent): string {
  const d = event.data as Record<string, unknown>;
  const fields = ['nodeId', 'attempt', 'from', 'to', 'cause'].filter((key) => d[key] !== undefined).map((key) => `${key}=${String(d[key])}`);
  if (event.type === 'NodeSucceeded') fields.push(`output=${JSON.stringify(d.output)}`);
  return [event.type, ...fields].join(' ');
}

/** A dispatcher that answers from the path's script and refuses to be called out of order. */
function scriptDispatcher(queue: Choice[]): AgentDispatcher & { calls: DispatchRequest[] } {
  const calls: DispatchRequest[] = [];
  return {
    calls,
    dispatch(request) {
      calls.push(request);
      const next = queue.shift();
      if (next?.kind !== 'outcome' || next.nodeId !== request.nodeId || next.attempt !== request.iteration) {
        throw new Error(`model script expected ${JSON.stringify(next)}, runtime dispatched '${request.nodeId}' attempt ${request.iteration}`);
      }
      return next.outcome;
    },
  };
}

/** Drives the real runtime along one path: execute, then approve/reject and resume at each gate. */
async function followPath(store: EventStore, starter: Starter, path: ModelPath): Promise<{ result: PlaybookResult; dispatcher: ReturnType<typeof scriptDispatcher>; tokens: string[] }> {
  const queue = choicesOf(path);
  const dispatcher = scriptDispatcher(queue);
  const clock = manualClock();
  const host = { dispatcher, approvalSecret: SECRET, now: clock.now };
  const tokens: string[] = [];
  let result = await executePlaybook({ store, playbook: starter.definition, source: starter.source, initialContext: starter.initialContext, ...host });
  while (result.terminalStatus === 'pending_approval' && queue[0]?.kind === 'decision') {
    const decision = queue.shift() as Extract<Choice, { kind: 'decision' }>;
    expect(result.pausedNodeId).toBe(decision.nodeId);
    const token = result.approvalToken as string;
    tokens.push(token);
    clock.advance(1000);
    if (decision.approve) {
      await approveGate({ store, token, approver: 'model', approvalSecret: SECRET, now: clock.now });
      result = await resumePlaybook({ store, approvalToken: token, ...host });
    } else {
      const decided = await rejectGate({ store, token, approver: 'model', approvalSecret: SECRET, now: clock.now });
      result = decided.result as PlaybookResult;
    }
  }
  expect(queue, 'the runtime stopped before the script was used up').toEqual([]);
  return { result, dispatcher, tokens };
}

interface StarterCase {
  file: string;
  context: Record<string, unknown>;
  /** Bounds for simple paths where the unbounded set is too large to run (ivtr: thousands of retry orders). */
  simpleBounds?: TraversalBounds;
}

/**
 * ivtr's simple paths: a node may fail only within the run's first
 * FAILING_ATTEMPTS attempts; later attempts succeed. Retries, escalation and the
 * cap all still fire, and the path set stays small enough to run.
 */
const FAILING_ATTEMPTS = Number(process.env.MODEL_FAILING_ATTEMPTS ?? 7);
const attemptsSoFar = (snapshot: RunSnapshot) => Object.values(snapshot.context.attempts).reduce((sum, n) => sum + n, 0);

const cases: StarterCase[] = [
  { file: 'rcasd.cantbook', context: { epicId: 'EPIC-1' } },
  { file: 'release.cantbook', context: { targetVersion: '2.0.0' } },
  { file: 'ci-gate.cantbook', context: {} },
  {
    file: 'ivtr.cantbook',
    context: { taskId: 'T-1' },
    simpleBounds: { prune: (snapshot, proposed) => proposed.type === 'NodeFailed' && attemptsSoFar(snapshot) > FAILING_ATTEMPTS },
  },
];

describe.each(cases)('model-based: $file', ({ file, context, simpleBounds }) => {
  const starter = loadStarter(file, context);
  const shortest = modelPaths(starter, 'shortest');
  const simple = modelPaths(starter, 'simple', simpleBounds ?? {});
  let store: EventStore;
  let cleanup: () => Promise<void>;
  beforeAll(async () => ({ store, cleanup } = await tempStore()));
  afterAll(() => cleanup());

  it('the traversal reaches every kind of ending the starter can have', () => {
    const endings = new Set([...shortest, ...simple].map((path) => expectedStatus(path.final.value)));
    expect(endings).toContain('completed');
    expect(endings).toContain('exceeded_iteration_cap');
    if (starter.definition.nodes.some((node) => node.type === 'approval')) {
      expect(endings).toContain('pending_approval');
      expect(endings).toContain('failed');
    }
    // A starter that aborts on a broken contract (SPEC §13) has paths that end there, one per node that promises something.
    if (starter.definition.error_handlers.some((handler) => handler.on === 'contract_violation' && handler.action === 'abort')) {
      const promising = starter.definition.nodes.filter((node) => node.type !== 'approval' && node.ensures !== undefined).map((node) => node.id);
      const abortedAt = new Set([...shortest, ...simple].flatMap((path) => (path.final.context.error?.cause === 'contract_violation' ? [path.final.context.error.nodeId] : [])));
      expect([...abortedAt].sort()).toEqual([...promising].sort());
    }
    // No path breaks a cap (SPEC §4): the machine itself stops in time.
    for (const path of [...shortest, ...simple]) expect(capViolations(starter, path.events)).toEqual([]);
  });

  for (const [kind, paths] of [['shortest', shortest], ['simple', simple]] as const) {
    it(`the runtime ends where the machine says on all ${paths.length} ${kind} paths`, async () => {
      expect(paths.length).toBeGreaterThan(0);
      for (const path of paths) {
        const { result, dispatcher } = await followPath(store, starter, path);
        const label = path.events.map(shapeOf).join(' | ');
        expect(result.terminalStatus, label).toBe(expectedStatus(path.final.value));

        // The log holds exactly the path's events, and folds to the path's final state.
        const events = await readRunEvents(store, result.runId);
        expect(events.map(shapeOf), label).toEqual(path.events.map(shapeOf));
        const expected = foldPath(starter, path);
        expect(expected.value, label).toEqual(path.final.value);
        const { snapshot } = await loadRun(store, result.runId);
        expect(snapshot.value, label).toEqual(expected.value);
        for (const key of ['attempts', 'capCounts', 'escalations'] as const) {
          expect(snapshot.context[key], `${key}: ${label}`).toEqual(expected.context[key]);
        }
        expect(withoutApproval(snapshot.context.context), label).toEqual(withoutApproval(expected.context.context));

        // Every dispatch the machine asked for happened once, in order, and nothing more.
        const expectedDispatches = path.events.filter((event) => event.type === 'NodeStarted').length;
        expect(dispatcher.calls.length, label).toBe(expectedDispatches);
        expect((await verifyRun(store, result.runId)).ok).toBe(true);
      }
    });
  }
});

/**
 * The state the path's own events fold to. xstate/graph merges runs that reach
 * one serialized state, so `path.final` may carry another run's incidental
 * context (say, a different __lastError); the fold of this path's events is exact.
 */
function foldPath(starter: Starter, path: ModelPath): RunSnapshot {
  const events = path.events.map((event, index) => ({ ...event, seq: index + 1 }) as RunEvent);
  return foldRun(starter.machine, initialRunSnapshot(starter.machine), events);
}

/** The context without __lastApproval, whose approval id and time differ between model and runtime. */
function withoutApproval(context: Record<string, unknown>): Record<string, unknown> {
  const { __lastApproval: _ignored, ...rest } = context;
  return rest;
}
