/**
 * recoverRun takes over only runs whose driver is gone (SPEC §4 "Crash
 * safety", §11): a run whose lease is live (a session of this process, or of
 * any other) is refused with E_RUN_ACTIVE unless forced; whatever pid a
 * NodeStarted records is information only. The cross-process case (a live
 * child, then SIGKILL) is in multiProcess.test.ts.
 */
import { hostname } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DispatchRequest, NodeOutcome } from '../../../src/adapters/types.js';
import { executePlaybook } from '../../../src/runtime/executePlaybook.js';
import { approveGate, resumePlaybook } from '../../../src/runtime/gates.js';
import { readRunEvents, verifyRun } from '../../../src/runtime/queries.js';
import { recoverRun } from '../../../src/runtime/recoverRun.js';
import type { EventStore } from '../../../src/store/eventStore.js';
import { playbookFrom, scriptedDispatcher, SECRET, tempStore } from '../../helpers/runtimeHarness.js';

let store: EventStore;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ store, cleanup } = await tempStore()));
afterEach(() => cleanup());

const twoNodes = playbookFrom(`
version: "1.0"
name: two
nodes:
  - { id: a, type: agentic, skill: s }
  - { id: b, type: agentic, skill: s, depends: [a] }
`);

/** A dispatcher whose node `a` waits until the test lets it finish. */
function heldDispatcher() {
  let release: (outcome: NodeOutcome) => void = () => undefined;
  let entered: (request: DispatchRequest) => void = () => undefined;
  const started = new Promise<DispatchRequest>((resolve) => (entered = resolve));
  const dispatcher = {
    dispatch(request: DispatchRequest): NodeOutcome | Promise<NodeOutcome> {
      if (request.nodeId !== 'a' || request.iteration !== 1) return { status: 'success', output: { [request.nodeId]: 'done' } };
      entered(request);
      return new Promise<NodeOutcome>((resolve) => (release = resolve));
    },
  };
  return { dispatcher, started, release: (outcome: NodeOutcome) => release(outcome) };
}

/** Rewrites the in-flight NodeStarted's owner, as another process would have recorded it. */
async function startedBy(owner: unknown): Promise<string> {
  const held = heldDispatcher();
  const running = executePlaybook({ store, ...twoNodes, dispatcher: held.dispatcher, runId: 'r-owner' });
  await held.started;
  const events = await readRunEvents(store, 'r-owner');
  // Re-append the same log under another run id with the owner replaced: the store hashes it afresh.
  const copy = events.map((event) => {
    const data = event.type === 'NodeStarted' ? { ...event.data, owner } : event.data;
    return { type: event.type, data, at: event.at } as never;
  });
  const row = await store.getRun('r-owner');
  await store.append({ runId: 'r-copy', expectedVersion: 0, events: copy, run: { ...row!, runId: 'r-copy' }, approvals: [] });
  held.release({ status: 'success', output: {} });
  await running;
  return 'r-copy';
}

