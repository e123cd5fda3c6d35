/**
 * Properties of child runs (SPEC §12) over random trees of playbooks with
 * random outcomes, random finishing orders and random human decisions: every
 * tree terminates within the product of its caps' bounds; replay equals live
 * for every run of the tree; a map's output is in item order whatever order
 * its children finished in; at most `max_concurrency` children of a map
 * attempt work at any moment; `tolerate` decides each attempt.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AgentDispatcher, DispatchRequest, NodeOutcome } from '../../src/adapters/types.js';
import type { RunEvent } from '../../src/events/types.js';
import { executePlaybook } from '../../src/runtime/executePlaybook.js';
import { approveGate, rejectGate, resumePlaybook } from '../../src/runtime/gates.js';
import { listRuns, readRunEvents, verifyRun } from '../../src/runtime/queries.js';
import { recoverRun } from '../../src/runtime/recoverRun.js';
import type { PlaybookResult } from '../../src/runtime/runSession.js';
import type { EventStore } from '../../src/store/eventStore.js';
import { playbookFrom, tempStore } from '../helpers/runtimeHarness.js';

const seed = Number(process.env['FC_SEED'] ?? 1_207_013);
const numRuns = Number(process.env['FC_RUNS'] ?? 80);
console.info(`childRunInvariants: fast-check seed ${seed}, ${numRuns} runs (set FC_SEED / FC_RUNS to change)`);

let store: EventStore;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ store, cleanup } = await tempStore()));
afterEach(() => cleanup());

/** A random tree: root -> map over (middle -> playbook node over leaf) or straight over leaf. */
interface Tree {
  items: number;
  mapCap: number;
  concurrency: number | undefined;
  tolerate: number;
  /** The leaf's sequential nodes: their caps; a gate after them when `gated`. */
  leafCaps: number[];
  gated: boolean;
  /** A middle playbook between the map and the leaf, with this cap on its playbook node. */
  middleCap: number | undefined;
}

const treeArbitrary: fc.Arbitrary<Tree> = fc.record({
  items: fc.integer({ min: 0, max: 5 }),
  mapCap: fc.integer({ min: 1, max: 2 }),
  concurrency: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
  tolerate: fc.integer({ min: 0, max: 2 }),
  leafCaps: fc.array(fc.integer({ min: 1, max: 2 }), { minLength: 1, maxLength: 3 }),
  gated: fc.boolean(),
  middleCap: fc.option(fc.integer({ min: 1, max: 2 }), { nil: undefined }),
});

function texts(tree: Tree): { root: string; library: Record<string, string> } {
  const leafNodes = tree.leafCaps.map((cap, i) => `  - { id: step${i}, type: agentic, skill: s${i === 0 ? '' : `, depends: [step${i - 1}]`}, on_failure: { max_iterations: ${cap} } }`);
  if (tree.gated) leafNodes.push(`  - { id: gate, type: approval, depends: [step${tree.leafCaps.length - 1}], prompt: "ok {{inputs.taskId}}?" }`);
  const leaf = `version: "1.0"\nname: leaf\ninputs: [{ name: taskId, required: true }]\nnodes:\n${leafNodes.join('\n')}\n`;
  const middle = `version: "1.0"\nname: middle\ninputs: [{ name: taskId, required: true }]\nnodes:\n  - { id: inner, type: playbook, playbook: leaf, inputs: { taskId: "{{inputs.taskId}}" }, on_failure: { max_iterations: ${tree.middleCap ?? 1} } }\n`;
  const root = `version: "1.0"
name: root
nodes:
  - { id: plan, type: agentic, skill: plan }
  - id: each
    type: map
    depends: [plan]
    items: "{{items}}"
    playbook: ${tree.middleCap === undefined ? 'leaf' : 'middle'}
    item_input: taskId
${tree.concurrency === undefined ? '' : `    max_concurrency: ${tree.concurrency}\n`}    tolerate: ${tree.tolerate}
    on_failure: { max_iterations: ${tree.mapCap} }
`;
  return { root, library: { leaf, middle } };
}

