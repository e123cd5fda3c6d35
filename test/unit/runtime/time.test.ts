/**
 * Time (SPEC §10, §11) with an injected clock: backoff recorded and honoured
 * across a restart, a gate that expires with a worker running and nobody
 * touching it, attempt timeouts, `retryable: false`, cancellation, redrive,
 * and a lease taken over. No test sleeps to see a timer fire: the clock moves
 * when the test says so (test/helpers/testClock.ts).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AgentDispatcher, DispatchRequest, NodeOutcome } from '../../../src/adapters/types.js';
import { FoldError, foldRun, initialRunSnapshot } from '../../../src/compiler/foldRun.js';
import type { RunEvent } from '../../../src/events/types.js';
import { executePlaybook, startRun } from '../../../src/runtime/executePlaybook.js';
import { approveGate, rejectGate } from '../../../src/runtime/gates.js';
import { loadRun } from '../../../src/runtime/loadRun.js';
import { getPendingApprovals, getRun, readRunEvents, verifyRun } from '../../../src/runtime/queries.js';
import { recoverRun } from '../../../src/runtime/recoverRun.js';
import { cancelRun, retryRun } from '../../../src/runtime/runControl.js';
import { createWorker } from '../../../src/runtime/worker.js';
import type { EventStore } from '../../../src/store/eventStore.js';
import { CantbookError } from '../../../src/errors.js';
import type { StoreKind } from '../../helpers/testStores.js';
import { failure, playbookFrom, scriptedDispatcher, success, tempStore } from '../../helpers/runtimeHarness.js';
import { testClock, until } from '../../helpers/testClock.js';

let store: EventStore;
let reopen: () => Promise<EventStore>;
let open: () => Promise<EventStore>;
let kind: StoreKind;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ store, kind, open, reopen, cleanup } = await tempStore()));
afterEach(() => cleanup());

const types = async (runId: string) => (await readRunEvents(store, runId)).map((event) => event.type);
const eventsOf = <T extends RunEvent['type']>(events: readonly RunEvent[], type: T) => events.filter((event): event is Extract<RunEvent, { type: T }> => event.type === type);

/** A dispatcher whose calls stay open until their signal aborts (or the test answers them). */
function hangingDispatcher() {
  const calls: { request: DispatchRequest; abortedWith?: unknown; answer: (outcome: NodeOutcome) => void }[] = [];
  const dispatcher: AgentDispatcher = {
    dispatch(request) {
      return new Promise<NodeOutcome>((resolve) => {
        const call: (typeof calls)[number] = { request: { ...request }, answer: resolve };
        calls.push(call);
        request.signal.addEventListener('abort', () => {
          call.abortedWith = request.signal.reason;
          resolve({ status: 'failure', error: 'stopped on abort' });
        });
      });
    },
  };
  return { dispatcher, calls };
}

