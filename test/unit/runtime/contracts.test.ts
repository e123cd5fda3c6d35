/**
 * Contracts, error handlers and approval policies at run time (SPEC §13):
 * every check, every handler action for every trigger, the schema registry,
 * auto-passing gates, and the fold refusing logs that skip or invent a
 * decision. Every run here is also verified: replay of its log equals the
 * live projections.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as z from 'zod';
import type { DeterministicRunner } from '../../../src/adapters/types.js';
import { FoldError, foldRun, initialRunSnapshot } from '../../../src/compiler/foldRun.js';
import type { RunEvent } from '../../../src/events/types.js';
import { executePlaybook } from '../../../src/runtime/executePlaybook.js';
import { approveGate, rejectGate, resumePlaybook } from '../../../src/runtime/gates.js';
import { loadRun } from '../../../src/runtime/loadRun.js';
import { getPendingApprovals, getRun, readRunEvents, verifyRun } from '../../../src/runtime/queries.js';
import { createWorker } from '../../../src/runtime/worker.js';
import type { PlaybookResult } from '../../../src/runtime/runSession.js';
import type { EventStore } from '../../../src/store/eventStore.js';
import { parsePlaybook } from '../../../src/playbook/parsePlaybook.js';
import { sha256Hex } from '../../../src/events/canonicalJson.js';
import { createSubprocessRunner } from '../../../src/adapters/subprocessRunner.js';
import { foldStoredEvents } from '../../../src/runtime/loadRun.js';
import { failure, playbookFrom, scriptedDispatcher, success, tempStore } from '../../helpers/runtimeHarness.js';
import { testClock, until } from '../../helpers/testClock.js';

let store: EventStore;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ store, cleanup } = await tempStore()));
afterEach(() => cleanup());

const eventsOf = <T extends RunEvent['type']>(events: readonly RunEvent[], type: T) => events.filter((event): event is Extract<RunEvent, { type: T }> => event.type === type);
const violations = async (runId: string) => eventsOf(await readRunEvents(store, runId), 'ContractViolated').map((event) => event.data);

/** Replay equals the live projections for the run. */
async function verified(result: PlaybookResult): Promise<PlaybookResult> {
  const report = await verifyRun(store, result.runId);
  expect(report.problems).toEqual([]);
  return result;
}

/** A playbook with one `error_handlers` entry for `on`, or none (`action` undefined). */
function withHandler(body: string, on: string, action?: string, message?: string): string {
  const handlers = action === undefined ? '' : `error_handlers:\n  - { on: ${on}, action: ${action}${message === undefined ? '' : `, message: "${message}"`} }\n`;
  return `version: "1.0"\nname: contracts\n${handlers}${body}`;
}

const needsTopic = `nodes:
  - { id: research, type: agentic, skill: s }
  - { id: plan, type: agentic, skill: s, depends: [research], requires: { fields: [topic] }, on_failure: { max_iterations: 1 } }
`;

