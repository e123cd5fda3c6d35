/**
 * Properties of parallel groups (SPEC §9) over random playbooks with nested
 * groups, random outcome scripts and random arrival orders of concurrent
 * results (fast-check's scheduler decides which pending dispatch settles
 * next): every run terminates within the caps' bound, no node exceeds its cap
 * within a pass, every dispatched attempt has exactly one result event, replay
 * equals the live state, projections equal the fold, and a run that completes
 * ends with the same context whatever the order its results arrived in.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentDispatcher, NodeOutcome } from '../../src/adapters/types.js';
import type { RunEvent } from '../../src/events/types.js';
import type { PlaybookDefinition, PlaybookNode } from '../../src/playbook/types.js';
import { toApprovalRows, toRunRow } from '../../src/projections/projectRun.js';
import { executePlaybook } from '../../src/runtime/executePlaybook.js';
import { approveGate, rejectGate, resumePlaybook } from '../../src/runtime/gates.js';
import { foldStoredEvents } from '../../src/runtime/loadRun.js';
import { readRunEvents, verifyRun } from '../../src/runtime/queries.js';
import type { PlaybookResult } from '../../src/runtime/runSession.js';
import type { EventStore } from '../../src/store/eventStore.js';
import { manualClock, SECRET, tempStore } from '../helpers/runtimeHarness.js';
import { chainArbitrary, playbookOf } from './arbitraries/parallelChain.js';

const seed = Number(process.env['FC_SEED'] ?? 9_090_417);
const numRuns = Number(process.env['FC_RUNS'] ?? 60);
console.info(`parallelInvariants: fast-check seed ${seed}, ${numRuns} runs (set FC_SEED / FC_RUNS to change)`);

/** Every node of the definition, branches included, with the groups enclosing it. */
function allNodes(nodes: readonly PlaybookNode[], groups: string[] = []): { node: PlaybookNode; groups: string[] }[] {
  return nodes.flatMap((node) => [
    { node, groups },
    ...(node.type === 'parallel' ? node.branches.flatMap((branch) => allNodes(branch.nodes, [...groups, node.id])) : []),
  ]);
}

/** Dispatch bound of one graph: (its escalations + 1) passes; per pass, each node max(cap, 1) attempts, a group's attempts times its branches' bounds. */
function bound(nodes: readonly PlaybookNode[]): number {
  const cap = (node: PlaybookNode) => node.on_failure?.max_iterations ?? 3;
  const escalations = nodes.reduce((sum, node) => sum + (node.on_failure?.inject_into === undefined ? 0 : cap(node)), 0);
  const perPass = nodes.reduce((sum, node) => {
    if (node.type === 'approval') return sum;
    const attempts = Math.max(cap(node), 1);
    return sum + (node.type === 'parallel' ? attempts * node.branches.reduce((s, branch) => s + bound(branch.nodes), 0) : attempts);
  }, 0);
  return (escalations + 1) * perPass;
}

/** Outcome of (node, attempt): a pure function of the scenario's salt, so two arrival orders see the same answers. */
function outcomeOf(salt: number, failRate: number, nodeId: string, attempt: number): NodeOutcome {
  let h = salt;
  for (const ch of `${nodeId}#${attempt}`) h = (Math.imul(h, 31) + ch.charCodeAt(0)) >>> 0;
  // Outputs do not depend on the attempt, and errors only on the node: a completed run's context is then fixed.
  return h % 100 < failRate ? { status: 'failure', error: `failed ${nodeId}` } : { status: 'success', output: { [nodeId]: 'done', shared: nodeId } };
}

const scenarioArbitrary = fc.record({
  chain: chainArbitrary,
  salt: fc.integer({ min: 1, max: 2 ** 30 }),
  failRate: fc.integer({ min: 0, max: 45 }),
  reject: fc.array(fc.boolean(), { maxLength: 20 }),
});
type Scenario = typeof scenarioArbitrary extends fc.Arbitrary<infer T> ? T : never;

let store: EventStore;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ store, cleanup } = await tempStore()));
afterAll(() => cleanup());

/** Runs a scenario under a scheduler that picks which pending dispatch settles next; decides gates from the script. */
async function play(scenario: Scenario, scheduler: fc.Scheduler): Promise<{ result: PlaybookResult; dispatches: number; events: RunEvent[]; definition: PlaybookDefinition }> {
  const { source, definition } = playbookOf(scenario.chain);
  let dispatches = 0;
  const dispatcher: AgentDispatcher = {
    dispatch(request) {
      dispatches += 1;
      return scheduler.schedule(Promise.resolve(outcomeOf(scenario.salt, scenario.failRate, request.nodeId, request.iteration)), `${request.nodeId}#${request.iteration}`);
    },
  };
  const clock = manualClock();
  const options = { dispatcher, approvalSecret: SECRET, now: clock.now };
  const gateIndex = new Map(allNodes(definition.nodes).filter(({ node }) => node.type === 'approval').map(({ node }, i) => [node.id, i] as const));
  let result = await scheduler.waitFor(executePlaybook({ store, playbook: definition, source, initialContext: {}, ...options }));
  // Tokens are handed out once, by the call that opened the gate: the human keeps them.
  const tokens = new Map<string, string>();
  for (let round = 0; result.terminalStatus === 'pending_approval'; round++) {
    expect(round).toBeLessThan(200);
    for (const gate of result.approvals ?? []) if (gate.token !== undefined) tokens.set(gate.approvalId, gate.token);
    // Decide the pending gates by their node (never by arrival order), first in document order.
    const gates = [...(result.approvals ?? [])].sort((x, y) => (gateIndex.get(x.nodeId) ?? 0) - (gateIndex.get(y.nodeId) ?? 0));
    const gate = gates[0];
    expect(gate !== undefined && tokens.has(gate.approvalId), 'every pending gate\'s token was handed out').toBe(true);
    const token = tokens.get(gate?.approvalId as string) as string;
    const rejected = scenario.reject[gateIndex.get(gate?.nodeId as string) ?? 0] === true;
    if (rejected) {
      await rejectGate({ store, token, approver: 'p', reason: 'r', ...options });
      result = await scheduler.waitFor(resumeAfterRejection(result.runId, options));
    } else {
      await approveGate({ store, token, approver: 'p', ...options });
      result = await scheduler.waitFor(resumePlaybook({ store, approvalToken: token, ...options }));
    }
  }
  return { result, dispatches, events: await readRunEvents(store, result.runId), definition };
}

