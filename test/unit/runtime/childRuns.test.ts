/**
 * Child runs at run time (SPEC §12): `playbook` and `map` nodes, driven
 * inline and by workers, gates inside children, cancel cascades, retries,
 * and the fold refusing logs that invent or skip a child. Every run of each
 * tree is verified: replay of its log equals its live projections.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AgentDispatcher, DispatchRequest, NodeOutcome } from '../../../src/adapters/types.js';
import { FoldError, foldRun, initialRunSnapshot } from '../../../src/compiler/foldRun.js';
import type { RunEvent } from '../../../src/events/types.js';
import { hasCode } from '../../../src/errors.js';
import { executePlaybook, startRun } from '../../../src/runtime/executePlaybook.js';
import type { ExecutePlaybookOptions } from '../../../src/runtime/executePlaybook.js';
import { approveGate, rejectGate, resumePlaybook } from '../../../src/runtime/gates.js';
import { loadRun } from '../../../src/runtime/loadRun.js';
import { getRun, listRuns, readRunEvents, verifyRun } from '../../../src/runtime/queries.js';
import { cancelRun, retryRun } from '../../../src/runtime/runControl.js';
import { RunSession } from '../../../src/runtime/runSession.js';
import type { PlaybookResult } from '../../../src/runtime/runSession.js';
import { createWorker } from '../../../src/runtime/worker.js';
import type { PlaybookResolver } from '../../../src/playbook/resolvePlaybooks.js';
import type { EventStore } from '../../../src/store/eventStore.js';
import { playbookFrom, scriptedDispatcher, success, tempStore } from '../../helpers/runtimeHarness.js';

let store: EventStore;
let storeSpec: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ store, cleanup, spec: storeSpec } = await tempStore()));
afterEach(() => cleanup());

/** An in-memory library of playbooks, resolved by name. */
function library(texts: Record<string, string>): PlaybookResolver {
  return (ref) => (Object.hasOwn(texts, ref) ? { id: ref, source: texts[ref] as string } : null);
}

const task = `version: "1.0"
name: task
inputs: [{ name: taskId, required: true }, { name: epic, default: none }]
nodes:
  - { id: work, type: agentic, skill: s, inputs: { taskId: "{{inputs.taskId}}" }, on_failure: { max_iterations: 1 } }
`;

const gatedTask = `version: "1.0"
name: gated
inputs: [{ name: taskId, required: true }, { name: epic }]
nodes:
  - { id: work, type: agentic, skill: s }
  - { id: check, type: approval, depends: [work], prompt: "ship {{inputs.taskId}}?" }
`;

function mapRoot(options: { concurrency?: number; tolerate?: number; child?: string; cap?: number } = {}): string {
  return `version: "1.0"
name: root
inputs: [{ name: epic, required: true }]
nodes:
  - { id: plan, type: agentic, skill: s }
  - id: each
    type: map
    depends: [plan]
    items: "{{tasks}}"
    playbook: ${options.child ?? 'task'}
    item_input: taskId
    inputs: { epic: "{{inputs.epic}}" }
${options.concurrency === undefined ? '' : `    max_concurrency: ${options.concurrency}\n`}${options.cap === undefined ? '' : `    on_failure: { max_iterations: ${options.cap} }\n`}    tolerate: ${options.tolerate ?? 0}
  - { id: ship, type: agentic, skill: s, depends: [each] }
`;
}

const five = ['t0', 't1', 't2', 't3', 't4'];

/** Runs the tree of a root; every run of it verified (replay = live). */
async function verifiedTree(rootId: string): Promise<string[]> {
  const ids = [rootId];
  for (let i = 0; i < ids.length; i++) for (const child of await listRuns(store, { parentRunId: ids[i] as string })) ids.push(child.runId);
  for (const id of ids) expect((await verifyRun(store, id)).problems, id).toEqual([]);
  return ids;
}