describe('requires.fields, checked before the node is dispatched', () => {
  it('with no handler: the violation is recorded and the node runs', async () => {
    const dispatcher = scriptedDispatcher();
    const result = await verified(await executePlaybook({ store, ...playbookFrom(withHandler(needsTopic, 'contract_violation')), dispatcher }));
    expect(result.terminalStatus).toBe('completed');
    expect(await violations(result.runId)).toEqual([{ nodeId: 'plan', attempt: 1, kind: 'requires', key: 'topic', message: "requires on 'plan': the context has no 'topic'" }]);
    expect(dispatcher.countOf('plan')).toBe(1);
  });

  it('present fields pass without an event, dotted paths included', async () => {
    const body = needsTopic.replace('fields: [topic]', 'fields: [topic.title]');
    const dispatcher = scriptedDispatcher({ research: [success({ topic: { title: 'ok' } })] });
    const result = await verified(await executePlaybook({ store, ...playbookFrom(withHandler(body, 'contract_violation', 'abort')), dispatcher }));
    expect(result.terminalStatus).toBe('completed');
    expect(await violations(result.runId)).toEqual([]);
  });

  it('abort: the run fails contract_violation before the node runs; errorContext is the message', async () => {
    const dispatcher = scriptedDispatcher();
    const result = await verified(await executePlaybook({ store, ...playbookFrom(withHandler(needsTopic, 'contract_violation', 'abort')), dispatcher }));
    expect(result).toMatchObject({ terminalStatus: 'failed', failedNodeId: 'plan', errorContext: "requires on 'plan': the context has no 'topic'", error: { cause: 'contract_violation', nodeId: 'plan' } });
    expect(dispatcher.countOf('plan')).toBe(0);
  });

  it('inject_hint: __contractViolation is in the context the node is dispatched with', async () => {
    const dispatcher = scriptedDispatcher();
    const result = await verified(await executePlaybook({ store, ...playbookFrom(withHandler(needsTopic, 'contract_violation', 'inject_hint', 'ask research for a topic')), dispatcher }));
    expect(result.terminalStatus).toBe('completed');
    expect(dispatcher.calls.find((call) => call.nodeId === 'plan')?.context.__contractViolation).toEqual({
      nodeId: 'plan', kind: 'requires', key: 'topic', message: "requires on 'plan': the context has no 'topic'", hint: 'ask research for a topic',
    });
  });

  it('hitl_escalate: a real gate with a token; approve and resume runs the node, exactly once', async () => {
    const dispatcher = scriptedDispatcher();
    const paused = await executePlaybook({ store, ...playbookFrom(withHandler(needsTopic, 'contract_violation', 'hitl_escalate')), dispatcher });
    expect(paused).toMatchObject({ terminalStatus: 'pending_approval', pausedNodeId: 'plan' });
    expect(dispatcher.countOf('plan')).toBe(0);
    const [pending] = await getPendingApprovals(store);
    expect(pending?.prompt).toContain("requires on 'plan': the context has no 'topic'");
    const opened = eventsOf(await readRunEvents(store, paused.runId), 'RunPaused')[0];
    expect(opened?.data.escalation).toEqual({ on: 'contract_violation', checkpoint: 'entry' });
    await approveGate({ store, token: paused.approvalToken as string, approver: 'alice' });
    const done = await verified(await resumePlaybook({ store, approvalToken: paused.approvalToken as string, dispatcher }));
    expect(done.terminalStatus).toBe('completed');
    expect(dispatcher.countOf('plan')).toBe(1);
    await expect(resumePlaybook({ store, approvalToken: paused.approvalToken as string, dispatcher })).rejects.toMatchObject({ code: 'E_PLAYBOOK_RESUME_BLOCKED' });
  });

  it('hitl_escalate rejected: the run fails approval_rejected and the node never runs', async () => {
    const dispatcher = scriptedDispatcher();
    const paused = await executePlaybook({ store, ...playbookFrom(withHandler(needsTopic, 'contract_violation', 'hitl_escalate')), dispatcher });
    await rejectGate({ store, token: paused.approvalToken as string, approver: 'bob', reason: 'no topic, no plan' });
    const run = await getRun(store, paused.runId);
    expect(run).toMatchObject({ status: 'failed', error: { cause: 'approval_rejected', nodeId: 'plan' } });
    expect(dispatcher.countOf('plan')).toBe(0);
    expect((await verifyRun(store, paused.runId)).problems).toEqual([]);
  });
});

