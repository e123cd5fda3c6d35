/**
 * Properties of the runtime over random playbooks and random outcome scripts
 * (SPEC §3–5): every run terminates within a bound computed from the caps, no
 * node exceeds its cap, replaying the log gives the live state, projections
 * equal the fold, and a prefix fold continued with the rest equals the whole.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentDispatcher, NodeOutcome } from '../../src/adapters/types.js';
import { foldRun, initialRunSnapshot } from '../../src/compiler/foldRun.js';
import type { RunEvent } from '../../src/events/types.js';
import { stringify } from 'yaml';
import type { PlaybookDefinition } from '../../src/playbook/types.js';
import { toApprovalRows, toRunRow } from '../../src/projections/projectRun.js';
import { executePlaybook } from '../../src/runtime/executePlaybook.js';
import { approveGate, rejectGate, resumePlaybook } from '../../src/runtime/gates.js';
import { foldStoredEvents } from '../../src/runtime/loadRun.js';
import { retryRun } from '../../src/runtime/runControl.js';
import { remainingNodes } from '../../src/compiler/remainingNodes.js';
import { isRedrivable } from '../../src/compiler/runState.js';
import { readRunEvents, verifyRun } from '../../src/runtime/queries.js';
import type { PlaybookResult } from '../../src/runtime/runSession.js';
import type { EventStore } from '../../src/store/eventStore.js';
import { manualClock, SECRET, tempStore } from '../helpers/runtimeHarness.js';
import { playbookDefinitionArbitrary } from './arbitraries/playbookArbitrary.js';

const seed = Number(process.env['FC_SEED'] ?? 4_242_017);
const numRuns = Number(process.env['FC_RUNS'] ?? 120);
console.info(`runtimeInvariants: fast-check seed ${seed}, ${numRuns} runs (set FC_SEED / FC_RUNS to change)`);

/** What a dispatch returns: outputs touch the fields `when` conditions read. */
const outcomeArbitrary: fc.Arbitrary<NodeOutcome | 'throw'> = fc.oneof(
  { weight: 5, arbitrary: fc.record({
    status: fc.constant('success' as const),
    output: fc.record({
      status: fc.constantFrom('ok', 'bad', 'a', 'b'),
      score: fc.integer({ min: -2, max: 2 }),
      route: fc.oneof(fc.constantFrom('x', 'y'), fc.boolean(), fc.constant(null)),
      review: fc.record({ verdict: fc.constantFrom('pass', 'fail') }),
      flags: fc.record({ fast: fc.boolean() }),
      // What contracts check (SPEC §13): an exit code, a task tree that keeps or breaks the built-in schema.
      exitCode: fc.constantFrom(0, 1),
      task_tree: fc.constantFrom([{ title: 't', acceptance: ['done'] }], [{ title: '', acceptance: [] }]),
    }, { requiredKeys: [] }),
  }) },
  { weight: 3, arbitrary: fc.record({ status: fc.constant('failure' as const), error: fc.constantFrom('boom', 'flaky', 'nope') }) },
  { weight: 1, arbitrary: fc.constant('throw' as const) },
);

const scenarioArbitrary = fc.record({
  definition: playbookDefinitionArbitrary({ maxNodes: 7 }),
  outcomes: fc.array(outcomeArbitrary, { maxLength: 120 }),
  decisions: fc.array(fc.constantFrom('approve', 'reject'), { maxLength: 10 }),
  maxIterationsDefault: fc.integer({ min: 0, max: 4 }),
});

/** Plays outcomes in order; once the script runs out every dispatch succeeds with nothing. */
function scriptedBy(outcomes: readonly (NodeOutcome | 'throw')[]): AgentDispatcher & { count: number } {
  const d = {
    count: 0,
    dispatch(): NodeOutcome {
      const next = outcomes[d.count];
      d.count += 1;
      if (next === 'throw') throw new Error('dispatcher threw');
      return next ?? { status: 'success', output: {} };
    },
  };
  return d;
}

/**
 * Upper bound on dispatches: (escalations possible + 1) passes, each at most
 * max(cap,1) attempts per node; every fresh round a human granted (an
 * approved iteration_cap_exceeded escalation gate, SPEC §13) allows at most
 * that much again.
 */
function dispatchBound(definition: PlaybookDefinition, maxIterationsDefault: number, freshRounds = 0): number {
  const caps = definition.nodes.map((n) => n.on_failure?.max_iterations ?? maxIterationsDefault);
  const escalations = definition.nodes.reduce((sum, n, i) => sum + (n.on_failure?.inject_into ? caps[i]! : 0), 0);
  return (freshRounds + 1) * (escalations + 1) * caps.reduce((sum, cap) => sum + Math.max(cap, 1), 0);
}

/** The escalation gates that granted a node a fresh round of its cap and were resumed: approvalId -> node. */
function freshRoundsOf(events: readonly RunEvent[]): Map<string, string> {
  const opened = new Map<string, string>();
  for (const event of events) {
    if (event.type === 'RunPaused' && event.data.escalation !== undefined && event.data.escalation.on !== 'contract_violation') opened.set(event.data.approvalId, event.data.nodeId);
  }
  const resumed = new Map<string, string>();
  for (const event of events) if (event.type === 'RunResumed' && opened.has(event.data.approvalId)) resumed.set(event.data.approvalId, event.data.nodeId);
  return resumed;
}

