/**
 * Model-based tests of the parallel starter (review.cantbook): xstate/graph
 * walks its machine (branches interleaved, fail-fast, the gate inside a
 * branch, the join), and the real runtime follows every shortest path to each
 * resting state on a SQLite file.
 *
 * The runtime dispatches branches concurrently, so the test sequences it: a
 * dispatch is answered only when its result is the next environment event of
 * the path, and only after the runtime recorded the one before. An attempt the
 * path aborts is never answered: the runtime must abort its signal itself.
 * Gates are decided when the runtime rests (nothing running), as a human would.
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
import { capViolations, expectedStatus, isRestingState, loadStarter, modelPaths } from './starterModel.js';
import type { ModelPath, Starter } from './starterModel.js';

type Choice =
  | { kind: 'outcome'; key: string; outcome: NodeOutcome }
  | { kind: 'decision'; nodeId: string; approve: boolean };

const keyOf = (nodeId: string, attempt: number) => `${nodeId}#${attempt}`;

/** The environment's part of a path, in path order: answers to dispatches (not aborted ones) and human decisions. */
function choicesOf(starter: Starter, path: ModelPath): Choice[] {
  return path.events.flatMap((event): Choice[] => {
    if (event.type === 'NodeSucceeded' && starter.model.nodes.get(event.data.nodeId)?.type !== 'parallel') {
      return [{ kind: 'outcome', key: keyOf(event.data.nodeId, event.data.attempt), outcome: { status: 'success', output: event.data.output } }];
    }
    if (event.type === 'NodeFailed' && event.data.aborted !== true && starter.model.nodes.get(event.data.nodeId)?.type !== 'parallel') {
      return [{ kind: 'outcome', key: keyOf(event.data.nodeId, event.data.attempt), outcome: { status: 'failure', error: event.data.error } }];
    }
    if (event.type === 'ApprovalGranted' || event.type === 'ApprovalRejected') return [{ kind: 'decision', nodeId: event.data.nodeId, approve: event.type === 'ApprovalGranted' }];
    return [];
  });
}

/** Per node, the events about it in order: what must agree when branches interleave differently. */
function perNode(events: readonly RunEvent[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const event of events) {
    const d = event.data as Record<string, unknown>;
    const node = (d.nodeId ?? d.from ?? '-') as string;
    const fields = ['attempt', 'to', 'cause', 'aborted'].filter((key) => d[key] !== undefined).map((key) => `${key}=${String(d[key])}`);
    if (event.type === 'NodeSucceeded') fields.push(`output=${JSON.stringify(withoutApproval(d.output as Record<string, unknown>))}`);
    (out[node] ??= []).push([event.type, ...fields].join(' '));
  }
  return out;
}

function withoutApproval(context: Record<string, unknown>): Record<string, unknown> {
  const { __lastApproval: _ignored, ...rest } = context;
  return rest;
}

/** A dispatcher whose answers the test releases one at a time; aborted dispatches answer when their signal fires. */
function sequencedDispatcher() {
  const waiting = new Map<string, (outcome: NodeOutcome) => void>();
  const calls: DispatchRequest[] = [];
  let onDispatch: (() => void) | undefined;
  const dispatcher: AgentDispatcher = {
    dispatch(request) {
      calls.push(request);
      return new Promise<NodeOutcome>((resolve) => {
        waiting.set(keyOf(request.nodeId, request.iteration), resolve);
        request.signal.addEventListener('abort', () => resolve({ status: 'failure', error: 'aborted by the runtime' }));
        onDispatch?.();
      });
    },
  };
  return {
    dispatcher,
    calls,
    /** Answers `key` once it has been dispatched, or gives up when `stopped` settles first. */
    async answer(key: string, outcome: NodeOutcome, stopped: Promise<unknown>): Promise<boolean> {
      let done = false;
      void stopped.then(() => (done = true), () => (done = true));
      while (!waiting.has(key)) {
        if (done) return false;
        await Promise.race([new Promise<void>((resolve) => (onDispatch = resolve)), stopped.catch(() => undefined), new Promise((r) => setTimeout(r, 5))]);
      }
      const resolve = waiting.get(key) as (outcome: NodeOutcome) => void;
      waiting.delete(key);
      resolve(outcome);
      return true;
    },
  };
}