describe('ensures, checked once the output is merged', () => {
  const emits = (ensures: string) => `nodes:
  - { id: emit, type: agentic, skill: s, ensures: ${ensures}, on_failure: { max_iterations: 1 } }
  - { id: next, type: agentic, skill: s, depends: [emit] }
`;

  it('outputFiles with no handler: recorded just before the success, and the run goes on', async () => {
    const result = await verified(await executePlaybook({ store, ...playbookFrom(withHandler(emits('{ outputFiles: [plan] }'), 'contract_violation')), dispatcher: scriptedDispatcher() }));
    expect(result.terminalStatus).toBe('completed');
    const types = (await readRunEvents(store, result.runId)).map((event) => event.type);
    expect(types.slice(2, 4)).toEqual(['ContractViolated', 'NodeSucceeded']);
    expect(await violations(result.runId)).toEqual([{ nodeId: 'emit', attempt: 1, kind: 'outputFiles', key: 'plan', message: "ensures.outputFiles on 'emit': the output left no 'plan' in the context" }]);
  });

  it('outputFiles kept: no event', async () => {
    const dispatcher = scriptedDispatcher({ emit: [success({ plan: 'p' })] });
    const result = await verified(await executePlaybook({ store, ...playbookFrom(withHandler(emits('{ outputFiles: [plan] }'), 'contract_violation', 'abort')), dispatcher }));
    expect(result.terminalStatus).toBe('completed');
    expect(await violations(result.runId)).toEqual([]);
  });

  it('abort: the run fails at the node, and nothing after it runs', async () => {
    const dispatcher = scriptedDispatcher();
    const result = await verified(await executePlaybook({ store, ...playbookFrom(withHandler(emits('{ outputFiles: [plan] }'), 'contract_violation', 'abort')), dispatcher }));
    expect(result).toMatchObject({ terminalStatus: 'failed', failedNodeId: 'emit', error: { cause: 'contract_violation' }, errorContext: "ensures.outputFiles on 'emit': the output left no 'plan' in the context" });
    expect(dispatcher.countOf('next')).toBe(0);
  });

  it('inject_hint: the next node sees __contractViolation', async () => {
    const dispatcher = scriptedDispatcher();
    const result = await verified(await executePlaybook({ store, ...playbookFrom(withHandler(emits('{ outputFiles: [plan] }'), 'contract_violation', 'inject_hint')), dispatcher }));
    expect(result.terminalStatus).toBe('completed');
    expect(dispatcher.calls.find((call) => call.nodeId === 'next')?.context.__contractViolation).toMatchObject({ nodeId: 'emit', kind: 'outputFiles', key: 'plan' });
  });

  it('hitl_escalate: resumed, the run goes on from the success (the node does not run again); rejected, it fails', async () => {
    const dispatcher = scriptedDispatcher();
    const source = withHandler(emits('{ outputFiles: [plan] }'), 'contract_violation', 'hitl_escalate');
    const paused = await executePlaybook({ store, ...playbookFrom(source), dispatcher });
    expect(paused).toMatchObject({ terminalStatus: 'pending_approval', pausedNodeId: 'emit' });
    await approveGate({ store, token: paused.approvalToken as string, approver: 'alice' });
    const done = await verified(await resumePlaybook({ store, approvalToken: paused.approvalToken as string, dispatcher }));
    expect(done.terminalStatus).toBe('completed');
    expect([dispatcher.countOf('emit'), dispatcher.countOf('next')]).toEqual([1, 1]);

    const again = await executePlaybook({ store, ...playbookFrom(source), dispatcher: scriptedDispatcher() });
    await rejectGate({ store, token: again.approvalToken as string, approver: 'bob', reason: 'no plan' });
    expect(await getRun(store, again.runId)).toMatchObject({ status: 'failed', error: { cause: 'approval_rejected', nodeId: 'emit' } });
  });

  it('exitCode (deterministic): the exit code the runner reports is checked', async () => {
    const body = `nodes:
  - { id: lint, type: deterministic, command: lint, ensures: { exitCode: 0 } }
  - { id: build, type: deterministic, command: build, depends: [lint], ensures: { exitCode: 3 } }
`;
    const runner: DeterministicRunner = { run: (request) => success({ [request.nodeId]: { exitCode: 0, stdout: '' } }) };
    const result = await verified(await executePlaybook({ store, ...playbookFrom(withHandler(body, 'contract_violation')), dispatcher: scriptedDispatcher(), deterministicRunner: runner }));
    expect(await violations(result.runId)).toEqual([{ nodeId: 'build', attempt: 1, kind: 'exitCode', key: 'exitCode', message: "ensures.exitCode on 'build': expected exit code 3, found 0" }]);
  });

  it('exitCode with the subprocess runner: the exit code the node ensures is a success the check then holds; another one fails', async () => {
    const body = `nodes:
  - { id: probe, type: deterministic, command: node, args: ["-e", "process.exit(3)"], ensures: { exitCode: 3 }, on_failure: { max_iterations: 1 } }
`;
    const runner = createSubprocessRunner();
    const kept = await verified(await executePlaybook({ store, ...playbookFrom(withHandler(body, 'contract_violation', 'abort')), dispatcher: scriptedDispatcher(), deterministicRunner: runner }));
    expect(kept.terminalStatus).toBe('completed');
    const success = eventsOf(await readRunEvents(store, kept.runId), 'NodeSucceeded')[0];
    expect(success?.data.exitCode).toBe(3);
    const other = await verified(await executePlaybook({ store, ...playbookFrom(withHandler(body.replace('process.exit(3)', 'process.exit(4)'), 'contract_violation', 'abort')), dispatcher: scriptedDispatcher(), deterministicRunner: runner }));
    expect(other).toMatchObject({ terminalStatus: 'exceeded_iteration_cap' });
    expect(other.errorContext).toContain('exited with code 4');
  });

  it('schema task_tree: a good tree passes; a bad one names the schema, the node and the path of the first issue', async () => {
    const source = withHandler(emits('{ schema: task_tree }'), 'contract_violation', 'abort');
    const good = scriptedDispatcher({ emit: [success({ task_tree: [{ title: 'a', acceptance: ['works'] }] })] });
    expect((await verified(await executePlaybook({ store, ...playbookFrom(source), dispatcher: good }))).terminalStatus).toBe('completed');
    const bad = scriptedDispatcher({ emit: [success({ task_tree: [{ title: '', acceptance: ['works'] }] })] });
    const failed = await verified(await executePlaybook({ store, ...playbookFrom(source), dispatcher: bad }));
    expect(failed).toMatchObject({ terminalStatus: 'failed', error: { cause: 'contract_violation' }, errorContext: 'ensures.schema[task_tree] on emit: expected a non-empty title at 0.title' });
  });

  it('schema from the host registry, with its key; an unknown name fails closed even without a handler', async () => {
    const schemas = { plan: { schema: z.object({ steps: z.array(z.string()).min(1) }), key: 'thePlan' } };
    const known = scriptedDispatcher({ emit: [success({ thePlan: { steps: [] } })] });
    const broken = await verified(await executePlaybook({ store, ...playbookFrom(withHandler(emits('{ schema: plan }'), 'contract_violation')), dispatcher: known, schemas }));
    expect(broken.terminalStatus).toBe('completed'); // no handler: recorded, goes on
    expect((await violations(broken.runId))[0]).toMatchObject({ kind: 'schema', key: 'plan' });
    expect((await violations(broken.runId))[0]?.message).toMatch(/^ensures\.schema\[plan\] on emit: .* at steps$/);

    const unknown = await verified(await executePlaybook({ store, ...playbookFrom(withHandler(emits('{ schema: plan }'), 'contract_violation')), dispatcher: known }));
    expect(unknown).toMatchObject({ terminalStatus: 'failed', error: { cause: 'contract_violation', nodeId: 'emit' } });
    expect(unknown.errorContext).toContain('unknown schema "plan"');
    expect((await violations(unknown.runId))[0]).toMatchObject({ kind: 'schema', failClosed: true });
  });
});

