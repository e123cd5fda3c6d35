/**
 * Parallel groups at run time (SPEC §9): concurrent dispatch, fail-fast and
 * wait-all, gates inside branches, the join, a failed group's own on_failure,
 * max_concurrency, and the machine refusing what it does not allow.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AgentDispatcher, DispatchRequest, NodeOutcome } from '../../../src/adapters/types.js';
import { FoldError, foldRun, initialRunSnapshot } from '../../../src/compiler/foldRun.js';
import type { RunSnapshot } from '../../../src/compiler/foldRun.js';
import type { RunEvent } from '../../../src/events/types.js';
import { executePlaybook } from '../../../src/runtime/executePlaybook.js';
import { approveGate, rejectGate, resumePlaybook } from '../../../src/runtime/gates.js';
import { loadRun } from '../../../src/runtime/loadRun.js';
import { getRun, readRunEvents, verifyRun } from '../../../src/runtime/queries.js';
import { recoverRun } from '../../../src/runtime/recoverRun.js';
import { compileSource } from '../../../src/runtime/playbookCache.js';
import type { EventStore } from '../../../src/store/eventStore.js';
import { playbookFrom, scriptedDispatcher, SECRET, tempStore } from '../../helpers/runtimeHarness.js';

let store: EventStore;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ store, cleanup } = await tempStore()));
afterEach(() => cleanup());

const host = { approvalSecret: SECRET };

/** Two branches of one node each, joined into `after`. */
function twoBranches(options: { failure?: string; groupFailure?: string; gateInA?: boolean; gateInB?: boolean; cap?: number } = {}) {
  const a = options.gateInA
    ? `[{ id: a1, type: agentic, skill: s }, { id: gate_a, type: approval, prompt: "A?", depends: [a1] }]`
    : `[{ id: a1, type: agentic, skill: s, on_failure: { max_iterations: 1 } }]`;
  const b = options.gateInB
    ? `[{ id: b1, type: agentic, skill: s }, { id: gate_b, type: approval, prompt: "B?", depends: [b1] }]`
    : `[{ id: b1, type: agentic, skill: s, on_failure: { max_iterations: 1 } }]`;
  return playbookFrom(`
version: "1.0"
name: fork
nodes:
  - { id: start, type: agentic, skill: s }
  - id: group
    type: parallel
    depends: [start]
    failure: ${options.failure ?? 'fail_fast'}
    on_failure: { max_iterations: ${options.cap ?? 1} }
    branches:
      - { id: A, nodes: ${a} }
      - { id: B, nodes: ${b} }
  - { id: after, type: agentic, skill: s, depends: [group] }
`);
}

/** A dispatcher whose listed nodes wait until released; every call is recorded with its signal. */
function heldDispatcher(held: readonly string[], fallback: AgentDispatcher = scriptedDispatcher()) {
  const waiting = new Map<string, { request: DispatchRequest; resolve: (outcome: NodeOutcome) => void }>();
  const arrivals: ((nodeId: string) => void)[] = [];
  const dispatcher: AgentDispatcher & { calls: DispatchRequest[] } = {
    calls: [],
    dispatch(request) {
      dispatcher.calls.push(request);
      if (!held.includes(request.nodeId)) return fallback.dispatch(request);
      return new Promise<NodeOutcome>((resolve) => {
        waiting.set(request.nodeId, { request, resolve });
        request.signal.addEventListener('abort', () => resolve({ status: 'failure', error: 'stopped by the abort signal' }));
        for (const notify of arrivals.splice(0)) notify(request.nodeId);
      });
    },
  };
  return {
    dispatcher,
    waiting,
    async whenDispatched(nodeId: string): Promise<DispatchRequest> {
      while (!waiting.has(nodeId)) await new Promise<string>((resolve) => arrivals.push(resolve));
      return waiting.get(nodeId)?.request as DispatchRequest;
    },
    release(nodeId: string, outcome: NodeOutcome = { status: 'success', output: { [nodeId]: 'done' } }) {
      waiting.get(nodeId)?.resolve(outcome);
    },
  };
}

const types = (events: readonly RunEvent[]) => events.map((event) => event.type);

