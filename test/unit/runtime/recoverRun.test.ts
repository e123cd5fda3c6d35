/**
 * recoverRun takes over only runs whose process is gone (SPEC §4 "Crash
 * safety"): a node in flight in a live session of this process, or started by
 * a live pid on this host, is refused with E_RUN_ACTIVE unless forced. The
 * cross-process case (a live child, then SIGKILL) is in multiProcess.test.ts.
 */
import { hostname } from 'node:os';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DispatchRequest, NodeOutcome } from '../../../src/adapters/types.js';
import { executePlaybook } from '../../../src/runtime/executePlaybook.js';
import { readRunEvents, verifyRun } from '../../../src/runtime/queries.js';
import { recoverRun } from '../../../src/runtime/recoverRun.js';
import type { EventStore } from '../../../src/store/eventStore.js';
import { playbookFrom, scriptedDispatcher, tempStore } from '../../helpers/runtimeHarness.js';

let store: EventStore;
let cleanup: () => Promise<void>;
beforeEach(() => ({ store, cleanup } = tempStore()));
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
      details: { runId: 'r-live', nodeId: 'a', attempt: 1, owner: { pid: process.pid } },
    });
    expect(await readRunEvents(store, 'r-live')).toEqual(before);
    held.release({ status: 'success', output: { a: 'live' } });
    expect((await running).terminalStatus).toBe('completed');
  });

  it('force takes a live run over: the node runs again and the old session loses its next write', async () => {
    const held = heldDispatcher();
    const running = executePlaybook({ store, ...twoNodes, dispatcher: held.dispatcher, runId: 'r-forced' });
    await held.started;
    const dispatcher = scriptedDispatcher();
    const result = await recoverRun({ store, runId: 'r-forced', dispatcher, force: true });
    expect(result.terminalStatus).toBe('completed');
    expect(dispatcher.calls.map((call) => `${call.nodeId}#${call.iteration}`)).toEqual(['a#2', 'b#1']);
    held.release({ status: 'success', output: { a: 'late' } });
    await expect(running).rejects.toMatchObject({ code: 'E_CONCURRENT_UPDATE' });
    const events = await readRunEvents(store, 'r-forced');
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