describe('backoff (on_failure.backoff)', () => {
  const flaky = playbookFrom(`
version: "1.0"
name: flaky
nodes:
  - id: fetch
    type: agentic
    skill: s
    on_failure: { max_iterations: 3, backoff: { initial: 10s, factor: 3, max: 20s } }
  - { id: after, type: agentic, skill: s, depends: [fetch] }
`);

  it('records each wait, honours it after a restart, and never starts a retry early', async () => {
    const clock = testClock();
    const script = { fetch: [failure('503'), failure('503 again'), success({ fetched: true })] };
    const { runId } = await startRun({ store, ...flaky, clock });

    // A worker runs attempt 1; the retry waits 10 s, so the worker hands the run back and is idle.
    const first = scriptedDispatcher(script);
    await createWorker({ store, dispatcher: first, clock }).runUntilIdle();
    let events = await readRunEvents(store, runId);
    const [wait2] = eventsOf(events, 'NodeRetryScheduled');
    expect(wait2?.data).toEqual({ nodeId: 'fetch', attempt: 2, dueAt: new Date(Date.parse(wait2?.at as string) + 10_000).toISOString() });
    expect((await getRun(store, runId))?.wakeAt).toBe(wait2?.data.dueAt);
    await clock.advance(9_000);
    await createWorker({ store, dispatcher: first, clock }).runUntilIdle();
    expect(first.calls.map((call) => call.iteration)).toEqual([1]);

    // A restart: another store connection and another worker. It waits only for the remaining second.
    store = await reopen();
    const second = scriptedDispatcher({ fetch: script.fetch.slice(1) });
    await clock.advance(1_000);
    await createWorker({ store, dispatcher: second, clock }).runUntilIdle();
    events = await readRunEvents(store, runId);
    const wait3 = eventsOf(events, 'NodeRetryScheduled')[1];
    // Attempt 3 waits min(max 20 s, 10 s * 3^1 = 30 s) = 20 s.
    expect(wait3?.data).toEqual({ nodeId: 'fetch', attempt: 3, dueAt: new Date(Date.parse(wait3?.at as string) + 20_000).toISOString() });
    await clock.advance(19_999);
    await createWorker({ store, dispatcher: second, clock }).runUntilIdle();
    expect(second.calls.map((call) => `${call.nodeId}#${call.iteration}`)).toEqual(['fetch#2']);
    await clock.advance(1);
    await createWorker({ store, dispatcher: second, clock }).runUntilIdle();
    expect(second.calls.map((call) => `${call.nodeId}#${call.iteration}`)).toEqual(['fetch#2', 'fetch#3', 'after#1']);

    events = await readRunEvents(store, runId);
    expect(events.at(-1)?.type).toBe('RunCompleted');
    for (const wait of eventsOf(events, 'NodeRetryScheduled')) {
      const start = eventsOf(events, 'NodeStarted').find((event) => event.data.nodeId === wait.data.nodeId && event.data.attempt === wait.data.attempt);
      expect(Date.parse(start?.at as string)).toBeGreaterThanOrEqual(Date.parse(wait.data.dueAt));
    }
    expect((await verifyRun(store, runId)).ok).toBe(true);
  });

  it('the machine refuses a start before the due time, and a due time that is not the backoff', async () => {
    const clock = testClock();
    const { runId } = await startRun({ store, ...flaky, clock });
    await createWorker({ store, dispatcher: scriptedDispatcher({ fetch: [failure()] }), clock }).runUntilIdle();
    const { playbook, events } = await loadRun(store, runId);
    const wait = eventsOf(events, 'NodeRetryScheduled')[0] as Extract<RunEvent, { type: 'NodeRetryScheduled' }>;
    const fold = (list: RunEvent[]) => foldRun(playbook.machine, initialRunSnapshot(playbook.machine), list);
    const early = { type: 'NodeStarted', runId, seq: wait.seq + 1, globalSeq: 0, hash: '', at: new Date(Date.parse(wait.data.dueAt) - 1).toISOString(), data: { nodeId: 'fetch', attempt: 2 } } as RunEvent;
    expect(() => fold([...events, early])).toThrow(FoldError);
    expect(() => fold([...events, { ...early, at: wait.data.dueAt }])).not.toThrow();
    const shortened = events.map((event) => (event === wait ? { ...wait, data: { ...wait.data, dueAt: new Date(Date.parse(wait.at) + 5_000).toISOString() } } : event));
    expect(() => fold(shortened)).toThrow(FoldError);
  });

  it('an inline driver waits the backoff itself and goes on', async () => {
    const clock = testClock();
    const dispatcher = scriptedDispatcher({ fetch: [failure(), success()] });
    const running = executePlaybook({ store, ...flaky, clock, dispatcher });
    await until(() => dispatcher.calls.length === 1 && clock.pending > 0, 'attempt 1 failed');
    await clock.advance(9_999);
    expect(dispatcher.calls).toHaveLength(1);
    await clock.advance(1);
    expect((await running).terminalStatus).toBe('completed');
    expect(dispatcher.calls.map((call) => `${call.nodeId}#${call.iteration}`)).toEqual(['fetch#1', 'fetch#2', 'after#1']);
  });
});