/** A value for every declared input, so required ones are present. */
function inputsFor(definition: PlaybookDefinition): Record<string, unknown> {
  return Object.fromEntries(definition.inputs.map((input) => [input.name, `${input.name}-value`]));
}

let store: EventStore;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ store, cleanup } = await tempStore()));
afterAll(() => cleanup());

/** Runs a scenario to its end, deciding gates from the script (approve when it runs out). */
type Scenario = typeof scenarioArbitrary extends fc.Arbitrary<infer T> ? T : never;

async function play(scenario: Scenario): Promise<{ result: PlaybookResult; dispatches: number; events: RunEvent[] }> {
  const dispatcher = scriptedBy(scenario.outcomes);
  const clock = manualClock();
  const options = { dispatcher, approvalSecret: SECRET, now: clock.now };
  const source = stringify(scenario.definition);
  const initialContext = inputsFor(scenario.definition);
  let result = await executePlaybook({ store, playbook: scenario.definition, source, initialContext, maxIterationsDefault: scenario.maxIterationsDefault, ...options });
  for (let gate = 0; result.terminalStatus === 'pending_approval'; gate++) {
    expect(gate).toBeLessThanOrEqual(scenario.definition.nodes.length * 11);
    const token = result.approvalToken as string;
    if (scenario.decisions[gate] === 'reject') {
      result = (await rejectGate({ store, token, approver: 'p', reason: 'r', ...options })).result as PlaybookResult;
    } else {
      await approveGate({ store, token, approver: 'p', ...options });
      result = await resumePlaybook({ store, approvalToken: token, ...options });
    }
  }
  return { result, dispatches: dispatcher.count, events: await readRunEvents(store, result.runId) };
}