describe('recoverRun', () => {
  it('refuses a run a live session of this process is driving, and writes nothing', async () => {
    const held = heldDispatcher();
    const running = executePlaybook({ store, ...twoNodes, dispatcher: held.dispatcher, runId: 'r-live' });
    await held.started;
    const before = await readRunEvents(store, 'r-live');
    await expect(recoverRun({ store, runId: 'r-live', dispatcher: scriptedDispatcher() })).rejects.toMatchObject({
      code: 'E_RUN_ACTIVE',
      details: { runId: 'r-live', owner: `${hostname()}:${process.pid}` },
    });
    expect(await readRunEvents(store, 'r-live')).toEqual(before);
    held.release({ status: 'success', output: { a: 'live' } });
    expect((await running).terminalStatus).toBe('completed');
  });

  it('still refuses while the winner of two overlapping resumes in this process drives the run', async () => {
    const gated = playbookFrom(`
version: "1.0"
name: gated
nodes:
  - { id: gate, type: approval, prompt: ship? }
  - { id: a, type: agentic, skill: s, depends: [gate] }
`);
    const paused = await executePlaybook({ store, ...gated, dispatcher: scriptedDispatcher(), approvalSecret: SECRET });
    const token = paused.approvalToken as string;
    await approveGate({ store, token, approver: 'ann', approvalSecret: SECRET });
    const held = heldDispatcher();
    const [first, second] = [
      resumePlaybook({ store, approvalToken: token, dispatcher: held.dispatcher, approvalSecret: SECRET }),
      resumePlaybook({ store, approvalToken: token, dispatcher: held.dispatcher, approvalSecret: SECRET }),
    ];
    // Handlers attached at once: the loser may settle while this test still waits for the winner's node.
    const outcomes = Promise.allSettled([first, second]);
    const codes = [first, second].map((resume) => resume.then(() => 'fulfilled', (error: { code?: string }) => error.code));
    await held.started;
    // The first to settle is the loser (its session has ended); the winner is held mid-node.
    const loser = await Promise.race(codes);
    expect(loser).toBe('E_PLAYBOOK_RESUME_BLOCKED');
    await expect(recoverRun({ store, runId: paused.runId, dispatcher: scriptedDispatcher() })).rejects.toMatchObject({ code: 'E_RUN_ACTIVE' });
    held.release({ status: 'success', output: {} });
    const settled = await outcomes;
    expect(settled.filter((outcome) => outcome.status === 'fulfilled').map((outcome) => (outcome as PromiseFulfilledResult<{ terminalStatus: string }>).value.terminalStatus)).toEqual(['completed']);
  });

  it('force takes a live run over: the node runs again and the old session\'s late result is dropped', async () => {
    const held = heldDispatcher();
    const running = executePlaybook({ store, ...twoNodes, dispatcher: held.dispatcher, runId: 'r-forced' });
    await held.started;
    const dispatcher = scriptedDispatcher();
    const result = await recoverRun({ store, runId: 'r-forced', dispatcher, force: true });
    expect(result.terminalStatus).toBe('completed');
    expect(dispatcher.calls.map((call) => `${call.nodeId}#${call.iteration}`)).toEqual(['a#2', 'b#1']);
    held.release({ status: 'success', output: { a: 'late' } });
    // The old session's append conflicts; it re-reads the log, finds its attempt ended by the takeover and writes nothing.
    await expect(running).resolves.toMatchObject({ terminalStatus: 'completed' });
    const events = await readRunEvents(store, 'r-forced');
    expect(events.some((event) => event.type === 'NodeSucceeded' && event.data.output.a === 'late')).toBe(false);
    expect(events.find((event) => event.type === 'NodeFailed')?.data).toMatchObject({ nodeId: 'a', attempt: 1, interrupted: true });
    expect((await verifyRun(store, 'r-forced')).ok).toBe(true);
  });

  it.each([
    ['another host', { host: 'elsewhere.invalid', pid: process.pid }],
    // Linux pids stay below 2^22, so this one cannot be alive.
    ['a pid that no longer exists', { host: hostname(), pid: 2 ** 22 + 1 }],
    ['no owner (logs written before owners were recorded)', undefined],
  ])('takes over a node started by %s', async (_label, owner) => {
    const runId = await startedBy(owner);
    const dispatcher = scriptedDispatcher();
    const result = await recoverRun({ store, runId, dispatcher });
    expect(result.terminalStatus).toBe('completed');
    expect(dispatcher.calls.map((call) => `${call.nodeId}#${call.iteration}`)).toEqual(['a#2', 'b#1']);
  });

  it('leaves finished runs as they are', async () => {
    const done = await executePlaybook({ store, ...twoNodes, dispatcher: scriptedDispatcher() });
    const dispatcher = scriptedDispatcher();
    expect((await recoverRun({ store, runId: done.runId, dispatcher })).terminalStatus).toBe('completed');
    expect(dispatcher.calls).toEqual([]);
  });
});