describe('gate expiry (SPEC §5.5)', () => {
  const gated = playbookFrom(`
version: "1.0"
name: gated
nodes:
  - { id: build, type: agentic, skill: s }
  - { id: gate, type: approval, prompt: ship?, timeout: 2h, depends: [build] }
  - { id: ship, type: agentic, skill: s, depends: [gate] }
`);

  it('expires at its due time with a worker running and nobody touching it; no query lists it as pending after', async () => {
    const clock = testClock();
    const paused = await executePlaybook({ store, ...gated, clock, dispatcher: scriptedDispatcher() });
    expect(paused.terminalStatus).toBe('pending_approval');
    const worker = createWorker({ store, dispatcher: scriptedDispatcher(), clock });
    worker.start();
    try {
      await clock.advance(2 * 3600_000 - 1);
      expect((await getRun(store, paused.runId))?.status).toBe('paused');
      expect(await getPendingApprovals(store, { now: clock.now })).toHaveLength(1);
      await clock.advance(1);
      await until(async () => (await getRun(store, paused.runId))?.status === 'failed', 'the worker expired the gate');
    } finally {
      await worker.stop({ graceMs: 0 });
    }
    const events = await readRunEvents(store, paused.runId);
    expect(events.slice(-2).map((event) => event.type)).toEqual(['ApprovalExpired', 'RunFailed']);
    expect(events.at(-1)?.data).toMatchObject({ cause: 'approval_expired', nodeId: 'gate', approvalId: paused.approvalId });
    expect(events.at(-2)?.at).toBe(new Date(Date.parse(events.find((event) => event.type === 'RunPaused')?.at as string) + 2 * 3600_000).toISOString());
    expect(await getPendingApprovals(store, { now: clock.now })).toEqual([]);
    expect(await store.listApprovals({ status: 'pending' })).toEqual([]);
    expect((await store.getApproval(paused.approvalId as string))?.status).toBe('expired');
    expect((await verifyRun(store, paused.runId)).ok).toBe(true);
  });

  it('a gate past its expiry is not listed as pending even before anyone recorded the expiry', async () => {
    const clock = testClock();
    await executePlaybook({ store, ...gated, clock, dispatcher: scriptedDispatcher() });
    await clock.advance(2 * 3600_000);
    expect(await getPendingApprovals(store, { now: clock.now })).toEqual([]);
  });
});

describe('attempt timeouts', () => {
  it('an agent past its timeout sees its signal aborted and the attempt ends timedOut; the retry rule applies', async () => {
    const clock = testClock();
    const slow = playbookFrom(`
version: "1.0"
name: slow
nodes:
  - { id: think, type: agentic, skill: s, timeout: 5m, on_failure: { max_iterations: 2 } }
`);
    const { dispatcher, calls } = hangingDispatcher();
    const running = executePlaybook({ store, ...slow, clock, dispatcher });
    await until(() => calls.length === 1, 'attempt 1 dispatched');
    await clock.advance(5 * 60_000 - 1);
    expect(calls[0]?.abortedWith).toBeUndefined();
    await clock.advance(1);
    await until(() => calls.length === 2, 'attempt 2 dispatched');
    expect(String((calls[0]?.abortedWith as Error).message)).toContain('timed out after 300 s');
    await clock.advance(5 * 60_000);
    const result = await running;
    expect(result.terminalStatus).toBe('exceeded_iteration_cap');
    const failures = eventsOf(await readRunEvents(store, result.runId), 'NodeFailed');
    expect(failures.map((event) => event.data)).toEqual([
      { nodeId: 'think', attempt: 1, error: "node 'think' timed out after 300 s", timedOut: true },
      { nodeId: 'think', attempt: 2, error: "node 'think' timed out after 300 s", timedOut: true },
    ]);
  });
});