describe('parallel groups: concurrency', () => {
  it('dispatches both branches at once: a barrier only both can open', async () => {
    let arrived = 0;
    let open: () => void = () => undefined;
    const barrier = new Promise<void>((resolve) => (open = resolve));
    const dispatcher: AgentDispatcher = {
      async dispatch(request) {
        if (request.nodeId === 'a1' || request.nodeId === 'b1') {
          arrived += 1;
          if (arrived === 2) open();
          await barrier; // a sequential runtime would wait here forever
        }
        return { status: 'success', output: { [request.nodeId]: 'done' } };
      },
    };
    const result = await executePlaybook({ store, ...twoBranches(), initialContext: {}, dispatcher, ...host });
    expect(result.terminalStatus).toBe('completed');
    expect(arrived).toBe(2);
  });

  it('joins in branch declaration order, whichever branch finishes first', async () => {
    const contexts: Record<string, unknown>[] = [];
    for (const first of ['a1', 'b1']) {
      const held = heldDispatcher(['a1', 'b1']);
      const running = executePlaybook({ store, ...twoBranches(), initialContext: {}, dispatcher: held.dispatcher, ...host });
      await held.whenDispatched('a1');
      await held.whenDispatched('b1');
      const second = first === 'a1' ? 'b1' : 'a1';
      held.release(first, { status: 'success', output: { shared: first, [first]: 1 } });
      await new Promise((resolve) => setTimeout(resolve, 5));
      held.release(second, { status: 'success', output: { shared: second, [second]: 1 } });
      const result = await running;
      expect(result.terminalStatus).toBe('completed');
      contexts.push(result.finalContext);
    }
    // B is declared after A, so B's value of a shared key wins both times.
    expect(contexts[0]).toEqual(contexts[1]);
    expect(contexts[0]).toMatchObject({ shared: 'b1', a1: 1, b1: 1 });
  });

  it('each branch sees the fork context plus its own outputs, never a sibling\'s', async () => {
    const seen: Record<string, Record<string, unknown>> = {};
    const source = playbookFrom(`
version: "1.0"
name: views
nodes:
  - { id: start, type: agentic, skill: s }
  - id: group
    type: parallel
    depends: [start]
    branches:
      - { id: A, nodes: [{ id: a1, type: agentic, skill: s }, { id: a2, type: agentic, skill: s, depends: [a1] }] }
      - { id: B, nodes: [{ id: b1, type: agentic, skill: s }, { id: b2, type: agentic, skill: s, depends: [b1] }] }
`);
    const dispatcher: AgentDispatcher = {
      dispatch(request) {
        seen[request.nodeId] = request.context;
        return { status: 'success', output: { [request.nodeId]: 'done' } };
      },
    };
    await executePlaybook({ store, ...source, initialContext: {}, dispatcher, ...host });
    expect(seen.a2).toEqual({ start: 'done', a1: 'done' });
    expect(seen.b2).toEqual({ start: 'done', b1: 'done' });
  });

  it('max_concurrency bounds the dispatches in flight in the group', async () => {
    const source = playbookFrom(`
version: "1.0"
name: bounded
nodes:
  - id: group
    type: parallel
    max_concurrency: 2
    branches:
      - { id: A, nodes: [{ id: a, type: agentic, skill: s }] }
      - { id: B, nodes: [{ id: b, type: agentic, skill: s }] }
      - { id: C, nodes: [{ id: c, type: agentic, skill: s }] }
      - { id: D, nodes: [{ id: d, type: agentic, skill: s }] }
`);
    let inFlight = 0;
    let peak = 0;
    const dispatcher: AgentDispatcher = {
      async dispatch(request) {
        inFlight += 1;
        peak = Math.max(peak, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 10));
        inFlight -= 1;
        return { status: 'success', output: { [request.nodeId]: 1 } };
      },
    };
    const result = await executePlaybook({ store, ...source, initialContext: {}, dispatcher, ...host });
    expect(result.terminalStatus).toBe('completed');
    expect(peak).toBe(2);
    const events = await readRunEvents(store, result.runId);
    let running = 0;
    for (const event of events) {
      if (event.type === 'NodeStarted' && event.data.nodeId !== 'group') running += 1;
      if ((event.type === 'NodeSucceeded' || event.type === 'NodeFailed') && event.data.nodeId !== 'group') running -= 1;
      expect(running).toBeLessThanOrEqual(2);
    }
  });
});