/** The most dispatches a tree can make: the product of its caps' bounds (no gate adds attempts). */
function dispatchBound(tree: Tree): number {
  const leaf = tree.leafCaps.reduce((sum, cap) => sum + cap, 0);
  const child = tree.middleCap === undefined ? leaf : tree.middleCap * leaf;
  return 1 + tree.mapCap * tree.items * child;
}

/**
 * Answers from a script of outcomes and delays (random finishing order),
 * counting dispatches in flight per map attempt (a child's subtree has at
 * most one dispatch in flight, so this counts its working children).
 */
function dispatcherOf(tree: Tree, script: readonly { ok: boolean; delay: number }[]) {
  const inFlight = new Map<string, number>();
  const state = { count: 0, peak: 0, calls: [] as DispatchRequest[] };
  const dispatcher: AgentDispatcher = {
    async dispatch(request): Promise<NodeOutcome> {
      if (request.nodeId === 'plan') return { status: 'success', output: { items: Array.from({ length: tree.items }, (_, i) => `item-${i}`) } };
      const n = state.count;
      state.count += 1;
      state.calls.push({ ...request });
      const attempt = /\.each\.(\d+)\./.exec(request.runId)?.[1] ?? '?';
      inFlight.set(attempt, (inFlight.get(attempt) ?? 0) + 1);
      state.peak = Math.max(state.peak, inFlight.get(attempt) as number);
      const step = script[n % Math.max(1, script.length)] ?? { ok: true, delay: 0 };
      await new Promise((resolve) => setTimeout(resolve, step.delay));
      inFlight.set(attempt, (inFlight.get(attempt) as number) - 1);
      return step.ok ? { status: 'success', output: { [request.nodeId]: request.bindings?.['taskId'] ?? request.context['taskId'] ?? null } } : { status: 'failure', error: 'scripted' };
    },
  };
  return { dispatcher, state };
}

/** Decides every gate a paused tree returns, by the decision script, until the root ends (bounded). */
async function driveToEnd(first: PlaybookResult, dispatcher: AgentDispatcher, decisions: readonly boolean[]): Promise<PlaybookResult> {
  let result = first;
  // A token is handed out once, by the call that opened its gate: keep them all.
  const tokens = new Map<string, string>();
  for (let turn = 0; result.terminalStatus === 'pending_approval'; turn += 1) {
    if (turn > 40) throw new Error(`the tree of ${first.runId} is still paused after 40 decisions`);
    for (const gate of result.approvals ?? []) if (gate.token !== undefined) tokens.set(gate.approvalId, gate.token);
    const pending = result.approvals?.find((g) => tokens.has(g.approvalId));
    if (pending === undefined) throw new Error(`pending_approval with gates nobody was given a token for: ${JSON.stringify(result.approvals)}`);
    const gate = { ...pending, token: tokens.get(pending.approvalId) };
    if (decisions[turn % Math.max(1, decisions.length)] ?? true) {
      await approveGate({ store, token: gate.token as string, approver: 'p' });
      const resumed = await resumePlaybook({ store, approvalToken: gate.token as string, dispatcher });
      // A child that ended drives its parents on; one still waiting leaves the root to the next call.
      result = resumed.runId === first.runId ? resumed : await recoverRun({ store, runId: first.runId, dispatcher });
    } else {
      await rejectGate({ store, token: gate.token as string, approver: 'p', reason: 'no' });
      result = await recoverRun({ store, runId: first.runId, dispatcher });
    }
  }
  return result;
}

/** Every run of the tree under a root, breadth first. */
async function treeOf(rootId: string): Promise<string[]> {
  const ids = [rootId];
  for (let i = 0; i < ids.length; i++) for (const row of await listRuns(store, { parentRunId: ids[i] as string })) ids.push(row.runId);
  return ids;
}