describe('retryable: false', () => {
  it('is not retried in place: the node fails for good (not_retryable)', async () => {
    const once = playbookFrom(`
version: "1.0"
name: once
nodes:
  - { id: check, type: agentic, skill: s, on_failure: { max_iterations: 3 } }
`);
    const dispatcher = scriptedDispatcher({ check: [{ status: 'failure', error: 'the input is malformed', retryable: false }] });
    const result = await executePlaybook({ store, ...once, dispatcher });
    expect(result).toMatchObject({ terminalStatus: 'failed', failedNodeId: 'check', error: { cause: 'not_retryable', nodeId: 'check' } });
    expect(dispatcher.calls).toHaveLength(1);
    expect(eventsOf(await readRunEvents(store, result.runId), 'NodeFailed')[0]?.data).toEqual({ nodeId: 'check', attempt: 1, error: 'the input is malformed', retryable: false });
  });

  it('still escalates to inject_into (escalation is not a retry in place)', async () => {
    const loop = playbookFrom(`
version: "1.0"
name: loop
nodes:
  - { id: implement, type: agentic, skill: s }
  - { id: test, type: agentic, skill: s, depends: [implement], on_failure: { inject_into: implement, max_iterations: 1 } }
`);
    const dispatcher = scriptedDispatcher({ test: [{ status: 'failure', error: 'red', retryable: false }, success()] });
    const result = await executePlaybook({ store, ...loop, dispatcher });
    expect(result.terminalStatus).toBe('completed');
    expect(dispatcher.calls.map((call) => call.nodeId)).toEqual(['implement', 'test', 'implement', 'test']);
  });
});

describe('cancelRun', () => {
  const fanOut = playbookFrom(`
version: "1.0"
name: fan
nodes:
  - id: both
    type: parallel
    failure: wait_all
    branches:
      - { id: work, nodes: [{ id: slow, type: agentic, skill: s }] }
      - { id: human, nodes: [{ id: gate, type: approval, prompt: go? }] }
`);

  it('aborts the attempts in flight at once, cancels the pending gates, and records nothing after RunCancelled', async () => {
    const { dispatcher, calls } = hangingDispatcher();
    const running = executePlaybook({ store, ...fanOut, dispatcher });
    await until(async () => calls.length === 1 && (await store.listApprovals({ status: 'pending' })).length === 1, 'slow dispatched and the gate open');
    const runId = calls[0]?.request.runId as string;
    const cancelled = await cancelRun({ store, runId, reason: 'superseded', by: 'alice' });
    expect(cancelled.terminalStatus).toBe('cancelled');
    const result = await running;
    expect(result).toMatchObject({ terminalStatus: 'cancelled', error: { cause: 'cancelled', message: 'superseded' } });
    expect(String((calls[0]?.abortedWith as Error).message)).toContain('the run ended');
    expect((await types(runId)).at(-1)).toBe('RunCancelled');
    expect((await store.listApprovals({ runId })).map((gate) => gate.status)).toEqual(['cancelled']);
    expect((await verifyRun(store, runId)).ok).toBe(true);
  });

  it('refuses a run that already ended with E_RUN_FINISHED, and a blank reason with E_USAGE', async () => {
    const done = await executePlaybook({ store, ...playbookFrom('version: "1.0"\nname: one\nnodes:\n  - { id: a, type: agentic, skill: s }\n'), dispatcher: scriptedDispatcher() });
    await expect(cancelRun({ store, runId: done.runId, reason: 'late' })).rejects.toMatchObject({ code: 'E_RUN_FINISHED' });
    await expect(cancelRun({ store, runId: done.runId, reason: '  ' })).rejects.toMatchObject({ code: 'E_USAGE' });
    await expect(cancelRun({ store, runId: 'nope', reason: 'x' })).rejects.toMatchObject({ code: 'E_RUN_NOT_FOUND' });
  });
});