describe('escalation gates are gates like any other', () => {
  it('an approved escalation nobody resumed is runnable work: a worker resumes it', async () => {
    const dispatcher = scriptedDispatcher();
    const paused = await executePlaybook({ store, ...playbookFrom(withHandler(needsTopic, 'contract_violation', 'hitl_escalate')), dispatcher });
    await approveGate({ store, token: paused.approvalToken as string, approver: 'alice' });
    await createWorker({ store, dispatcher }).runUntilIdle();
    expect((await getRun(store, paused.runId))?.status).toBe('completed');
    expect(dispatcher.countOf('plan')).toBe(1);
    expect((await verifyRun(store, paused.runId)).problems).toEqual([]);
  });

  it("with the handler's timeout, the gate expires at its due time with a worker running: approval_expired", async () => {
    const clock = testClock();
    const source = `version: "1.0"\nname: expiring\nerror_handlers:\n  - { on: contract_violation, action: hitl_escalate, timeout: 1h, message: "plan without a topic?" }\n${needsTopic}`;
    const paused = await executePlaybook({ store, ...playbookFrom(source), dispatcher: scriptedDispatcher(), clock });
    const [pending] = await getPendingApprovals(store, { now: clock.now });
    expect(pending?.prompt).toMatch(/^plan without a topic\?: requires on 'plan'/);
    expect(pending?.expiresAt).toBe(new Date(clock.now().getTime() + 3600_000).toISOString());
    const worker = createWorker({ store, dispatcher: scriptedDispatcher(), clock });
    worker.start();
    try {
      await clock.advance(3600_000);
      await until(async () => (await getRun(store, paused.runId))?.status === 'failed', 'the worker expired the escalation gate');
    } finally {
      await worker.stop({ graceMs: 0 });
    }
    expect(await getRun(store, paused.runId)).toMatchObject({ error: { cause: 'approval_expired', nodeId: 'plan' } });
    expect((await verifyRun(store, paused.runId)).problems).toEqual([]);
  });

  it('a timeout on a handler that opens no gate is a parse error', () => {
    const source = `version: "1.0"\nname: x\nerror_handlers:\n  - { on: contract_violation, action: abort, timeout: 1h }\n${needsTopic}`;
    expect(() => parsePlaybook(source)).toThrow(expect.objectContaining({ issues: [expect.objectContaining({ code: 'I_HANDLER_NOT_ALLOWED', path: ['error_handlers', 0, 'timeout'] })] }));
  });
});