/** A dispatcher that answers `work` of each child by its taskId, with a delay, counting how many are in flight. */
function taskDispatcher(answer: (taskId: string, request: DispatchRequest) => NodeOutcome | 'gate' = () => success()): AgentDispatcher & { peak: number; calls: DispatchRequest[] } {
  let inFlight = 0;
  const self = {
    peak: 0,
    calls: [] as DispatchRequest[],
    async dispatch(request: DispatchRequest): Promise<NodeOutcome> {
      self.calls.push({ ...request });
      if (request.nodeId === 'plan') return success({ tasks: five });
      if (request.nodeId !== 'work') return success({ [request.nodeId]: 'done' });
      inFlight += 1;
      self.peak = Math.max(self.peak, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 5));
      inFlight -= 1;
      const taskId = request.bindings?.taskId ?? (request.context['taskId'] as string);
      const outcome = answer(taskId, request);
      return outcome === 'gate' ? success() : outcome;
    },
  };
  return self;
}

/** A child whose `route` sends only the item `t2` (the third of five) to a gate. */
const thirdOfFive = `version: "1.0"
name: third
inputs: [{ name: taskId, required: true }, { name: epic }]
nodes:
  - { id: work, type: agentic, skill: s }
  - { id: route, type: agentic, skill: s, depends: [work] }
  - { id: check, type: approval, prompt: "ship {{inputs.taskId}}?" }
  - { id: fin, type: agentic, skill: s }
edges:
  - { from: route, to: check, when: { field: gated, equals: true } }
  - { from: route, to: fin }
  - { from: check, to: fin }
`;

/** `route` answers whether its child's item is `t2`; everything else goes to `dispatcher`. */
function routedByTask(dispatcher: AgentDispatcher): AgentDispatcher {
  return { dispatch: (request) => (request.nodeId === 'route' ? success({ gated: request.context['taskId'] === 't2' }) : dispatcher.dispatch(request)) };
}

const resumeScript = fileURLToPath(new URL('../../fixtures/resumeGate.ts', import.meta.url));

/** Runs a process to its end; resolves with its stdout (rejects with its stderr on a non-zero exit). */
function runProcess(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env: process.env }, (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)));
  });
}

function run(source: string, texts: Record<string, string>, extra: Partial<ExecutePlaybookOptions> & { dispatcher: AgentDispatcher }): Promise<PlaybookResult> {
  return executePlaybook({ store, ...playbookFrom(source), resolvePlaybook: library(texts), initialContext: { epic: 'E1' }, ...extra });
}

describe('a playbook node', () => {
  const root = `version: "1.0"
name: root
nodes:
  - { id: prep, type: agentic, skill: s }
  - { id: sub, type: playbook, depends: [prep], playbook: task, inputs: { taskId: "{{prep}}" } }
  - { id: after, type: agentic, skill: s, depends: [sub] }
`;

  it('runs the child as a run of its own; its outputs become the node output', async () => {
    const dispatcher = scriptedDispatcher({ prep: [success({ prep: 'T-9' })], work: [success({ report: 'ok', __private: 1 })] });
    const result = await executePlaybook({ store, ...playbookFrom(root), resolvePlaybook: library({ task }), dispatcher });
    expect(result.terminalStatus).toBe('completed');
    expect(result.finalContext).toMatchObject({ prep: 'T-9', report: 'ok', after: 'done' });
    expect(result.finalContext).not.toHaveProperty('__private');
    const [child] = await listRuns(store, { parentRunId: result.runId });
    expect(child).toMatchObject({ runId: `${result.runId}.sub.1.0`, playbookName: 'task', status: 'completed', parentRunId: result.runId });
    expect(child?.bindings).toMatchObject({ taskId: 'T-9', epic: 'none' });
    expect((await getRun(store, result.runId))?.parentRunId).toBeNull();
    const dispatched = dispatcher.calls.find((call) => call.nodeId === 'work');
    expect(dispatched?.runId).toBe(child?.runId);
    await verifiedTree(result.runId);
  });

  it('a failed child fails the node like any attempt, and its retry starts a new child', async () => {
    const dispatcher = scriptedDispatcher({ work: [{ status: 'failure', error: 'nope' }, success()] });
    const source = root.replace('playbook: task,', 'playbook: task, on_failure: { max_iterations: 2 },');
    const result = await executePlaybook({ store, ...playbookFrom(source), resolvePlaybook: library({ task }), dispatcher });
    expect(result.terminalStatus).toBe('completed');
    const children = await listRuns(store, { parentRunId: result.runId });
    expect(children.map((row) => [row.runId.slice(result.runId.length), row.status]).sort()).toEqual([['.sub.1.0', 'failed'], ['.sub.2.0', 'completed']]);
    await verifiedTree(result.runId);
  });

  it('a missing or cyclic reference is refused before any event', async () => {
    const dispatcher = scriptedDispatcher();
    await expect(executePlaybook({ store, ...playbookFrom(root), resolvePlaybook: library({}), dispatcher })).rejects.toMatchObject({ code: 'E_PLAYBOOK_NOT_FOUND' });
    const loop = root.replace('playbook: task', 'playbook: root');
    await expect(executePlaybook({ store, ...playbookFrom(loop), playbookId: 'root', resolvePlaybook: library({ root: loop }), dispatcher })).rejects.toMatchObject({ code: 'E_PLAYBOOK_CYCLE' });
    expect(await store.listRunIds()).toEqual([]);
  });
});