describe('retryRun (redrive)', () => {
  it('continues from the failed node with fresh attempts and never re-runs a success', async () => {
    const chain = playbookFrom(`
version: "1.0"
name: chain
nodes:
  - { id: a, type: agentic, skill: s }
  - { id: b, type: agentic, skill: s, depends: [a], on_failure: { max_iterations: 2 } }
  - { id: c, type: agentic, skill: s, depends: [b] }
`);
    const failed = await executePlaybook({ store, ...chain, dispatcher: scriptedDispatcher({ b: [failure('down')] }) });
    expect(failed).toMatchObject({ terminalStatus: 'exceeded_iteration_cap', exceededNodeId: 'b' });
    const dispatcher = scriptedDispatcher({ b: [failure('still down'), success({ b: 'up' })] });
    const result = await retryRun({ store, runId: failed.runId, by: 'alice', reason: 'the API is back', dispatcher });
    expect(result.terminalStatus).toBe('completed');
    // b had used both attempts of its cap; the redrive gives it two fresh ones (attempt ordinals go on: 3, 4).
    expect(dispatcher.calls.map((call) => `${call.nodeId}#${call.iteration}`)).toEqual(['b#3', 'b#4', 'c#1']);
    const events = await readRunEvents(store, failed.runId);
    expect(eventsOf(events, 'RunRetried').map((event) => event.data)).toEqual([{ fromNode: 'b', by: 'alice', reason: 'the API is back' }]);
    expect(result.finalContext).toMatchObject({ a: 'done', b: 'up', c: 'done' });
    expect((await verifyRun(store, failed.runId)).ok).toBe(true);
    await expect(retryRun({ store, runId: failed.runId, dispatcher })).rejects.toMatchObject({ code: 'E_RUN_NOT_RETRYABLE' });
  });

  it('a failed group runs again only what did not succeed: kept branches end at once, a failed branch goes on from its failed node', async () => {
    const group = playbookFrom(`
version: "1.0"
name: grouped
nodes:
  - id: g
    type: parallel
    failure: wait_all
    on_failure: { max_iterations: 1 }
    branches:
      - { id: A, nodes: [{ id: x, type: agentic, skill: s }] }
      - id: B
        nodes:
          - { id: y1, type: agentic, skill: s }
          - { id: y2, type: agentic, skill: s, depends: [y1], on_failure: { max_iterations: 1 } }
  - { id: after, type: agentic, skill: s, depends: [g] }
`);
    const failed = await executePlaybook({ store, ...group, dispatcher: scriptedDispatcher({ x: [success({ x: 'kept' })], y1: [success({ y1: 'kept' })], y2: [failure()] }) });
    expect(failed.terminalStatus).toBe('exceeded_iteration_cap');
    const dispatcher = scriptedDispatcher({ y2: [success({ y2: 'now' })] });
    const result = await retryRun({ store, runId: failed.runId, dispatcher });
    expect(result.terminalStatus).toBe('completed');
    expect(dispatcher.calls.map((call) => call.nodeId)).toEqual(['y2', 'after']);
    // y2 saw y1's kept output, and the join has every branch's.
    expect(dispatcher.calls[0]?.context).toMatchObject({ y1: 'kept' });
    expect(result.finalContext).toMatchObject({ x: 'kept', y1: 'kept', y2: 'now', after: 'done' });
    expect((await verifyRun(store, failed.runId)).ok).toBe(true);
  });

  it('inside nested groups too: only the failed leaf runs again', async () => {
    const nested = playbookFrom(`
version: "1.0"
name: nested
nodes:
  - id: outer
    type: parallel
    failure: wait_all
    on_failure: { max_iterations: 1 }
    branches:
      - { id: A, nodes: [{ id: a, type: agentic, skill: s }] }
      - id: B
        nodes:
          - { id: b1, type: agentic, skill: s }
          - id: inner
            type: parallel
            depends: [b1]
            failure: wait_all
            on_failure: { max_iterations: 1 }
            branches:
              - { id: C, nodes: [{ id: c, type: agentic, skill: s }] }
              - { id: D, nodes: [{ id: d, type: agentic, skill: s, on_failure: { max_iterations: 1 } }] }
`);
    const failed = await executePlaybook({ store, ...nested, dispatcher: scriptedDispatcher({ d: [failure()] }) });
    expect(failed.terminalStatus).toBe('exceeded_iteration_cap');
    const dispatcher = scriptedDispatcher();
    const result = await retryRun({ store, runId: failed.runId, dispatcher });
    expect(result.terminalStatus).toBe('completed');
    expect(dispatcher.calls.map((call) => call.nodeId)).toEqual(['d']);
    expect(result.finalContext).toMatchObject({ a: 'done', b1: 'done', c: 'done', d: 'done' });
    expect((await verifyRun(store, failed.runId)).ok).toBe(true);
  });

  it('refuses completed, cancelled and rejected runs with E_RUN_NOT_RETRYABLE', async () => {
    const gated = playbookFrom('version: "1.0"\nname: g\nnodes:\n  - { id: gate, type: approval, prompt: ok? }\n');
    const rejected = await executePlaybook({ store, ...gated, dispatcher: scriptedDispatcher() });
    await rejectGate({ store, token: rejected.approvalToken as string, approver: 'bob', reason: 'no' });
    const cancelled = await executePlaybook({ store, ...gated, dispatcher: scriptedDispatcher() });
    await cancelRun({ store, runId: cancelled.runId, reason: 'stop' });
    const approved = await executePlaybook({ store, ...gated, dispatcher: scriptedDispatcher() });
    await approveGate({ store, token: approved.approvalToken as string, approver: 'bob' });
    for (const runId of [rejected.runId, cancelled.runId, approved.runId]) {
      await expect(retryRun({ store, runId, dispatcher: scriptedDispatcher() })).rejects.toMatchObject({ code: 'E_RUN_NOT_RETRYABLE' });
    }
  });
});