describe("an edge's contract.requires, checked when the edge is taken", () => {
  const body = `nodes:
  - { id: triage, type: agentic, skill: s }
  - { id: fix, type: agentic, skill: s }
  - { id: close, type: agentic, skill: s }
edges:
  - { from: triage, to: fix, when: { field: kind, equals: bug }, contract: { requires: [repro] } }
  - { from: triage, to: close }
`;
  it('taken without its key: violation (abort fails the run); the other edge checks nothing', async () => {
    const source = withHandler(body, 'contract_violation', 'abort');
    const bug = await verified(await executePlaybook({ store, ...playbookFrom(source), dispatcher: scriptedDispatcher({ triage: [success({ kind: 'bug' })] }) }));
    expect(bug).toMatchObject({ terminalStatus: 'failed', errorContext: "contract.requires on edge 'triage' -> 'fix': the context has no 'repro'" });
    expect((await violations(bug.runId))[0]).toMatchObject({ kind: 'edge', key: 'repro', to: 'fix' });
    const other = await verified(await executePlaybook({ store, ...playbookFrom(source), dispatcher: scriptedDispatcher({ triage: [success({ kind: 'question' })] }) }));
    expect(other.terminalStatus).toBe('completed');
    const kept = await verified(await executePlaybook({ store, ...playbookFrom(source), dispatcher: scriptedDispatcher({ triage: [success({ kind: 'bug', repro: 'steps' })] }) }));
    expect(kept.terminalStatus).toBe('completed');
  });
});

describe('iteration_cap_exceeded', () => {
  const body = `nodes:
  - { id: build, type: agentic, skill: s, on_failure: { max_iterations: 2 } }
`;
  it('hitl_escalate: a gate instead of the end; approved, one more round of the cap; rejected, the run fails', async () => {
    const dispatcher = scriptedDispatcher({ build: [failure('red'), failure('red'), failure('red'), success()] });
    const source = withHandler(body, 'iteration_cap_exceeded', 'hitl_escalate');
    const paused = await executePlaybook({ store, ...playbookFrom(source), dispatcher });
    expect(paused).toMatchObject({ terminalStatus: 'pending_approval', pausedNodeId: 'build' });
    expect(dispatcher.countOf('build')).toBe(2);
    await approveGate({ store, token: paused.approvalToken as string, approver: 'alice' });
    const done = await verified(await resumePlaybook({ store, approvalToken: paused.approvalToken as string, dispatcher }));
    expect(done.terminalStatus).toBe('completed');
    expect(dispatcher.countOf('build')).toBe(4); // attempt 3 failed, attempt 4 (the round's second) succeeded

    const again = await executePlaybook({ store, ...playbookFrom(source), dispatcher: scriptedDispatcher({ build: [failure('red')] }) });
    await rejectGate({ store, token: again.approvalToken as string, approver: 'bob', reason: 'stop' });
    expect(await getRun(store, again.runId)).toMatchObject({ status: 'failed', error: { cause: 'approval_rejected' } });
  });

  it('abort: ends exceeded_iteration_cap as without a handler', async () => {
    const result = await verified(await executePlaybook({ store, ...playbookFrom(withHandler(body, 'iteration_cap_exceeded', 'abort')), dispatcher: scriptedDispatcher({ build: [failure('red')] }) }));
    expect(result).toMatchObject({ terminalStatus: 'exceeded_iteration_cap', exceededNodeId: 'build' });
  });
});