describe('a map node', () => {
  it('runs one child per item, at most max_concurrency at a time, output in item order', async () => {
    // Later items finish first: the output is still in item order.
    const dispatcher = taskDispatcher((taskId) => success({ done: taskId }));
    const result = await run(mapRoot({ concurrency: 2 }), { task }, { dispatcher });
    expect(result.terminalStatus).toBe('completed');
    const each = result.finalContext['each'] as { runId: string; status: string; output: Record<string, unknown> }[];
    expect(each.map((entry) => [entry.runId, entry.status, entry.output['done']])).toEqual(five.map((t, i) => [`${result.runId}.each.1.${i}`, 'completed', t]));
    expect(dispatcher.peak).toBeLessThanOrEqual(2);
    // Two children in flight at once, as the parent's log has them: both started before either settled.
    const kinds = (await readRunEvents(store, result.runId)).filter((event) => event.type === 'ChildRunStarted' || event.type === 'ChildRunSettled').map((event) => event.type);
    expect(kinds.slice(0, 3)).toEqual(['ChildRunStarted', 'ChildRunStarted', 'ChildRunSettled']);
    expect((await verifiedTree(result.runId)).length).toBe(6);
  });

  it('tolerate: one failed child is tolerated; the output says which', async () => {
    const dispatcher = taskDispatcher((taskId) => (taskId === 't1' ? { status: 'failure', error: 'broke' } : success()));
    const result = await run(mapRoot({ tolerate: 1 }), { task }, { dispatcher });
    expect(result.terminalStatus).toBe('completed');
    const each = result.finalContext['each'] as { status: string; error?: string }[];
    expect(each.map((entry) => entry.status)).toEqual(['completed', 'failed', 'completed', 'completed', 'completed']);
    expect(each[1]?.error).toContain('broke');
    await verifiedTree(result.runId);
  });

  it('more failures than tolerate fail the node; children still running are cancelled', async () => {
    const dispatcher = taskDispatcher((taskId) => (taskId === 't0' ? { status: 'failure', error: 'broke' } : success()));
    const slowTask = task.replace('{ id: work, type: agentic, skill: s,', '{ id: pre, type: agentic, skill: s }\n  - { id: work, type: agentic, skill: s, depends: [pre],');
    const result = await run(mapRoot({ concurrency: 2, child: 'slow', cap: 1 }), { slow: slowTask }, { dispatcher });
    expect(result).toMatchObject({ terminalStatus: 'exceeded_iteration_cap', exceededNodeId: 'each' });
    expect(result.errorContext).toContain("map 'each'");
    const children = await listRuns(store, { parentRunId: result.runId });
    // t0 failed; the map started at most one more before it stopped, and cancelled whatever still ran.
    expect(children.every((row) => row.status !== 'running' && row.status !== 'paused')).toBe(true);
    expect(children.length).toBeLessThanOrEqual(2);
    await verifiedTree(result.runId);
  });

  it('items that are not a list fail the node without retrying it', async () => {
    const dispatcher = scriptedDispatcher({ plan: [success({ tasks: 'not a list' })] });
    const result = await run(mapRoot(), { task }, { dispatcher });
    expect(result).toMatchObject({ terminalStatus: 'failed', failedNodeId: 'each', error: { cause: 'not_retryable' } });
    expect(await listRuns(store, { parentRunId: result.runId })).toEqual([]);
  });

  it('a retry of the failed map keeps the children that completed', async () => {
    let broken = true;
    const dispatcher = taskDispatcher((taskId) => (taskId === 't3' && broken ? { status: 'failure', error: 'broke' } : success({ done: taskId })));
    const failed = await run(mapRoot({ concurrency: 1, cap: 1 }), { task }, { dispatcher });
    expect(failed.terminalStatus).toBe('exceeded_iteration_cap');
    broken = false;
    const retried = await retryRun({ store, runId: failed.runId, dispatcher, resolvePlaybook: library({ task }) } as never);
    expect(retried.terminalStatus).toBe('completed');
    const each = retried.finalContext['each'] as { runId: string }[];
    expect(each.map((entry) => entry.runId.slice(failed.runId.length))).toEqual(['.each.1.0', '.each.1.1', '.each.1.2', '.each.2.3', '.each.2.4']);
    await verifiedTree(failed.runId);
  });
});