describe('runtime invariants (fast-check)', () => {
  const seen = new Set<string>();
  it('every run terminates within the cap bound, and no node exceeds its cap', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArbitrary, async (scenario) => {
        const { result, dispatches, events } = await play(scenario);
        expect(['completed', 'failed', 'exceeded_iteration_cap']).toContain(result.terminalStatus);
        const fresh = freshRoundsOf(events);
        expect(dispatches).toBeLessThanOrEqual(dispatchBound(scenario.definition, scenario.maxIterationsDefault, fresh.size));
        // Replay the log: retries in place (a node restarted right after its own failure) stay
        // within max(cap, 1) attempts; a node escalates at most cap times; a node with
        // inject_into never retries in place.
        const streak = new Map<string, number>();
        const escalations = new Map<string, number>();
        let previous: RunEvent | undefined;
        for (const event of events) {
          // A fresh round granted by a human starts the node's counts again.
          if (event.type === 'RunResumed' && fresh.has(event.data.approvalId)) escalations.delete(event.data.nodeId);
          if (event.type === 'NodeStarted') {
            const { nodeId } = event.data;
            const retry = previous?.type === 'NodeFailed' && previous.data.nodeId === nodeId;
            streak.set(nodeId, retry ? (streak.get(nodeId) ?? 0) + 1 : 1);
            const node = scenario.definition.nodes.find((n) => n.id === nodeId);
            const cap = node?.on_failure?.max_iterations ?? scenario.maxIterationsDefault;
            expect(streak.get(nodeId)).toBeLessThanOrEqual(Math.max(cap, 1));
            if (retry) expect(node?.on_failure?.inject_into).toBeUndefined();
          }
          if (event.type === 'NodeEscalated') {
            escalations.set(event.data.from, (escalations.get(event.data.from) ?? 0) + 1);
            const cap = scenario.definition.nodes.find((n) => n.id === event.data.from)?.on_failure?.max_iterations ?? scenario.maxIterationsDefault;
            expect(escalations.get(event.data.from)).toBeLessThanOrEqual(cap);
          }
          previous = event;
        }
        expect(events.at(-1)?.type).toMatch(/^Run(Completed|Failed)$/);
        for (const event of events) {
          if (event.type === 'ContractViolated') seen.add(`violated:${event.data.kind}`);
          if (event.type === 'RunPaused' && event.data.escalation !== undefined) seen.add(`escalation:${event.data.escalation.on}`);
          if (event.type === 'RunFailed') seen.add(`failed:${event.data.cause}`);
          if (event.type === 'ApprovalGranted' && event.data.auto === true) seen.add('auto-pass');
        }
      }),
      { seed, numRuns },
    );
    // The random contracts and handlers were acted on, not only generated (SPEC §13).
    for (const what of ['violated:requires', 'violated:outputFiles', 'violated:schema', 'violated:edge', 'escalation:contract_violation', 'escalation:iteration_cap_exceeded', 'failed:contract_violation']) expect(seen, what).toContain(what);
  });

  it('replaying the log gives the live result; projections equal the fold; prefix + rest = whole', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArbitrary, fc.nat(), async (scenario, cut) => {
        const { result, events } = await play(scenario);
        const { playbook, snapshot } = foldStoredEvents(result.runId, events);
        expect(snapshot.context.context).toEqual(result.finalContext);
        expect(snapshot.value === result.terminalStatus || (snapshot.value === 'failed' && result.terminalStatus === 'failed')).toBe(true);
        expect(toRunRow(playbook.model, snapshot)).toEqual(await store.getRun(result.runId));
        const byId = (rows: { approvalId: string }[]) => [...rows].sort((a, b) => a.approvalId.localeCompare(b.approvalId));
        expect(byId(toApprovalRows(snapshot))).toEqual(byId(await store.listApprovals({ runId: result.runId })));
        expect((await verifyRun(store, result.runId)).ok).toBe(true);
        const at = cut % (events.length + 1);
        const prefix = foldRun(playbook.machine, initialRunSnapshot(playbook.machine), events.slice(0, at));
        const whole = foldRun(playbook.machine, prefix, events.slice(at));
        expect(whole.value).toEqual(snapshot.value);
        expect(whole.context).toEqual(snapshot.context);
      }),
      { seed: seed + 1, numRuns },
    );
  });

  it('every node that starts later is among the remaining nodes of every earlier state, a retry included (SPEC §7)', async () => {
    let retried = 0;
    let narrowed = 0;
    await fc.assert(
      fc.asyncProperty(scenarioArbitrary, async (scenario) => {
        const { result } = await play(scenario);
        if (result.terminalStatus !== 'completed' && isRedrivable(result.error)) {
          await retryRun({ store, runId: result.runId, by: 'p', dispatcher: scriptedBy([]), approvalSecret: SECRET }).catch(() => undefined);
          retried += 1;
        }
        const events = await readRunEvents(store, result.runId);
        const { playbook } = foldStoredEvents(result.runId, events);
        const { machine, model } = playbook;
        // Walk the log backwards once: the nodes started after each event.
        const startedAfter: Set<string>[] = [];
        let later = new Set<string>();
        for (let i = events.length - 1; i >= 0; i--) {
          startedAfter[i] = later;
          const event = events[i] as RunEvent;
          if (event.type === 'NodeStarted') later = new Set([...later, event.data.nodeId]);
        }
        let snapshot = initialRunSnapshot(machine);
        events.forEach((event, i) => {
          snapshot = foldRun(machine, snapshot, [event]);
          const remaining = remainingNodes(model, snapshot);
          for (const nodeId of startedAfter[i] as Set<string>) expect(remaining, `after #${event.seq} ${event.type}`).toContain(nodeId);
          if (remaining.size < model.nodes.size) narrowed += 1;
        });
      }),
      { seed: seed + 5, numRuns },
    );
    // Failed runs were retried, and the remaining nodes were fewer than all of them (the check is not vacuous).
    expect(retried).toBeGreaterThan(5);
    expect(narrowed).toBeGreaterThan(numRuns);
  });

  it('resuming a token twice runs downstream nodes once', async () => {
    const gated = playbookDefinitionArbitrary({ maxNodes: 6 }).filter((d) => d.nodes.some((n) => n.type === 'approval'));
    await fc.assert(
      fc.asyncProperty(gated, fc.array(outcomeArbitrary, { maxLength: 40 }), async (definition, outcomes) => {
        const dispatcher = scriptedBy(outcomes);
        const clock = manualClock();
        const options = { dispatcher, approvalSecret: SECRET, now: clock.now };
        let result = await executePlaybook({ store, playbook: definition, initialContext: inputsFor(definition), ...options });
        while (result.terminalStatus === 'pending_approval') {
          const token = result.approvalToken as string;
          await approveGate({ store, token, approver: 'p', ...options });
          const settled = await Promise.allSettled([resumePlaybook({ store, approvalToken: token, ...options }), resumePlaybook({ store, approvalToken: token, ...options })]);
          const won = settled.filter((s): s is PromiseFulfilledResult<PlaybookResult> => s.status === 'fulfilled');
          expect(won).toHaveLength(1);
          for (const lost of settled) if (lost.status === 'rejected') expect(lost.reason).toMatchObject({ code: 'E_PLAYBOOK_RESUME_BLOCKED' });
          const dispatchesAfter = dispatcher.count;
          await expect(resumePlaybook({ store, approvalToken: token, ...options })).rejects.toMatchObject({ code: 'E_PLAYBOOK_RESUME_BLOCKED' });
          expect(dispatcher.count).toBe(dispatchesAfter);
          result = won[0]!.value;
        }
        const events = await readRunEvents(store, result.runId);
        const resumed = events.filter((e) => e.type === 'RunResumed').map((e) => (e.data as { approvalId: string }).approvalId);
        expect(new Set(resumed).size).toBe(resumed.length);
        expect(events.filter((e) => e.type === 'NodeStarted')).toHaveLength(dispatcher.count);
      }),
      { seed: seed + 2, numRuns: Math.ceil(numRuns / 2) },
    );
  });
});