describe('agentic_timeout', () => {
  const body = `nodes:
  - { id: think, type: agentic, skill: s, timeout: 1m, on_failure: { max_iterations: 3 } }
`;
  /** Attempt 1 hangs until aborted (its timeout); later attempts succeed at once. */
  function slowThenFast() {
    const calls: { context: Record<string, unknown> }[] = [];
    return {
      calls,
      dispatcher: {
        dispatch(request: Parameters<ReturnType<typeof scriptedDispatcher>['dispatch']>[0]) {
          calls.push({ context: request.context });
          if (calls.length > 1) return success({ think: 'done' });
          return new Promise<ReturnType<typeof success>>((resolve) => request.signal.addEventListener('abort', () => resolve(failure('stopped'))));
        },
      },
    };
  }

  it('abort: the first timed-out attempt fails the run (timed_out), no retry', async () => {
    const clock = testClock();
    const { dispatcher, calls } = slowThenFast();
    const running = executePlaybook({ store, ...playbookFrom(withHandler(body, 'agentic_timeout', 'abort')), dispatcher, clock });
    await until(() => calls.length === 1, 'attempt 1 dispatched');
    await clock.advance(60_000);
    const result = await verified(await running);
    expect(result).toMatchObject({ terminalStatus: 'failed', error: { cause: 'timed_out', nodeId: 'think' } });
    expect(calls).toHaveLength(1);
  });

  it('inject_hint: __timeoutHint is recorded and the retry sees it', async () => {
    const clock = testClock();
    const { dispatcher, calls } = slowThenFast();
    const running = executePlaybook({ store, ...playbookFrom(withHandler(body, 'agentic_timeout', 'inject_hint', 'split the work')), dispatcher, clock });
    await until(() => calls.length === 1, 'attempt 1 dispatched');
    await clock.advance(60_000);
    const result = await verified(await running);
    expect(result.terminalStatus).toBe('completed');
    expect(calls[1]?.context.__timeoutHint).toEqual({ nodeId: 'think', attempt: 1, message: 'split the work' });
  });

  it('hitl_escalate: a gate; approved and resumed, the node runs again', async () => {
    const clock = testClock();
    const { dispatcher, calls } = slowThenFast();
    const running = executePlaybook({ store, ...playbookFrom(withHandler(body, 'agentic_timeout', 'hitl_escalate')), dispatcher, clock });
    await until(() => calls.length === 1, 'attempt 1 dispatched');
    await clock.advance(60_000);
    const paused = await running;
    expect(paused).toMatchObject({ terminalStatus: 'pending_approval', pausedNodeId: 'think' });
    await approveGate({ store, token: paused.approvalToken as string, approver: 'alice', now: clock.now });
    const done = await verified(await resumePlaybook({ store, approvalToken: paused.approvalToken as string, dispatcher, clock }));
    expect(done.terminalStatus).toBe('completed');
    expect(calls).toHaveLength(2);
  });
});

describe('approval policies (SPEC §13)', () => {
  const gated = (policy: string, command: string, args: string) => `version: "1.0"
name: gated
nodes:
  - { id: build, type: agentic, skill: s }
  - { id: approve, type: approval, prompt: "go?", policy: ${policy}, depends: [build] }
  - { id: run, type: deterministic, command: ${command}, args: ${args}, depends: [approve] }
`;
  const runner: DeterministicRunner = { run: (request) => success({ [request.nodeId]: { exitCode: 0, stdout: '' } }) };

  it('permissive auto-passes before `pnpm test`: ApprovalGranted{auto, rule, approver: policy}, and the run goes on', async () => {
    const result = await verified(await executePlaybook({ store, ...playbookFrom(gated('permissive', 'pnpm', '[test]')), dispatcher: scriptedDispatcher(), deterministicRunner: runner }));
    expect(result.terminalStatus).toBe('completed');
    const granted = eventsOf(await readRunEvents(store, result.runId), 'ApprovalGranted');
    expect(granted.map((event) => event.data)).toEqual([
      expect.objectContaining({ nodeId: 'approve', approver: 'policy', auto: true, rule: 'safe-qa-tool' }),
    ]);
    expect(await getPendingApprovals(store)).toEqual([]);
  });

  it('permissive waits for a human before `npm publish`', async () => {
    const result = await executePlaybook({ store, ...playbookFrom(gated('permissive', 'npm', '[publish]')), dispatcher: scriptedDispatcher(), deterministicRunner: runner });
    expect(result).toMatchObject({ terminalStatus: 'pending_approval', pausedNodeId: 'approve' });
  });

  it('custom uses the host policyRules; without rules it waits; conservative always waits', async () => {
    const policyRules = [{ pattern: /^make check$/, action: 'auto-approve' as const, reason: 'house-check' }];
    const custom = await verified(await executePlaybook({ store, ...playbookFrom(gated('custom', 'make', '[check]')), dispatcher: scriptedDispatcher(), deterministicRunner: runner, policyRules }));
    expect(custom.terminalStatus).toBe('completed');
    expect(eventsOf(await readRunEvents(store, custom.runId), 'ApprovalGranted')[0]?.data).toMatchObject({ auto: true, rule: 'house-check' });
    const noRules = await executePlaybook({ store, ...playbookFrom(gated('custom', 'make', '[check]')), dispatcher: scriptedDispatcher(), deterministicRunner: runner });
    expect(noRules.terminalStatus).toBe('pending_approval');
    const conservative = await executePlaybook({ store, ...playbookFrom(gated('conservative', 'pnpm', '[test]')), dispatcher: scriptedDispatcher(), deterministicRunner: runner, policyRules });
    expect(conservative.terminalStatus).toBe('pending_approval');
  });

  it('malformed host rules given to a resume are refused before it takes the lease', async () => {
    const paused = await executePlaybook({ store, ...playbookFrom(gated('custom', 'make', '[check]')), dispatcher: scriptedDispatcher(), deterministicRunner: runner });
    await approveGate({ store, token: paused.approvalToken as string, approver: 'alice' });
    const before = await store.getLease(paused.runId);
    await expect(resumePlaybook({ store, approvalToken: paused.approvalToken as string, dispatcher: scriptedDispatcher(), policyRules: [{}] as never })).rejects.toMatchObject({ code: 'E_PLAYBOOK_RUNTIME_INVALID' });
    expect(await store.getLease(paused.runId)).toEqual(before); // no new lease taken (or left behind)
    expect(() => createWorker({ store, dispatcher: scriptedDispatcher(), policyRules: 'all' as never })).toThrow(expect.objectContaining({ code: 'E_PLAYBOOK_RUNTIME_INVALID' }));
  });

  it('malformed host rules are refused before any event', async () => {
    await expect(executePlaybook({ store, ...playbookFrom(gated('custom', 'make', '[check]')), dispatcher: scriptedDispatcher(), policyRules: [{ pattern: 'make', action: 'auto-approve', reason: 'x' }] as never })).rejects.toMatchObject({ code: 'E_PLAYBOOK_RUNTIME_INVALID' });
  });
});