describe('parallel groups: failure modes', () => {
  it('fail_fast aborts the sibling\'s signal; its attempt ends aborted and changes nothing; the group follows its cap', async () => {
    const held = heldDispatcher(['b1'], scriptedDispatcher({ a1: [{ status: 'failure', error: 'a broke' }] }));
    const result = await executePlaybook({ store, ...twoBranches(), initialContext: {}, dispatcher: held.dispatcher, ...host });
    const b1 = held.dispatcher.calls.find((call) => call.nodeId === 'b1') as DispatchRequest;
    expect(b1.signal.aborted).toBe(true);
    expect(result.terminalStatus).toBe('exceeded_iteration_cap');
    expect(result.exceededNodeId).toBe('group');
    const events = await readRunEvents(store, result.runId);
    expect(events.find((event) => event.type === 'BranchFailed')?.data).toMatchObject({ branchId: 'A', nodeId: 'a1', cause: 'exceeded_iteration_cap' });
    expect(events.find((event) => event.type === 'NodeFailed' && event.data.nodeId === 'b1')?.data).toMatchObject({ aborted: true });
    expect(result.finalContext).not.toHaveProperty('b1');
    expect((await verifyRun(store, result.runId)).ok).toBe(true);
  });

  it('fail_fast cancels a sibling\'s pending gate; its token then gets E_APPROVAL_ALREADY_DECIDED', async () => {
    const held = heldDispatcher(['a1']);
    const running = executePlaybook({ store, ...twoBranches({ gateInB: true }), initialContext: {}, dispatcher: held.dispatcher, ...host });
    await held.whenDispatched('a1');
    // B reaches its gate while A is still working; then A fails.
    await new Promise((resolve) => setTimeout(resolve, 20));
    held.release('a1', { status: 'failure', error: 'a broke' });
    const result = await running;
    expect(result.terminalStatus).toBe('exceeded_iteration_cap');
    const events = await readRunEvents(store, result.runId);
    const paused = events.find((event) => event.type === 'RunPaused');
    expect(paused?.data).toMatchObject({ nodeId: 'gate_b' });
    expect(types(events)).toContain('ApprovalCancelled');
    expect((await store.listApprovals({ runId: result.runId }))[0]?.status).toBe('cancelled');
  });

  it('a cancelled gate\'s token is refused as already decided', async () => {
    // Open B's gate and get its token, then fail A from another call: the run is resumed by the approver of nothing.
    const source = twoBranches({ gateInB: true, gateInA: true });
    const first = await executePlaybook({ store, ...source, initialContext: {}, dispatcher: scriptedDispatcher(), ...host });
    expect(first.terminalStatus).toBe('pending_approval');
    expect(first.approvals?.map((gate) => gate.nodeId).sort()).toEqual(['gate_a', 'gate_b']);
    const tokenOf = (node: string) => first.approvals?.find((gate) => gate.nodeId === node)?.token as string;
    await rejectGate({ store, token: tokenOf('gate_a'), approver: 'ann', reason: 'no', ...host });
    // A failed its fail_fast group: the recovery that drives the run cancels B's gate.
    await recoverRun({ store, runId: first.runId, dispatcher: scriptedDispatcher(), ...host });
    await expect(approveGate({ store, token: tokenOf('gate_b'), approver: 'bob', ...host })).rejects.toMatchObject({ code: 'E_APPROVAL_ALREADY_DECIDED' });
    expect((await getRun(store, first.runId))?.status).toBe('failed');
  });

  it('wait_all runs every branch to its end, then fails the group', async () => {
    const dispatcher = scriptedDispatcher({ a1: [{ status: 'failure', error: 'a broke' }] });
    const result = await executePlaybook({ store, ...twoBranches({ failure: 'wait_all' }), initialContext: {}, dispatcher, ...host });
    expect(result.terminalStatus).toBe('exceeded_iteration_cap');
    expect(dispatcher.countOf('b1')).toBe(1);
    const events = await readRunEvents(store, result.runId);
    expect(events.find((event) => event.type === 'NodeSucceeded' && event.data.nodeId === 'b1')).toBeDefined();
    expect(events.some((event) => event.type === 'NodeFailed' && event.data.aborted === true)).toBe(false);
  });

  it('a failed group is retried in place from every entry with fresh caps', async () => {
    const dispatcher = scriptedDispatcher({ a1: [{ status: 'failure', error: 'first time' }, { status: 'success', output: { a1: 'ok' } }] });
    const result = await executePlaybook({ store, ...twoBranches({ failure: 'wait_all', cap: 2 }), initialContext: {}, dispatcher, ...host });
    expect(result.terminalStatus).toBe('completed');
    const events = await readRunEvents(store, result.runId);
    const groupStarts = events.filter((event) => event.type === 'NodeStarted' && event.data.nodeId === 'group');
    expect(groupStarts.map((event) => event.type === 'NodeStarted' && event.data.attempt)).toEqual([1, 2]);
    // a1 has a cap of 1: it runs again only because the group gave it a fresh count.
    expect(dispatcher.countOf('a1')).toBe(2);
    expect(dispatcher.countOf('b1')).toBe(2);
  });

  it('a failed group escalates to its inject_into like any node', async () => {
    const source = playbookFrom(`
version: "1.0"
name: escalating
nodes:
  - { id: prepare, type: agentic, skill: s }
  - id: group
    type: parallel
    depends: [prepare]
    on_failure: { max_iterations: 1, inject_into: prepare }
    branches:
      - { id: A, nodes: [{ id: a1, type: agentic, skill: s, on_failure: { max_iterations: 1 } }] }
      - { id: B, nodes: [{ id: b1, type: agentic, skill: s }] }
`);
    const dispatcher = scriptedDispatcher({ a1: [{ status: 'failure', error: 'needs rework' }, { status: 'success', output: {} }] });
    const result = await executePlaybook({ store, ...source, initialContext: {}, dispatcher, ...host });
    expect(result.terminalStatus).toBe('completed');
    expect(dispatcher.countOf('prepare')).toBe(2);
    const events = await readRunEvents(store, result.runId);
    expect(events.find((event) => event.type === 'NodeEscalated')?.data).toMatchObject({ from: 'group', to: 'prepare' });
    expect(dispatcher.calls.findLast((call) => call.nodeId === 'prepare')?.context).toMatchObject({ __lastFailedNode: 'group' });
  });
});