describe('gates inside children', () => {
  it('a gate in the third of five children: the root pauses with it; approving finishes the child and the root once', async () => {
    const routed = routedByTask(taskDispatcher());
    const paused = await run(mapRoot({ concurrency: 5, child: 'third' }), { third: thirdOfFive }, { dispatcher: routed });
    expect(paused.terminalStatus).toBe('pending_approval');
    expect(paused.approvals).toHaveLength(1);
    const gate = paused.approvals?.[0];
    expect(gate?.runId).toBe(`${paused.runId}.each.1.2`);
    expect(gate?.token).toBeDefined();
    expect(paused.approvalToken).toBe(gate?.token);
    await approveGate({ store, token: gate?.token as string, approver: 'alice' });
    // Two resumes at once: exactly one drives the child and the root on.
    const outcomes = await Promise.allSettled([
      resumePlaybook({ store, approvalToken: gate?.token as string, dispatcher: routed }),
      resumePlaybook({ store, approvalToken: gate?.token as string, dispatcher: routed }),
    ]);
    const won = outcomes.filter((o): o is PromiseFulfilledResult<PlaybookResult> => o.status === 'fulfilled');
    expect(won).toHaveLength(1);
    expect(won[0]?.value).toMatchObject({ runId: paused.runId, terminalStatus: 'completed' });
    const lost = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect(hasCode(lost.reason, 'E_PLAYBOOK_RESUME_BLOCKED')).toBe(true);
    const events = await readRunEvents(store, paused.runId);
    expect(events.filter((event) => event.type === 'RunCompleted')).toHaveLength(1);
    expect(events.filter((event) => event.type === 'NodeStarted' && event.data.nodeId === 'ship')).toHaveLength(1);
    await verifiedTree(paused.runId);
  });

  it('two processes resume the gate of the third of five children at once: one drives the child and the root on, once', async () => {
    const paused = await run(mapRoot({ concurrency: 5, child: 'third' }), { third: thirdOfFive }, { dispatcher: routedByTask(taskDispatcher()) });
    expect(paused.approvals?.map((gate) => gate.runId)).toEqual([`${paused.runId}.each.1.2`]);
    const token = paused.approvalToken as string;
    await approveGate({ store, token, approver: 'alice' });
    const resume = () => runProcess(process.execPath, ['--import', 'tsx', resumeScript, storeSpec, token]);
    const outputs = (await Promise.all([resume(), resume()])).map((out) => JSON.parse(out.trim()) as { runId?: string; terminalStatus?: string; code?: string });
    expect(outputs.filter((out) => out.terminalStatus !== undefined)).toEqual([{ runId: paused.runId, terminalStatus: 'completed' }]);
    expect(outputs.filter((out) => out.code !== undefined).map((out) => out.code)).toEqual(['E_PLAYBOOK_RESUME_BLOCKED']);
    const events = await readRunEvents(store, paused.runId);
    expect(events.filter((event) => event.type === 'RunCompleted')).toHaveLength(1);
    expect(events.filter((event) => event.type === 'NodeStarted' && event.data.nodeId === 'ship')).toHaveLength(1);
    expect((await readRunEvents(store, `${paused.runId}.each.1.2`)).filter((event) => event.type === 'RunResumed')).toHaveLength(1);
    await verifiedTree(paused.runId);
  }, 60_000);

  it('a rejected gate in a child fails the child, and then the map', async () => {
    const dispatcher = taskDispatcher();
    const paused = await run(mapRoot({ concurrency: 1, child: 'gated', cap: 1 }), { gated: gatedTask }, { dispatcher });
    expect(paused.terminalStatus).toBe('pending_approval');
    await rejectGate({ store, token: paused.approvalToken as string, approver: 'bob', reason: 'no' });
    const again = await resumeRoot(paused.runId, dispatcher);
    expect(again).toMatchObject({ terminalStatus: 'exceeded_iteration_cap', exceededNodeId: 'each' });
    await verifiedTree(paused.runId);
  });
});