describe('worker wake-ups', () => {
  it('a worker sleeping out a long poll claims a run as soon as the store hints that one is runnable (no timer fires)', async () => {
    const clock = testClock();
    const one = playbookFrom('version: "1.0"\nname: one\nnodes:\n  - { id: a, type: agentic, skill: s }\n');
    const dispatcher = scriptedDispatcher();
    const worker = createWorker({ store, dispatcher, clock, pollMs: 3_600_000 });
    worker.start();
    try {
      await clock.settle();
      // SQLite hints this store object's own writes; PostgreSQL every connection's (LISTEN/NOTIFY): another handle writes.
      const writer = kind === 'postgres' ? await open() : store;
      const { runId } = await startRun({ store: writer, ...one, clock });
      await until(async () => (await store.getRun(runId))?.status === 'completed', 'the run completed without the clock moving');
      expect(dispatcher.calls.map((call) => call.nodeId)).toEqual(['a']);
    } finally {
      await worker.stop();
    }
  });
});

describe('a worker whose store keeps failing', () => {
  it('rides out transient errors quietly for a lease length, then reports the outage once; a permanent error at once', async () => {
    const clock = testClock();
    let failure: CantbookError | undefined = new CantbookError('E_STORE_UNAVAILABLE', 'the database is restarting', { transient: true });
    const down = Object.create(store) as EventStore;
    down.claimRuns = async (request) => {
      if (failure !== undefined) throw failure;
      return store.claimRuns(request);
    };
    down.nextWakeAt = async (now) => {
      if (failure !== undefined) throw failure;
      return store.nextWakeAt(now);
    };
    const told: unknown[] = [];
    const worker = createWorker({ store: down, dispatcher: scriptedDispatcher(), clock, leaseMs: 3_000, pollMs: 500, onError: (error) => told.push(error) });
    worker.start();
    try {
      await clock.advance(2_999);
      expect(told).toEqual([]);
      await clock.advance(501);
      expect(told).toEqual([failure]);
      await clock.advance(10_000);
      expect(told).toHaveLength(1);
      // Back up: the outage is over; a new one is reported again, and a permanent error at once.
      failure = undefined;
      await clock.advance(500);
      failure = new CantbookError('E_STORE_UNAVAILABLE', 'not a cantbook store', {});
      await clock.advance(500);
      expect(told).toHaveLength(3);
    } finally {
      failure = undefined;
      await worker.stop();
    }
  });
});