describe('the fold refuses what the machine does not allow', () => {
  async function logOf(source: string, dispatcher = scriptedDispatcher()) {
    const result = await executePlaybook({ store, ...playbookFrom(source), dispatcher });
    const run = await loadRun(store, result.runId);
    return { events: await readRunEvents(store, result.runId), machine: run.playbook.machine };
  }
  const refuses = (machine: Parameters<typeof foldRun>[0], events: RunEvent[]) => expect(() => foldRun(machine, initialRunSnapshot(machine), events)).toThrow(FoldError);

  it('a success that skipped a failed check, a violation of a check that holds, a contract failure without a violation', async () => {
    const source = withHandler(`nodes:\n  - { id: emit, type: agentic, skill: s, ensures: { outputFiles: [plan] } }\n`, 'contract_violation', 'abort');
    const { events, machine } = await logOf(source);
    // [RunStarted, NodeStarted, ContractViolated, NodeSucceeded, RunFailed]
    expect(events.map((event) => event.type)).toEqual(['RunStarted', 'NodeStarted', 'ContractViolated', 'NodeSucceeded', 'RunFailed']);
    refuses(machine, [events[0], events[1], { ...events[3], seq: 3 }] as RunEvent[]);
    const kept = (events[3] as Extract<RunEvent, { type: 'NodeSucceeded' }>);
    refuses(machine, [events[0], events[1], events[2], { ...kept, data: { ...kept.data, output: { plan: 'there' } } }] as RunEvent[]);
    refuses(machine, [events[0], events[1], { ...events[4], seq: 3 }] as RunEvent[]);
    // A failure after a violation of the attempt's output: the runtime records the violation only with the success.
    refuses(machine, [events[0], events[1], events[2], { ...kept, type: 'NodeFailed', data: { nodeId: 'emit', attempt: 1, error: 'x' } }] as RunEvent[]);
  });

  it('a violation of a check the node does not declare, and failClosed on a check that is not a schema', async () => {
    const source = withHandler(`nodes:\n  - { id: emit, type: agentic, skill: s, ensures: { outputFiles: [plan] } }\n`, 'contract_violation');
    const { events, machine } = await logOf(source);
    const violated = events[2] as Extract<RunEvent, { type: 'ContractViolated' }>;
    refuses(machine, [events[0], events[1], { ...violated, data: { ...violated.data, kind: 'schema', key: 'task_tree' } }] as RunEvent[]);
    refuses(machine, [events[0], events[1], { ...violated, data: { ...violated.data, key: 'other' } }] as RunEvent[]);
    refuses(machine, [events[0], events[1], { ...violated, data: { ...violated.data, failClosed: true } }] as RunEvent[]);
  });

  it('a log written before contracts were enforced (no RunStarted.contracts) folds as it ran', () => {
    const source = withHandler(`nodes:\n  - { id: emit, type: agentic, skill: s, ensures: { outputFiles: [plan] } }\n`, 'contract_violation', 'abort');
    const at = '2026-01-01T00:00:00.000Z';
    const base = { runId: 'old-run', at, globalSeq: 0, hash: '' };
    const events = [
      { ...base, seq: 1, type: 'RunStarted', data: { playbookName: 'contracts', sourceHash: sha256Hex(source), source, context: {}, maxIterationsDefault: 3 } },
      { ...base, seq: 2, type: 'NodeStarted', data: { nodeId: 'emit', attempt: 1 } },
      { ...base, seq: 3, type: 'NodeSucceeded', data: { nodeId: 'emit', attempt: 1, output: {} } },
      { ...base, seq: 4, type: 'RunCompleted', data: {} },
    ] as RunEvent[];
    expect(foldStoredEvents('old-run', events).snapshot.value).toBe('completed');
    // The same log with the flag is refused: the success skipped a failed check.
    const flagged = events.map((event) => (event.type === 'RunStarted' ? { ...event, data: { ...event.data, contracts: true } } : event)) as RunEvent[];
    expect(() => foldStoredEvents('old-run', flagged)).toThrow(expect.objectContaining({ code: 'E_LOG_CORRUPT' }));
  });

  it('a permissive auto-pass the default rules do not give, and a rule other than theirs', async () => {
    const source = `version: "1.0"\nname: g\nnodes:\n  - { id: gate, type: approval, prompt: ok?, policy: permissive }\n  - { id: ship, type: deterministic, command: npm, args: [publish], depends: [gate] }\n`;
    const { events, machine } = await logOf(source);
    const paused = events[1] as Extract<RunEvent, { type: 'RunPaused' }>;
    const auto = { type: 'ApprovalGranted', data: { approvalId: paused.data.approvalId, nodeId: 'gate', approver: 'policy', reason: '', auto: true, rule: 'safe-qa-tool' }, at: paused.at, runId: paused.runId, seq: 3, globalSeq: 0, hash: '' } as RunEvent;
    refuses(machine, [...events, auto]);
  });

  it('an auto-pass on a conservative gate', async () => {
    const source = `version: "1.0"\nname: g\nnodes:\n  - { id: gate, type: approval, prompt: ok? }\n`;
    const { events, machine } = await logOf(source);
    const paused = events[1] as Extract<RunEvent, { type: 'RunPaused' }>;
    const auto = { type: 'ApprovalGranted', data: { approvalId: paused.data.approvalId, nodeId: 'gate', approver: 'policy', reason: '', auto: true, rule: 'x' }, at: paused.at, runId: paused.runId, seq: 3, globalSeq: 0, hash: '' } as RunEvent;
    refuses(machine, [...events, auto]);
  });
});