describe('parallel groups: gates in branches', () => {
  it('a gate in A waits while B completes; approve and resume A completes the run', async () => {
    const result = await executePlaybook({ store, ...twoBranches({ gateInA: true }), initialContext: {}, dispatcher: scriptedDispatcher(), ...host });
    expect(result.terminalStatus).toBe('pending_approval');
    const row = await getRun(store, result.runId);
    expect(row?.status).toBe('paused');
    expect(row?.activeNodes).toEqual([{ nodeId: 'group', phase: 'running' }, { nodeId: 'gate_a', phase: 'paused' }]);
    expect(result.finalContext).not.toHaveProperty('b1'); // B's output waits for the join
    const events = await readRunEvents(store, result.runId);
    expect(events.some((event) => event.type === 'NodeSucceeded' && event.data.nodeId === 'b1')).toBe(true);
    await approveGate({ store, token: result.approvalToken as string, approver: 'ann', ...host });
    const resumed = await resumePlaybook({ store, approvalToken: result.approvalToken as string, dispatcher: scriptedDispatcher(), ...host });
    expect(resumed.terminalStatus).toBe('completed');
    expect(resumed.finalContext).toMatchObject({ a1: 'done', b1: 'done', after: 'done' });
  });

  it.each([['A then B'], ['B then A']])('two gates pending at once, each resumed exactly once by its own token (%s)', async (order) => {
    const first = await executePlaybook({ store, ...twoBranches({ gateInA: true, gateInB: true }), initialContext: {}, dispatcher: scriptedDispatcher(), ...host });
    expect(first.terminalStatus).toBe('pending_approval');
    const tokens = Object.fromEntries((first.approvals ?? []).map((gate) => [gate.nodeId, gate.token as string]));
    expect(Object.keys(tokens).sort()).toEqual(['gate_a', 'gate_b']);
    expect(first.approvalToken).toBe(first.approvals?.[0]?.token);
    const sequence = order === 'A then B' ? ['gate_a', 'gate_b'] : ['gate_b', 'gate_a'];
    const dispatcher = scriptedDispatcher();
    const [one, two] = sequence as [string, string];
    await approveGate({ store, token: tokens[one] as string, approver: 'ann', ...host });
    const middle = await resumePlaybook({ store, approvalToken: tokens[one] as string, dispatcher, ...host });
    expect(middle.terminalStatus).toBe('pending_approval');
    expect(middle.approvals?.map((gate) => gate.nodeId)).toEqual([two]);
    await expect(resumePlaybook({ store, approvalToken: tokens[one] as string, dispatcher, ...host })).rejects.toMatchObject({ code: 'E_PLAYBOOK_RESUME_BLOCKED' });
    await approveGate({ store, token: tokens[two] as string, approver: 'bob', ...host });
    const last = await resumePlaybook({ store, approvalToken: tokens[two] as string, dispatcher, ...host });
    expect(last.terminalStatus).toBe('completed');
    expect(dispatcher.countOf('after')).toBe(1);
    const events = await readRunEvents(store, first.runId);
    expect(events.filter((event) => event.type === 'RunResumed')).toHaveLength(2);
    expect((await verifyRun(store, first.runId)).ok).toBe(true);
  });

  it('an approved gate nobody resumed reads as approved and is runnable: recoverRun resumes it', async () => {
    const result = await executePlaybook({ store, ...twoBranches({ gateInA: true }), initialContext: {}, dispatcher: scriptedDispatcher(), ...host });
    await approveGate({ store, token: result.approvalToken as string, approver: 'ann', ...host });
    const row = await getRun(store, result.runId);
    expect(row?.status).toBe('running');
    expect(row?.activeNodes).toContainEqual({ nodeId: 'gate_a', phase: 'approved' });
    const recovered = await recoverRun({ store, runId: result.runId, dispatcher: scriptedDispatcher(), ...host });
    expect(recovered.terminalStatus).toBe('completed');
  });

  it('deciding a gate reads its state from the log, not from a stale approvals row', async () => {
    const result = await executePlaybook({ store, ...twoBranches({ gateInA: true }), initialContext: {}, dispatcher: scriptedDispatcher(), ...host });
    await approveGate({ store, token: result.approvalToken as string, approver: 'ann', ...host });
    // Put the projection back to `pending`, as a crash between two writers might leave it.
    const [gate] = await store.listApprovals({ runId: result.runId });
    const run = await store.getRun(result.runId);
    await store.replaceProjections(result.runId, run, [{ ...gate!, status: 'pending', approver: null, decidedAt: null }]);
    await expect(approveGate({ store, token: result.approvalToken as string, approver: 'bob', ...host })).rejects.toMatchObject({ code: 'E_APPROVAL_ALREADY_DECIDED' });
  });
});