/** After a rejection inside a branch the run may still have work (a fail_fast sibling to stop, a group to retry): drive it on. */
async function resumeAfterRejection(runId: string, options: { dispatcher: AgentDispatcher; approvalSecret: string; now: () => Date }): Promise<PlaybookResult> {
  const { recoverRun } = await import('../../src/runtime/recoverRun.js');
  return recoverRun({ store, runId, ...options });
}

describe('parallel invariants (fast-check, random arrival orders)', () => {
  it('terminates within the caps\' bound; no node over its cap in a pass; one result per dispatched attempt', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArbitrary, fc.scheduler(), async (scenario, scheduler) => {
        const { result, dispatches, events, definition } = await play(scenario, scheduler);
        expect(['completed', 'failed', 'exceeded_iteration_cap']).toContain(result.terminalStatus);
        expect(dispatches).toBeLessThanOrEqual(bound(definition.nodes));
        const nodes = new Map(allNodes(definition.nodes).map((entry) => [entry.node.id, entry] as const));
        // Attempts since the node's pass began: reset when an enclosing group starts again or control is handed to it.
        const streak = new Map<string, number>();
        const started = new Map<string, number>();
        const ended = new Map<string, number>();
        for (const event of events) {
          if (event.type === 'NodeStarted') {
            const { nodeId } = event.data;
            for (const [id, entry] of nodes) if (entry.groups.includes(nodeId)) streak.delete(id);
            streak.set(nodeId, (streak.get(nodeId) ?? 0) + 1);
            const cap = nodes.get(nodeId)?.node.on_failure?.max_iterations ?? 3;
            if (nodes.get(nodeId)?.node.on_failure?.inject_into === undefined) expect(streak.get(nodeId)).toBeLessThanOrEqual(Math.max(cap, 1));
            const key = `${nodeId}#${event.data.attempt}`;
            started.set(key, (started.get(key) ?? 0) + 1);
          }
          if (event.type === 'NodeEscalated') streak.delete(event.data.to);
          if (event.type === 'NodeSucceeded' || event.type === 'NodeFailed') {
            const key = `${event.data.nodeId}#${event.data.attempt}`;
            ended.set(key, (ended.get(key) ?? 0) + 1);
          }
        }
        // Every attempt started has exactly one result; groups included.
        expect(Object.fromEntries(ended)).toEqual(Object.fromEntries(started));
        expect(events.at(-1)?.type).toMatch(/^Run(Completed|Failed)$/);
      }),
      { seed, numRuns },
    );
  }, 120_000);

  it('replay equals the live state and projections equal the fold', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArbitrary, fc.scheduler(), async (scenario, scheduler) => {
        const { result, events } = await play(scenario, scheduler);
        const { playbook, snapshot } = foldStoredEvents(result.runId, events);
        expect(snapshot.context.context).toEqual(result.finalContext);
        expect(snapshot.value).toBe(result.terminalStatus);
        expect(toRunRow(playbook.model, snapshot)).toEqual(await store.getRun(result.runId));
        const byId = (rows: { approvalId: string }[]) => [...rows].sort((a, b) => a.approvalId.localeCompare(b.approvalId));
        expect(byId(toApprovalRows(snapshot))).toEqual(byId(await store.listApprovals({ runId: result.runId })));
        expect((await verifyRun(store, result.runId)).ok).toBe(true);
      }),
      { seed: seed + 1, numRuns },
    );
  }, 120_000);

  it('a completed run\'s context does not depend on the order its results arrived in', async () => {
    let compared = 0;
    await fc.assert(
      fc.asyncProperty(scenarioArbitrary, fc.scheduler(), fc.scheduler(), async (scenario, first, second) => {
        const a = await play(scenario, first);
        const b = await play(scenario, second);
        if (a.result.terminalStatus !== 'completed' || b.result.terminalStatus !== 'completed') return;
        compared += 1;
        const strip = ({ __lastApproval: _ignored, ...rest }: Record<string, unknown>) => rest;
        expect(strip(a.result.finalContext)).toEqual(strip(b.result.finalContext));
      }),
      { seed: seed + 2, numRuns },
    );
    expect(compared, 'enough scenarios completed both times to compare').toBeGreaterThan(numRuns / 4);
  }, 120_000);
});