describe('API shapes (SPEC §3, §6)', () => {
  const text = `version: "1.0"\nname: coded\nnodes:\n  - { id: a, type: agentic, skill: s }\n`;

  it('a definition without source is pinned as its canonical JSON; its playbookHash is the reported hash', async () => {
    const { definition, sourceHash } = parsePlaybook(text);
    const result = await verified(await executePlaybook({ store, playbook: definition, playbookHash: sourceHash, dispatcher: scriptedDispatcher() }));
    const started = (await readRunEvents(store, result.runId))[0] as Extract<RunEvent, { type: 'RunStarted' }>;
    expect(JSON.parse(started.data.source)).toEqual(JSON.parse(JSON.stringify(definition)));
    expect(started.data.sourceHash).toBe(sha256Hex(started.data.source));
    expect(started.data.playbookHash).toBe(sourceHash);
    expect((await getRun(store, result.runId))?.playbookHash).toBe(sourceHash);
  });

  it('with source, a playbookHash that is not its SHA-256 is refused; a malformed one too', async () => {
    const { definition } = parsePlaybook(text);
    await expect(executePlaybook({ store, playbook: definition, source: text, playbookHash: '0'.repeat(64), dispatcher: scriptedDispatcher() })).rejects.toMatchObject({ code: 'E_PLAYBOOK_RUNTIME_INVALID' });
    await expect(executePlaybook({ store, playbook: definition, playbookHash: 'abc', dispatcher: scriptedDispatcher() })).rejects.toMatchObject({ code: 'E_PLAYBOOK_RUNTIME_INVALID' });
  });
});