describe('the machine refuses what it does not allow', () => {
  const source = twoBranches().source;
  const { machine } = compileSource(source);
  const at = '2026-01-01T00:00:00.000Z';
  type Draft = { type: string; data: Record<string, unknown> };
  const ev = (type: string, data: Record<string, unknown>): Draft => ({ type, data });
  /** Folds drafts onto a snapshot, numbering them after it. */
  const fold = (snapshot: RunSnapshot, drafts: Draft[]) =>
    foldRun(machine, snapshot, drafts.map((draft, i) => ({ runId: 'r', seq: snapshot.context.version + i + 1, globalSeq: 0, hash: '', at, ...draft }) as RunEvent));
  const start = () =>
    fold(initialRunSnapshot(machine), [
      ev('RunStarted', { playbookName: 'fork', sourceHash: 'x', source, context: {}, maxIterationsDefault: 3 }),
      ev('NodeStarted', { nodeId: 'start', attempt: 1 }),
    ]);

  it('RunFailed exceeded_iteration_cap for a node that still has attempts', () => {
    const s = fold(start(), [ev('NodeFailed', { nodeId: 'start', attempt: 1, error: 'x' })]);
    expect(() => fold(s, [ev('RunFailed', { nodeId: 'start', cause: 'exceeded_iteration_cap', error: 'x' })])).toThrow(FoldError);
  });

  it('RunFailed naming a node that never ran, or a cause its state does not name', () => {
    const s = start();
    expect(() => fold(s, [ev('RunFailed', { nodeId: 'after', cause: 'no_branch', error: 'x' })])).toThrow(FoldError);
    expect(() => fold(s, [ev('RunFailed', { nodeId: 'start', cause: 'ambiguous_branch', error: 'x' })])).toThrow(FoldError);
    // internal_error may come from anywhere.
    expect(fold(s, [ev('RunFailed', { nodeId: 'start', cause: 'internal_error', error: 'x' })]).value).toBe('failed');
  });

  it('a join whose output is not the branches\' outputs in order, and work started in a failing fail_fast group', () => {
    let s = fold(start(), [
      ev('NodeSucceeded', { nodeId: 'start', attempt: 1, output: {} }),
      ev('NodeStarted', { nodeId: 'group', attempt: 1 }),
      ev('NodeStarted', { nodeId: 'a1', attempt: 1 }),
      ev('NodeSucceeded', { nodeId: 'a1', attempt: 1, output: { a1: 1 } }),
      ev('NodeStarted', { nodeId: 'b1', attempt: 1 }),
    ]);
    const beforeB = s;
    s = fold(s, [ev('NodeSucceeded', { nodeId: 'b1', attempt: 1, output: { b1: 2 } })]);
    expect(() => fold(s, [ev('NodeSucceeded', { nodeId: 'group', attempt: 1, output: { a1: 1 } })])).toThrow(FoldError);
    expect(fold(s, [ev('NodeSucceeded', { nodeId: 'group', attempt: 1, output: { a1: 1, b1: 2 } })]).value).toEqual({ active: { after: 'ready' } });
    // An aborted failure is accepted only once a sibling branch failed.
    expect(() => fold(beforeB, [ev('NodeFailed', { nodeId: 'b1', attempt: 1, error: 'x', aborted: true })])).toThrow(FoldError);
    // The group cannot fail while no branch did.
    expect(() => fold(s, [ev('NodeFailed', { nodeId: 'group', attempt: 1, error: 'x' })])).toThrow(FoldError);
  });

  it('a branch failure with the wrong branch id', async () => {
    const s = fold(start(), [
      ev('NodeSucceeded', { nodeId: 'start', attempt: 1, output: {} }),
      ev('NodeStarted', { nodeId: 'group', attempt: 1 }),
      ev('NodeStarted', { nodeId: 'a1', attempt: 1 }),
      ev('NodeFailed', { nodeId: 'a1', attempt: 1, error: 'x' }),
    ]);
    expect(() => fold(s, [ev('BranchFailed', { groupId: 'group', branchId: 'B', nodeId: 'a1', cause: 'exceeded_iteration_cap', error: 'x' })])).toThrow(FoldError);
    expect(fold(s, [ev('BranchFailed', { groupId: 'group', branchId: 'A', nodeId: 'a1', cause: 'exceeded_iteration_cap', error: 'x' })]).value).toMatchObject({
      active: { group: { running: { A: 'failed' } } },
    });
  });
});

describe('loaded runs', () => {
  it('a run\'s fold after a parallel run equals what the runtime reports', async () => {
    const result = await executePlaybook({ store, ...twoBranches(), initialContext: {}, dispatcher: scriptedDispatcher(), ...host });
    const { snapshot } = await loadRun(store, result.runId);
    expect(snapshot.context.context).toEqual(result.finalContext);
    expect(snapshot.value).toBe('completed');
  });
});