/** Drives a root again (what `recover` does for a run nobody drives). */
async function resumeRoot(runId: string, dispatcher: AgentDispatcher): Promise<PlaybookResult> {
  const { recoverRun } = await import('../../../src/runtime/recoverRun.js');
  return recoverRun({ store, runId, dispatcher });
}

describe('cancel, retry and workers', () => {
  it('cancelling a parent cancels its children', async () => {
    const dispatcher = taskDispatcher();
    const paused = await run(mapRoot({ concurrency: 2, child: 'gated' }), { gated: gatedTask }, { dispatcher });
    expect(paused.terminalStatus).toBe('pending_approval');
    await cancelRun({ store, runId: paused.runId, reason: 'superseded', by: 'carol' });
    const children = await listRuns(store, { parentRunId: paused.runId });
    expect(children.length).toBe(2);
    expect(children.every((row) => row.status === 'cancelled')).toBe(true);
    await verifiedTree(paused.runId);
  });

  it('a child whose parent ended without it (a cascade cut short) is cancelled by its next driver', async () => {
    const dispatcher = taskDispatcher();
    const paused = await run(mapRoot({ concurrency: 1, child: 'gated' }), { gated: gatedTask }, { dispatcher });
    // The parent alone is cancelled, as if the process died before the cascade reached its child.
    const parent = await loadRun(store, paused.runId);
    const session = new RunSession(store, parent.playbook, parent.snapshot, { dispatcher });
    session.record({ type: 'RunCancelled', data: { reason: 'stopped' } });
    await session.commit();
    const child = `${paused.runId}.each.1.0`;
    expect((await getRun(store, child))?.status).toBe('paused');
    await approveGate({ store, token: paused.approvalToken as string, approver: 'dana' });
    const resumed = await resumePlaybook({ store, approvalToken: paused.approvalToken as string, dispatcher });
    expect(resumed).toMatchObject({ runId: child, terminalStatus: 'cancelled' });
    expect(resumed.errorContext).toContain(`its parent run '${paused.runId}' ended (cancelled)`);
    expect(dispatcher.calls.filter((call) => call.runId === child && call.nodeId !== 'work')).toEqual([]);
    await verifiedTree(paused.runId);
  });

  it('a child run cannot be retried on its own', async () => {
    const dispatcher = taskDispatcher((taskId) => (taskId === 't0' ? { status: 'failure', error: 'broke' } : success()));
    const failed = await run(mapRoot({ concurrency: 1 }), { task }, { dispatcher });
    await expect(retryRun({ store, runId: `${failed.runId}.each.1.0`, dispatcher })).rejects.toMatchObject({ code: 'E_RUN_NOT_RETRYABLE' });
  });

  it('workers drive a tree started by startRun: children are claimed like any run, and each wakes its parent', async () => {
    const dispatcher = taskDispatcher((taskId) => success({ done: taskId }));
    const { runId } = await startRun({ store, ...playbookFrom(mapRoot({ concurrency: 3 })), resolvePlaybook: library({ task }), initialContext: { epic: 'E1' } });
    const worker = createWorker({ store, dispatcher, concurrency: 4, pollMs: 20 });
    await worker.runUntilIdle();
    const root = await getRun(store, runId);
    expect(root?.status).toBe('completed');
    expect((root?.bindings['each'] as unknown[]).length).toBe(5);
    expect(dispatcher.peak).toBeLessThanOrEqual(3);
    await verifiedTree(runId);
  });
});

