import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { executePlaybook } from '../../../src/runtime/executePlaybook.js';
import { readRunEvents, getRun, verifyRun } from '../../../src/runtime/queries.js';
import type { EventStore } from '../../../src/store/eventStore.js';
import { failure, playbookFrom, scriptedDispatcher, success, tempStore } from '../../helpers/runtimeHarness.js';

let store: EventStore;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ store, cleanup } = await tempStore()));
afterEach(() => cleanup());

const linear = playbookFrom(`
version: "1.0"
name: linear
inputs:
  - { name: epicId, required: true }
  - { name: scope, default: global }
  - { name: plan }
nodes:
  - { id: a, type: agentic, skill: sa, inputs: { epic: "{{inputs.epicId}}", prev: "{{missing.key}}" } }
  - { id: b, type: agentic, agent: ab, skill: sb, depends: [a], model: m1, allowed_tools: [grep] }
  - { id: c, type: agentic, skill: sc, depends: [b] }
`);

const types = async (runId: string) => (await readRunEvents(store, runId)).map((e) => e.type);

describe('executePlaybook: linear runs', () => {
  it('merges each output into the context in order and completes', async () => {
    const dispatcher = scriptedDispatcher({
      a: [success({ x: 1, shared: 'a' })],
      b: [success({ y: 2, shared: 'b' })],
      c: [success({ z: 3 })],
    });
    const result = await executePlaybook({ store, ...linear, initialContext: { epicId: 'E1' }, dispatcher });
    expect(result.terminalStatus).toBe('completed');
    expect(result.finalContext).toEqual({ epicId: 'E1', scope: 'global', x: 1, y: 2, z: 3, shared: 'b' });
    expect(dispatcher.calls.map((c) => c.nodeId)).toEqual(['a', 'b', 'c']);
    expect(await types(result.runId)).toEqual([
      'RunStarted', 'NodeStarted', 'NodeSucceeded', 'NodeStarted', 'NodeSucceeded', 'NodeStarted', 'NodeSucceeded', 'RunCompleted',
    ]);
    const row = await getRun(store, result.runId);
    expect(row).toMatchObject({ status: 'completed', currentNode: null, iterationCounts: { a: 1, b: 1, c: 1 }, playbookName: 'linear' });
    expect((await verifyRun(store, result.runId)).ok).toBe(true);
  });

  it('hands agentic nodes the agent id, bindings, pins, taskId and idempotency key (SPEC §4)', async () => {
    const dispatcher = scriptedDispatcher({ a: [success({ taskId: 'T-9' })] });
    const result = await executePlaybook({ store, ...linear, initialContext: { epicId: 'E1' }, dispatcher });
    const [a, b] = dispatcher.calls;
    expect(a).toMatchObject({ agentId: 'sa', taskId: result.runId, bindings: { epic: 'E1', prev: '{{missing.key}}' }, iteration: 1, playbookName: 'linear' });
    expect(a?.idempotencyKey).toBe(`${result.runId}:a:1`);
    expect(b).toMatchObject({ agentId: 'ab', taskId: 'T-9', model: 'm1', allowed_tools: ['grep'] });
    expect(b).not.toHaveProperty('provider');
  });

  it('gives dispatchers a copy of the context: mutating it changes nothing', async () => {
    const dispatcher = {
      dispatch(request: { context: Record<string, unknown> }) {
        request.context.epicId = 'tampered';
        return success();
      },
    };
    const result = await executePlaybook({ store, ...linear, initialContext: { epicId: 'E1' }, dispatcher });
    expect(result.finalContext.epicId).toBe('E1');
  });

  it('the copy is deep, and each dispatch sees the outputs before it (the copy is made when the context is read)', async () => {
    const seen: unknown[] = [];
    const dispatcher = {
      dispatch(request: { nodeId: string; context: Record<string, unknown> }) {
        seen.push(structuredClone(request.context));
        (request.context.plan as { steps: string[] }).steps.push('tampered');
        delete request.context.plan;
        return success({ [`out_${request.nodeId}`]: request.nodeId });
      },
    };
    const result = await executePlaybook({ store, ...linear, initialContext: { epicId: 'E1', plan: { steps: ['one'] } }, dispatcher });
    expect(result.finalContext.plan).toEqual({ steps: ['one'] });
    expect(seen).toEqual([
      { epicId: 'E1', scope: 'global', plan: { steps: ['one'] } },
      { epicId: 'E1', scope: 'global', plan: { steps: ['one'] }, out_a: 'a' },
      { epicId: 'E1', scope: 'global', plan: { steps: ['one'] }, out_a: 'a', out_b: 'b' },
    ]);
  });

  it("an agent's output key __proto__ stays an own context key, never the context's prototype (live, replay and projection agree)", async () => {
    const hostile = JSON.parse('{"__proto__": {"polluted": true}, "x": 1}') as Record<string, unknown>;
    const dispatcher = { dispatch: (request: { nodeId: string }) => success(request.nodeId === 'a' ? hostile : {}) };
    const result = await executePlaybook({ store, ...linear, initialContext: { epicId: 'E1' }, dispatcher });
    expect(Object.hasOwn(result.finalContext, '__proto__')).toBe(true);
    expect((result.finalContext as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(result.finalContext)).toBe(Object.prototype);
    expect((await verifyRun(store, result.runId)).ok).toBe(true);
    const row = await store.getRun(result.runId);
    expect(Object.hasOwn(row?.bindings ?? {}, '__proto__')).toBe(true);
  });

  it('a context read only after its dispatch settled throws instead of showing a later one', async () => {
    const kept: { nodeId: string; context: Record<string, unknown> }[] = [];
    const dispatcher = {
      dispatch(request: { nodeId: string; context: Record<string, unknown> }) {
        kept.push(request);
        if (request.nodeId === 'a') void request.context; // read during the call: that copy stays readable
        return success({ [`out_${request.nodeId}`]: 1 });
      },
    };
    await executePlaybook({ store, ...linear, initialContext: { epicId: 'E1' }, dispatcher });
    expect(kept[0]?.context).toEqual({ epicId: 'E1', scope: 'global' });
    expect(() => kept[1]?.context).toThrow(/context of b attempt 1 was read after its dispatch settled/);
  });

  it('refuses a missing required input before writing any event', async () => {
    const dispatcher = scriptedDispatcher();
    await expect(executePlaybook({ store, ...linear, initialContext: {}, dispatcher })).rejects.toMatchObject({ code: 'E_INPUT_MISSING' });
    expect(await store.listRunIds()).toEqual([]);
    expect(dispatcher.calls).toEqual([]);
  });

  it('refuses an input the playbook does not declare, naming the declared ones and the closest, before any event', async () => {
    const dispatcher = scriptedDispatcher();
    const refused = executePlaybook({ store, ...linear, initialContext: { epicId: 'E1', scop: 'team' }, dispatcher });
    await expect(refused).rejects.toMatchObject({
      code: 'E_INPUT_UNKNOWN',
      message: "playbook 'linear' does not declare input 'scop' (did you mean 'scope'?); it declares 'epicId', 'scope', 'plan'",
      details: { unknown: ['scop'], declared: ['epicId', 'scope', 'plan'] },
    });
    expect(await store.listRunIds()).toEqual([]);
    expect(dispatcher.calls).toEqual([]);
    // A playbook that declares no inputs takes any initial context.
    const open = playbookFrom(`version: "1.0"\nname: open\nnodes:\n  - { id: a, type: agentic, skill: s }\n`);
    expect((await executePlaybook({ store, ...open, initialContext: { anything: 1 }, dispatcher })).terminalStatus).toBe('completed');
  });

  it('commits once per step: a result shares its transaction with the next NodeStarted', async () => {
    let appends = 0;
    const counting: EventStore = { ...store, append: (request) => { appends += 1; return store.append(request); } } as EventStore;
    for (const method of ['readRun', 'getRun', 'listRuns', 'getApproval', 'listApprovals', 'getPlaybookSource', 'listRunIds', 'readAll', 'replaceProjections', 'close', 'acquireLease', 'renewLease', 'releaseLease', 'getLease', 'claimRuns', 'nextWakeAt'] as const) {
      (counting as unknown as Record<string, unknown>)[method] = (store[method] as (...args: unknown[]) => unknown).bind(store);
    }
    await executePlaybook({ store: counting, ...linear, initialContext: { epicId: 'E1' }, dispatcher: scriptedDispatcher() });
    // [RunStarted, NodeStarted a] [a done, NodeStarted b] [b done, NodeStarted c] [c done, RunCompleted]
    expect(appends).toBe(4);
  });
});

const capped = (cap: number) =>
  playbookFrom(`
version: "1.0"
name: capped
nodes:
  - id: only
    type: agentic
    skill: s
    on_failure: { max_iterations: ${cap} }
`);

describe('executePlaybook: retries and caps', () => {
  it('cap 2, always failing: exactly 2 dispatches, then exceeded_iteration_cap', async () => {
    const dispatcher = scriptedDispatcher({ only: [failure('nope'), failure('still broken')] });
    const result = await executePlaybook({ store, ...capped(2), dispatcher });
    expect(dispatcher.countOf('only')).toBe(2);
    expect(result).toMatchObject({ terminalStatus: 'exceeded_iteration_cap', exceededNodeId: 'only' });
    expect(result.error).toMatchObject({ cause: 'exceeded_iteration_cap', nodeId: 'only' });
    // The run's error says why the last attempt failed, not only that the cap was reached.
    expect(result.errorContext).toMatch(/cap of 2 attempt\(s\); last error: still broken$/);
    expect((await getRun(store, result.runId))?.status).toBe('failed');
  });

  it('cap 0: the first failure is final (one dispatch)', async () => {
    const dispatcher = scriptedDispatcher({ only: [failure()] });
    const result = await executePlaybook({ store, ...capped(0), dispatcher });
    expect(dispatcher.countOf('only')).toBe(1);
    expect(result.terminalStatus).toBe('exceeded_iteration_cap');
  });

  it('a dispatcher that throws is a node failure, retried like any other', async () => {
    const dispatcher = scriptedDispatcher({ only: ['throw', success({ ok: true })] });
    const result = await executePlaybook({ store, ...capped(2), dispatcher });
    expect(result.terminalStatus).toBe('completed');
    const failed = (await readRunEvents(store, result.runId)).find((e) => e.type === 'NodeFailed');
    expect(failed?.data).toMatchObject({ nodeId: 'only', attempt: 1, error: 'scripted throw in only' });
  });

  it('a malformed outcome is a failure, not a crash', async () => {
    const dispatcher = { dispatch: () => ({ status: 'maybe' }) as never };
    const result = await executePlaybook({ store, ...capped(1), dispatcher });
    expect(result.terminalStatus).toBe('exceeded_iteration_cap');
  });

  it('uses maxIterationsDefault for nodes without max_iterations', async () => {
    const pb = playbookFrom(`version: "1.0"\nname: d\nnodes:\n  - { id: n, type: agentic, skill: s }\n`);
    const dispatcher = scriptedDispatcher({ n: [failure()] });
    await executePlaybook({ store, ...pb, dispatcher, maxIterationsDefault: 5 });
    expect(dispatcher.countOf('n')).toBe(5);
    const again = scriptedDispatcher({ n: [failure()] });
    await executePlaybook({ store, ...pb, dispatcher: again });
    expect(again.countOf('n')).toBe(3);
  });
});

const ivtr = playbookFrom(`
version: "1.0"
name: ivtr
inputs: [{ name: taskId, required: true }]
nodes:
  - { id: implement, type: agentic, skill: impl, on_failure: { max_iterations: 3 } }
  - { id: validate, type: agentic, skill: val, depends: [implement], on_failure: { max_iterations: 2, inject_into: implement } }
  - { id: test, type: agentic, skill: tst, depends: [validate], on_failure: { max_iterations: 2, inject_into: implement } }
`);

describe('executePlaybook: inject_into escalation', () => {
  it('validate fails twice then passes: implement 3x, validate 3x, test 1x, completed', async () => {
    const dispatcher = scriptedDispatcher({ validate: [failure('v1'), failure('v2'), success({ valid: true })] });
    const result = await executePlaybook({ store, ...ivtr, initialContext: { taskId: 'T1' }, dispatcher });
    expect(result.terminalStatus).toBe('completed');
    expect([dispatcher.countOf('implement'), dispatcher.countOf('validate'), dispatcher.countOf('test')]).toEqual([3, 3, 1]);
    // The context carries the last error into the retried node.
    const secondImplement = dispatcher.calls.filter((c) => c.nodeId === 'implement')[1];
    expect(secondImplement?.context).toMatchObject({ __lastError: 'v1', __lastFailedNode: 'validate' });
    expect(secondImplement?.taskId).toBe('T1');
    const escalations = (await readRunEvents(store, result.runId)).filter((e) => e.type === 'NodeEscalated');
    expect(escalations.map((e) => e.data)).toEqual([
      { from: 'validate', to: 'implement', error: 'v1' },
      { from: 'validate', to: 'implement', error: 'v2' },
    ]);
  });

  it('an inject_into node that always fails terminates: cap escalations, then exceeded_iteration_cap', async () => {
    const dispatcher = scriptedDispatcher({ validate: [failure('never')] });
    const result = await executePlaybook({ store, ...ivtr, initialContext: { taskId: 'T1' }, dispatcher });
    expect(result).toMatchObject({ terminalStatus: 'exceeded_iteration_cap', exceededNodeId: 'validate' });
    expect(dispatcher.countOf('validate')).toBe(3);
    expect(dispatcher.countOf('implement')).toBe(3);
  });

  it('escalation resets the target cap: implement may fail again after each escalation', async () => {
    const dispatcher = scriptedDispatcher({
      implement: [success(), failure('i'), success(), success()],
      validate: [failure('v'), success()],
    });
    const result = await executePlaybook({ store, ...ivtr, initialContext: { taskId: 'T1' }, dispatcher });
    expect(result.terminalStatus).toBe('completed');
    expect(dispatcher.countOf('implement')).toBe(3);
  });
});

const branching = playbookFrom(`
version: "1.0"
name: branching
nodes:
  - { id: check, type: agentic, skill: s }
  - { id: fast, type: agentic, skill: f }
  - { id: slow, type: agentic, skill: sl }
  - { id: fallback, type: agentic, skill: fb }
edges:
  - { from: check, to: fast, when: { field: result.speed, equals: fast } }
  - { from: check, to: slow, when: { field: result.speed, in: [slow, glacial] } }
  - { from: check, to: fallback }
`);

const noDefault = playbookFrom(`
version: "1.0"
name: nodefault
nodes:
  - { id: check, type: agentic, skill: s }
  - { id: yes, type: agentic, skill: y }
  - { id: also, type: agentic, skill: a }
edges:
  - { from: check, to: yes, when: { field: ok, truthy: true } }
  - { from: check, to: also, when: { field: ok, exists: true } }
`);

describe('executePlaybook: when branching', () => {
  it.each([
    [{ result: { speed: 'fast' } }, 'fast'],
    [{ result: { speed: 'glacial' } }, 'slow'],
    [{ result: { speed: 'medium' } }, 'fallback'],
    [{}, 'fallback'],
  ])('output %j takes the edge to %s', async (output, expected) => {
    const dispatcher = scriptedDispatcher({ check: [success(output)] });
    const result = await executePlaybook({ store, ...branching, dispatcher });
    expect(result.terminalStatus).toBe('completed');
    expect(dispatcher.calls.map((c) => c.nodeId)).toEqual(['check', expected]);
  });

  it('no edge holding and no default fails the run with cause no_branch', async () => {
    const dispatcher = scriptedDispatcher({ check: [success({})] });
    const result = await executePlaybook({ store, ...noDefault, dispatcher });
    expect(result).toMatchObject({ terminalStatus: 'failed', failedNodeId: 'check', error: { cause: 'no_branch' } });
    expect(await types(result.runId)).toEqual(['RunStarted', 'NodeStarted', 'NodeSucceeded', 'RunFailed']);
  });

  it('two guarded edges holding fails the run with cause ambiguous_branch', async () => {
    const dispatcher = scriptedDispatcher({ check: [success({ ok: true })] });
    const result = await executePlaybook({ store, ...noDefault, dispatcher });
    expect(result.error).toMatchObject({ cause: 'ambiguous_branch', nodeId: 'check' });
    expect(dispatcher.calls).toHaveLength(1);
  });
});

describe('executePlaybook: deterministic nodes', () => {
  const det = playbookFrom(`
version: "1.0"
name: det
inputs: [{ name: who, default: world }, { name: count }]
nodes:
  - { id: greet, type: deterministic, command: echo, args: ["hello {{inputs.who}}", "{{count}}"], cwd: "/tmp/{{inputs.who}}", env: { A: b, WHO: "{{inputs.who}}" }, timeout_ms: 500 }
`);

  it('go to the runner with rendered args, cwd, env and timeout (cwd and env read the inputs only, never the environment)', async () => {
    const runs: unknown[] = [];
    const runner = { run: (request: unknown) => (runs.push(request), success({ ran: true })) };
    const result = await executePlaybook({ store, ...det, initialContext: { count: 2 }, dispatcher: scriptedDispatcher(), deterministicRunner: runner });
    expect(result.finalContext.ran).toBe(true);
    expect(runs[0]).toMatchObject({ command: 'echo', args: ['hello world', '2'], cwd: '/tmp/world', timeout_ms: 500, iteration: 1 });
    expect((runs[0] as { env: unknown }).env).toEqual({ A: 'b', WHO: 'world' });
  });

  it('fall back to the dispatcher as deterministic:<command> when there is no runner', async () => {
    const dispatcher = scriptedDispatcher();
    await executePlaybook({ store, ...det, dispatcher });
    expect(dispatcher.calls[0]).toMatchObject({ agentId: 'deterministic:echo', args: ['hello world', '{{count}}'] });
  });
});

describe('executePlaybook: independence and failure handling', () => {
  it('two concurrent runs on one store stay independent', async () => {
    const slow = {
      async dispatch(request: { nodeId: string; context: Record<string, unknown> }) {
        await new Promise((resolve) => setImmediate(resolve));
        return success({ [`${request.nodeId}_of`]: request.context.epicId });
      },
    };
    const [r1, r2] = await Promise.all([
      executePlaybook({ store, ...linear, initialContext: { epicId: 'one' }, dispatcher: slow }),
      executePlaybook({ store, ...linear, initialContext: { epicId: 'two' }, dispatcher: slow }),
    ]);
    expect(r1.finalContext).toMatchObject({ a_of: 'one', c_of: 'one' });
    expect(r2.finalContext).toMatchObject({ a_of: 'two', c_of: 'two' });
    for (const r of [r1, r2]) expect((await verifyRun(store, r.runId)).ok).toBe(true);
    expect((await readRunEvents(store, r1.runId)).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('an output that is not JSON-safe is stored as JSON: the live context equals the replayed one', async () => {
    const dispatcher = scriptedDispatcher({ a: [{ status: 'success', output: { when: new Date(0), gone: undefined } }] });
    const result = await executePlaybook({ store, ...linear, initialContext: { epicId: 'E' }, dispatcher });
    expect(result.finalContext.when).toBe('1970-01-01T00:00:00.000Z');
    expect('gone' in result.finalContext).toBe(false);
    expect((await verifyRun(store, result.runId)).ok).toBe(true);
  });

  it('an internal error never leaves the run running: it is recorded as RunFailed', async () => {
    let calls = 0;
    const flaky: EventStore = Object.create(store) as EventStore;
    flaky.append = async (request) => {
      calls += 1;
      if (calls === 2) throw new Error('disk hiccup');
      return store.append(request);
    };
    await expect(executePlaybook({ store: flaky, ...linear, initialContext: { epicId: 'E' }, dispatcher: scriptedDispatcher() })).rejects.toThrow('disk hiccup');
    const [runId] = await store.listRunIds();
    const row = await getRun(store, runId as string);
    expect(row).toMatchObject({ status: 'failed', error: { cause: 'internal_error' } });
    expect((await verifyRun(store, runId as string)).ok).toBe(true);
  });

  it('opens a gate with no secret anywhere (no option, no CANTBOOK_SECRET): the token is a random credential', async () => {
    const gate = playbookFrom(`version: "1.0"\nname: g\nnodes:\n  - { id: ok, type: approval, prompt: go? }\n`);
    const saved = process.env.CANTBOOK_SECRET;
    delete process.env.CANTBOOK_SECRET;
    try {
      const paused = await executePlaybook({ store, ...gate, dispatcher: scriptedDispatcher() });
      expect(paused.terminalStatus).toBe('pending_approval');
      expect(paused.approvalToken).toMatch(/^cbk1\.[0-9a-f-]+\.[A-Za-z0-9_-]{43}$/);
    } finally {
      if (saved !== undefined) process.env.CANTBOOK_SECRET = saved;
    }
  });
});