describe('child runs over random trees (SPEC §12)', () => {
  it('terminate within their bound, replay equals live for every run, item order, max_concurrency and tolerate hold', async () => {
    const seen = { completed: 0, failedMaps: 0, tolerated: 0, gates: 0, kept: 0, nested: 0 };
    await fc.assert(
      fc.asyncProperty(
        treeArbitrary,
        fc.array(fc.record({ ok: fc.boolean(), delay: fc.integer({ min: 0, max: 3 }) }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }),
        async (tree, script, decisions) => {
          await cleanup();
          ({ store, cleanup } = await tempStore());
          const { root, library } = texts(tree);
          const { dispatcher, state } = dispatcherOf(tree, script);
          const resolvePlaybook = (ref: string) => (Object.hasOwn(library, ref) ? { id: ref, source: library[ref] as string } : null);
          const result = await driveToEnd(await executePlaybook({ store, ...playbookFrom(root), resolvePlaybook, dispatcher }), dispatcher, decisions);

          // Termination within the product of the caps' bounds.
          expect(['completed', 'failed', 'exceeded_iteration_cap']).toContain(result.terminalStatus);
          expect(state.count).toBeLessThanOrEqual(dispatchBound(tree));
          // Replay equals live, and nothing is left running, for every run of the tree.
          const ids = await treeOf(result.runId);
          for (const id of ids) {
            expect((await verifyRun(store, id)).problems, id).toEqual([]);
          }
          const all = await listRuns(store, {});
          for (const id of ids) expect(['completed', 'failed', 'cancelled']).toContain(all.find((row) => row.runId === id)?.status);
          // At most max_concurrency children of one map attempt work at once.
          expect(state.peak).toBeLessThanOrEqual(tree.concurrency ?? Math.max(1, tree.items));

          const events = await readRunEvents(store, result.runId);
          checkTolerate(tree, events);
          if (tree.middleCap !== undefined && tree.items > 0) seen.nested += 1;
          // A later attempt that started fewer children than there are items kept the ones that had completed.
          const mapStarts = events.filter((event) => event.type === 'NodeStarted' && event.data.nodeId === 'each').length;
          const startedInLast = events.filter((event) => event.type === 'ChildRunStarted' && event.data.attempt === mapStarts).length;
          if (mapStarts > 1 && startedInLast < tree.items) seen.kept += 1;
          if (ids.length > 1 && tree.gated) seen.gates += 1;
          if (result.terminalStatus === 'completed') {
            seen.completed += 1;
            // Item order, whatever order the children finished in.
            const each = result.finalContext['each'] as { runId: string; status: string; output: Record<string, unknown> }[];
            expect(each).toHaveLength(tree.items);
            each.forEach((entry, index) => expect(entry.runId.endsWith(`.${index}`)).toBe(true));
            const inputs = each.map((entry) => all.find((row) => row.runId === entry.runId)?.bindings['taskId']);
            expect(inputs).toEqual(Array.from({ length: tree.items }, (_, i) => `item-${i}`));
            if (each.some((entry) => entry.status !== 'completed')) seen.tolerated += 1;
          } else if (result.error?.nodeId === 'each') {
            seen.failedMaps += 1;
          }
        },
      ),
      { seed, numRuns },
    );
    console.info(`childRunInvariants: ${JSON.stringify(seen)}`);
    // The decisions SPEC §12 names were reached, not only generated.
    expect(seen.completed).toBeGreaterThan(0);
    expect(seen.failedMaps).toBeGreaterThan(0);
    expect(seen.tolerated).toBeGreaterThan(0);
    expect(seen.gates).toBeGreaterThan(0);
    expect(seen.nested).toBeGreaterThan(0);
    expect(seen.kept).toBeGreaterThan(0);
  }, 600_000);
});

/** Each attempt of the map ended as `tolerate` says: succeeded with at most that many failed children, failed with more. */
function checkTolerate(tree: Tree, events: readonly RunEvent[]): void {
  const failedBy = new Map<number, number>();
  for (const event of events) {
    if (event.type === 'ChildRunSettled' && event.data.status !== 'completed') failedBy.set(event.data.attempt, (failedBy.get(event.data.attempt) ?? 0) + 1);
    if ((event.type === 'NodeSucceeded' || event.type === 'NodeFailed') && event.data.nodeId === 'each') {
      const failed = failedBy.get(event.data.attempt) ?? 0;
      if (event.type === 'NodeSucceeded') expect(failed).toBeLessThanOrEqual(tree.tolerate);
      else expect(failed).toBeGreaterThan(tree.tolerate);
    }
  }
}