async function followPath(store: EventStore, starter: Starter, path: ModelPath): Promise<{ result: PlaybookResult; dispatches: number }> {
  const queue = choicesOf(starter, path);
  const seq = sequencedDispatcher();
  const clock = manualClock();
  const recorded = new Set<string>();
  let onRecorded: (() => void) | undefined;
  const host = {
    dispatcher: seq.dispatcher,
    approvalSecret: SECRET,
    now: clock.now,
    onEvents: (events: readonly RunEvent[]) => {
      for (const event of events) if (event.type === 'NodeSucceeded' || event.type === 'NodeFailed') recorded.add(keyOf(event.data.nodeId, event.data.attempt));
      onRecorded?.();
    },
  };
  let running: Promise<PlaybookResult> = executePlaybook({ store, playbook: starter.definition, source: starter.source, initialContext: starter.initialContext, ...host });
  for (const choice of queue) {
    if (choice.kind === 'outcome') {
      const answered = await seq.answer(choice.key, choice.outcome, running);
      expect(answered, `the runtime never dispatched ${choice.key}`).toBe(true);
      while (!recorded.has(choice.key)) await Promise.race([new Promise<void>((resolve) => (onRecorded = resolve)), running.then(() => undefined)]);
      continue;
    }
    const result = await running;
    expect(result.terminalStatus).toBe('pending_approval');
    const gate = result.approvals?.find((g) => g.nodeId === choice.nodeId);
    expect(gate?.token, `no token for '${choice.nodeId}'`).toBeDefined();
    const token = gate?.token as string;
    clock.advance(1000);
    if (choice.approve) {
      await approveGate({ store, token, approver: 'model', approvalSecret: SECRET, now: clock.now });
      running = resumePlaybook({ store, approvalToken: token, ...host });
    } else {
      await rejectGate({ store, token, approver: 'model', approvalSecret: SECRET, now: clock.now });
      running = (async () => {
        const { snapshot } = await loadRun(store, result.runId);
        if (typeof snapshot.value === 'string') return { ...result, terminalStatus: snapshot.value as PlaybookResult['terminalStatus'] };
        throw new Error('a rejection in this starter ends the run at once');
      })();
    }
  }
  return { result: await running, dispatches: seq.calls.length };
}

describe('model-based: review.cantbook (parallel group)', () => {
  const starter = loadStarter('review.cantbook', { change: 'PR-7' });
  // Humans decide only when the runtime rests; everything else may interleave freely.
  const bounds = { prune: (snapshot: RunSnapshot, proposed: RunEvent) => (proposed.type === 'ApprovalGranted' || proposed.type === 'ApprovalRejected') && !isRestingState(snapshot, starter) };
  const paths = modelPaths(starter, 'shortest', bounds);
  let store: EventStore;
  let cleanup: () => Promise<void>;
  beforeAll(async () => ({ store, cleanup } = await tempStore()));
  afterAll(() => cleanup());

  it('the traversal reaches every kind of ending, fail-fast aborts and cancelled gates included', () => {
    const endings = new Set(paths.map((path) => expectedStatus(path.final.value)));
    // Every failed branch fails the group, whose cap of 1 ends the run exceeded_iteration_cap.
    expect([...endings].sort()).toEqual(['completed', 'exceeded_iteration_cap', 'pending_approval']);
    const types = new Set(paths.flatMap((path) => path.events.map((event) => event.type)));
    for (const type of ['BranchFailed', 'ApprovalCancelled', 'RunResumed']) expect(types).toContain(type);
    expect(paths.some((path) => path.events.some((event) => event.type === 'NodeFailed' && event.data.aborted === true))).toBe(true);
    for (const path of paths) expect(capViolations(starter, path.events)).toEqual([]);
  });

  it('the runtime ends where the machine says on every shortest path, node by node', async () => {
    expect(paths.length).toBeGreaterThan(20);
    for (const path of paths) {
      const { result, dispatches } = await followPath(store, starter, path);
      const label = path.events.map((event) => `${event.type}:${(event.data as { nodeId?: string }).nodeId ?? ''}`).join(' | ');
      expect(result.terminalStatus, label).toBe(expectedStatus(path.final.value));
      const events = await readRunEvents(store, result.runId);
      expect(perNode(events), label).toEqual(perNode(path.events));
      const expected = foldRun(starter.machine, initialRunSnapshot(starter.machine), path.events.map((event, index) => ({ ...event, seq: index + 1 }) as RunEvent));
      const { snapshot } = await loadRun(store, result.runId);
      expect(snapshot.value, label).toEqual(expected.value);
      expect(snapshot.context.attempts, label).toEqual(expected.context.attempts);
      expect(withoutApproval(snapshot.context.context), label).toEqual(withoutApproval(expected.context.context));
      expect(dispatches, label).toBe(path.events.filter((event) => event.type === 'NodeStarted' && starter.model.nodes.get(event.data.nodeId)?.type !== 'parallel').length);
      expect((await verifyRun(store, result.runId)).ok, label).toBe(true);
    }
  }, 120_000);
});