describe('leases (SPEC §11)', () => {
  it('a driver whose lease was taken over cannot append: E_LEASE_LOST, and nothing of it lands after the takeover', async () => {
    const clock = testClock();
    const one = playbookFrom('version: "1.0"\nname: one\nnodes:\n  - { id: a, type: agentic, skill: s }\n  - { id: b, type: agentic, skill: s, depends: [a] }\n');
    const first = hangingDispatcher();
    const old = executePlaybook({ store, ...one, clock, dispatcher: first.dispatcher });
    const settled = old.then(() => 'resolved', (error: unknown) => error);
    await until(() => first.calls.length === 1, 'a dispatched');
    const runId = first.calls[0]?.request.runId as string;
    // Another driver forces the takeover: a#1 is recorded interrupted and a#2 runs there.
    const second = hangingDispatcher();
    const taking = recoverRun({ store, runId, dispatcher: second.dispatcher, clock, force: true });
    await until(() => second.calls.length === 1, 'a#2 dispatched by the new driver');
    const takenOver = await readRunEvents(store, runId);
    // The old driver's attempt comes back; whatever it decides next is refused by the fence.
    first.calls[0]?.answer({ status: 'success', output: { late: true } });
    expect(await settled).toMatchObject({ code: 'E_LEASE_LOST' });
    expect(await readRunEvents(store, runId)).toEqual(takenOver);
    second.calls[0]?.answer({ status: 'success', output: { a: 'second' } });
    await until(() => second.calls.length === 2, 'b dispatched');
    second.calls[1]?.answer({ status: 'success', output: {} });
    const result = await taking;
    expect(result.terminalStatus).toBe('completed');
    expect(result.finalContext).not.toHaveProperty('late');
    expect((await verifyRun(store, runId)).ok).toBe(true);
  });

  it('a driver whose renewals get no answer halts when its lease runs out: attempt aborted, nothing recorded', async () => {
    const clock = testClock();
    const one = playbookFrom('version: "1.0"\nname: one\nnodes:\n  - { id: a, type: agentic, skill: s }\n');
    const { dispatcher, calls } = hangingDispatcher();
    // A partition: renewals are sent and never answered (appends would be, but none is due).
    const cutOff = Object.create(store) as EventStore;
    cutOff.renewLease = () => new Promise<never>(() => undefined);
    const running = executePlaybook({ store: cutOff, ...one, clock, dispatcher, leaseMs: 3_000 });
    const outcome = running.then(() => 'resolved', (error: { code?: string }) => error.code);
    await until(() => calls.length === 1, 'a dispatched');
    const runId = calls[0]?.request.runId as string;
    await clock.advance(2_999);
    expect(calls[0]?.abortedWith).toBeUndefined();
    await clock.advance(1);
    expect(await outcome).toBe('E_LEASE_LOST');
    expect(calls[0]?.abortedWith).toBeDefined();
    expect(await types(runId)).toEqual(['RunStarted', 'NodeStarted']);
  });

  it('renews its lease while an attempt is in flight, so nobody takes over a live driver', async () => {
    const clock = testClock();
    const one = playbookFrom('version: "1.0"\nname: one\nnodes:\n  - { id: a, type: agentic, skill: s }\n');
    const { dispatcher, calls } = hangingDispatcher();
    const running = executePlaybook({ store, ...one, clock, dispatcher, leaseMs: 3_000 });
    await until(() => calls.length === 1, 'a dispatched');
    const runId = calls[0]?.request.runId as string;
    for (let i = 0; i < 10; i++) await clock.advance(1_000); // ten seconds: three lease lengths
    await expect(recoverRun({ store, runId, dispatcher: scriptedDispatcher(), clock })).rejects.toMatchObject({ code: 'E_RUN_ACTIVE' });
    calls[0]?.answer({ status: 'success', output: {} });
    expect((await running).terminalStatus).toBe('completed');
  });

  it('a host signal stops the driver: attempts aborted, nothing recorded, lease released, the run recoverable', async () => {
    const one = playbookFrom('version: "1.0"\nname: one\nnodes:\n  - { id: a, type: agentic, skill: s }\n');
    const { dispatcher, calls } = hangingDispatcher();
    const controller = new AbortController();
    const running = executePlaybook({ store, ...one, dispatcher, signal: controller.signal });
    await until(() => calls.length === 1, 'a dispatched');
    const runId = calls[0]?.request.runId as string;
    controller.abort();
    await expect(running).rejects.toMatchObject({ code: 'E_RUN_INTERRUPTED' });
    expect(calls[0]?.abortedWith).toBeDefined();
    expect(await types(runId)).toEqual(['RunStarted', 'NodeStarted']);
    const recovered = await recoverRun({ store, runId, dispatcher: scriptedDispatcher() });
    expect(recovered.terminalStatus).toBe('completed');
    expect(eventsOf(await readRunEvents(store, runId), 'NodeFailed')[0]?.data).toMatchObject({ nodeId: 'a', attempt: 1, interrupted: true });
  });
});