describe('the parent waits for its children without its lease', () => {
  it('inline: while a child works, nobody holds the parent; the tree still completes', async () => {
    const held: boolean[] = [];
    let rootId = '';
    const dispatcher: AgentDispatcher = {
      async dispatch(request) {
        if (request.nodeId === 'plan') {
          rootId = request.runId;
          return success({ tasks: ['a', 'b'] });
        }
        if (request.nodeId === 'work') {
          await new Promise((resolve) => setTimeout(resolve, 20));
          const lease = await store.getLease(rootId);
          held.push(lease !== null && lease.expiresAt !== '' && Date.parse(lease.expiresAt) > Date.now());
        }
        return success();
      },
    };
    const result = await run(mapRoot({ concurrency: 1 }), { task }, { dispatcher });
    expect(result.terminalStatus).toBe('completed');
    expect(held).toEqual([false, false]);
    await verifiedTree(result.runId);
  });

  it('inline and a worker at once: the worker may take the parent meanwhile, and the inline call follows it to the end', async () => {
    const dispatcher = taskDispatcher((taskId) => success({ done: taskId }));
    const worker = createWorker({ store, dispatcher, concurrency: 4, pollMs: 10 });
    worker.start();
    try {
      const result = await run(mapRoot({ concurrency: 2 }), { task }, { dispatcher });
      expect(result.terminalStatus).toBe('completed');
      expect((result.finalContext['each'] as unknown[]).length).toBe(5);
      await verifiedTree(result.runId);
    } finally {
      await worker.stop({ graceMs: 1000 });
    }
  });
});

describe('the fold refuses a log that invents or skips a child', () => {
  async function completedMapLog(): Promise<RunEvent[]> {
    const result = await run(mapRoot({ concurrency: 2 }), { task }, { dispatcher: taskDispatcher() });
    return readRunEvents(store, result.runId);
  }
  const refold = async (events: RunEvent[]) => {
    const { playbook } = await loadRun(store, events[0]?.runId as string);
    return foldRun(playbook.machine, initialRunSnapshot(playbook.machine), events);
  };
  const renumber = (events: RunEvent[]) => events.map((event, i) => ({ ...event, seq: i + 1 }) as RunEvent);

  it('accepts the log as written', async () => {
    const events = await completedMapLog();
    expect((await refold(events)).value).toBe('completed');
  });

  it('a child out of order, under another id, or past max_concurrency', async () => {
    const events = await completedMapLog();
    const starts = events.flatMap((event, i) => (event.type === 'ChildRunStarted' ? [i] : []));
    const edit = (i: number, patch: Record<string, unknown>) => events.map((event, j) => (j === i ? ({ ...event, data: { ...event.data, ...patch } } as RunEvent) : event));
    const first = starts[0] as number;
    await expect(refold(edit(first, { index: 1 }))).rejects.toBeInstanceOf(FoldError);
    await expect(refold(edit(first, { childRunId: 'elsewhere' }))).rejects.toBeInstanceOf(FoldError);
    // A third start before any child settled: more than max_concurrency (2) in flight.
    const third = starts[2] as number;
    const moved = [...events];
    const [start] = moved.splice(third, 1);
    const firstSettle = moved.findIndex((event) => event.type === 'ChildRunSettled');
    moved.splice(firstSettle, 0, start as RunEvent);
    await expect(refold(renumber(moved))).rejects.toBeInstanceOf(FoldError);
  });

  it('a success whose output is not what the children add up to, or before they all settled', async () => {
    const events = await completedMapLog();
    const success = events.findIndex((event) => event.type === 'NodeSucceeded' && event.data.nodeId === 'each');
    const tampered = events.map((event, j) => (j === success ? ({ ...event, data: { ...event.data, output: { each: [] } } } as RunEvent) : event));
    await expect(refold(tampered)).rejects.toBeInstanceOf(FoldError);
    const lastSettle = events.findLastIndex((event) => event.type === 'ChildRunSettled');
    const early = [...events];
    const [settle] = early.splice(lastSettle, 1);
    early.splice(success, 0, settle as RunEvent);
    await expect(refold(renumber(early))).rejects.toBeInstanceOf(FoldError);
  });

  it('an interrupted failure of a map node (its children run on without it)', async () => {
    const events = await completedMapLog();
    const started = events.findIndex((event) => event.type === 'NodeStarted' && event.data.nodeId === 'each');
    const interrupted = { ...(events[started] as RunEvent), type: 'NodeFailed', seq: started + 2, data: { nodeId: 'each', attempt: 1, error: 'gone', interrupted: true } } as RunEvent;
    await expect(refold([...events.slice(0, started + 1), interrupted])).rejects.toBeInstanceOf(FoldError);
  });
});
