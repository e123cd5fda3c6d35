/**
 * The projections equal the fold after EVERY append (SPEC §3), now that an
 * append writes only the keys its events changed (`AppendRequest.changed`):
 * on random playbooks (linear graphs with gates, branches and escalations;
 * chains with parallel groups whose branches hold gates) and random outcomes,
 * a store wrapper checks after each append that `getRun`, `listRuns` and
 * `listApprovals` agree with `toRunRow`/`toApprovalRows` of the fold of
 * `readRun` (verifyRun), keys in the fold's order. Then the run's projection
 * rows are tampered with or deleted, verify must notice, and
 * `rebuildProjections` must restore them exactly. Real SQLite files.
 */
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import type { AgentDispatcher, NodeOutcome } from '../../src/adapters/types.js';
import type { RunEvent } from '../../src/events/types.js';
import { toRunRow } from '../../src/projections/projectRun.js';
import type { RunRow } from '../../src/projections/types.js';
import { executePlaybook } from '../../src/runtime/executePlaybook.js';
import { approveGate, rejectGate, resumePlaybook } from '../../src/runtime/gates.js';
import { foldStoredEvents } from '../../src/runtime/loadRun.js';
import { rebuildProjections, verifyRun } from '../../src/runtime/queries.js';
import { recoverRun } from '../../src/runtime/recoverRun.js';
import type { PlaybookResult } from '../../src/runtime/runSession.js';
import type { AppendRequest, EventStore } from '../../src/store/eventStore.js';
import { manualClock, tempSqliteStore, tempStore } from '../helpers/runtimeHarness.js';
import { chainArbitrary, playbookOf } from './arbitraries/parallelChain.js';
import { playbookDefinitionArbitrary } from './arbitraries/playbookArbitrary.js';

const seed = Number(process.env['FC_SEED'] ?? 3_141_593);
const numRuns = Number(process.env['FC_RUNS'] ?? 80);
console.info(`projectionEquivalence: fast-check seed ${seed}, ${numRuns} runs per property (set FC_SEED / FC_RUNS to change)`);

/** Keys outputs draw from: shared between nodes (overwrites), integer-like, and the names the runtime itself writes. */
const outputKey = fc.constantFrom('a', 'b', 'status', '10', '2', '__lastError', '__lastApproval', 'nested');
const outputValue = fc.oneof(fc.string({ maxLength: 6 }), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }));
const outcomeArbitrary: fc.Arbitrary<NodeOutcome> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ status: fc.constant('success' as const), output: fc.dictionary(outputKey, outputValue, { maxKeys: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ status: fc.constant('failure' as const), error: fc.constantFrom('boom', 'flaky') }) },
);

const scenarioArbitrary = fc.record({
  definition: fc.oneof(playbookDefinitionArbitrary({ maxNodes: 6, nodeTypes: ['agentic', 'approval'] }), chainArbitrary.map((chain) => playbookOf(chain).definition)),
  outcomes: fc.array(outcomeArbitrary, { maxLength: 60 }),
  decisions: fc.array(fc.boolean(), { maxLength: 12 }),
  context: fc.dictionary(fc.constantFrom('a', 'input', '10', 'zeta'), outputValue, { maxKeys: 3 }),
});
type Scenario = typeof scenarioArbitrary extends fc.Arbitrary<infer T> ? T : never;

/** Tampering with a run's projection rows, raw, behind the store's back. */
const tamperArbitrary = fc.array(
  fc.constantFrom('drop-binding', 'change-binding', 'extra-binding', 'drop-attempts', 'change-attempts', 'drop-run', 'drop-approvals', 'change-status'),
  { minLength: 1, maxLength: 3 },
);

/** Throws unless the store's rows for `runId` equal the fold of its log, keys in the fold's order. */
async function expectProjectionsMatchFold(store: EventStore, runId: string, when: string): Promise<void> {
  const verified = await verifyRun(store, runId);
  expect(verified.problems, when).toEqual([]);
  const { playbook, snapshot } = foldStoredEvents(runId, await store.readRun(runId));
  const expected = toRunRow(playbook.model, snapshot);
  const stored = await store.getRun(runId);
  const listed = (await store.listRuns({ status: expected.status })).find((run) => run.runId === runId);
  for (const row of [stored, listed] as (RunRow | undefined)[]) {
    expect(Object.keys(row?.bindings ?? {}), when).toEqual(Object.keys(expected.bindings));
    expect(Object.keys(row?.iterationCounts ?? {}), when).toEqual(Object.keys(expected.iterationCounts));
  }
  expect(listed, when).toEqual(stored);
}

/** The real store, with every append checked once it resolves. */
function checkedStore(inner: EventStore, appends: { count: number }): EventStore {
  const store = Object.create(inner) as EventStore;
  store.append = async (request: AppendRequest): Promise<RunEvent[]> => {
    const stored = await inner.append(request);
    appends.count += 1;
    const types = request.events.map((event) => event.type).join(', ');
    await expectProjectionsMatchFold(inner, request.runId, `after append ${appends.count} (${types})`);
    return stored;
  };
  return store;
}

function scriptedBy(outcomes: readonly NodeOutcome[]): AgentDispatcher {
  let next = 0;
  // Asynchronous, so the branches of a group run and commit interleaved.
  return { dispatch: async () => outcomes[next++] ?? { status: 'success', output: { done: next } } };
}

async function play(store: EventStore, scenario: Scenario): Promise<PlaybookResult> {
  const clock = manualClock();
  const options = { dispatcher: scriptedBy(scenario.outcomes), now: clock.now };
  const inputs = Object.fromEntries(scenario.definition.inputs.map((input) => [input.name, `${input.name}-value`]));
  // A playbook that declares inputs takes only those (E_INPUT_UNKNOWN); one that declares none takes any context.
  const initialContext = scenario.definition.inputs.length === 0 ? { ...scenario.context } : inputs;
  let result = await executePlaybook({ store, playbook: scenario.definition, source: stringify(scenario.definition), initialContext, ...options });
  // Tokens are handed out once, by the call that opened the gate (a group may hold several open).
  const tokens = new Map<string, string>();
  for (let gate = 0; result.terminalStatus === 'pending_approval' && gate < 40; gate++) {
    for (const open of result.approvals ?? []) if (open.token !== undefined) tokens.set(open.approvalId, open.token);
    const token = tokens.get(result.approvals?.[0]?.approvalId ?? '') ?? (result.approvalToken as string);
    if (scenario.decisions[gate] === false) {
      await rejectGate({ store, token, approver: 'p', reason: 'r', ...options });
      // A rejection inside a branch may leave work (a sibling to stop, a group to retry): drive it on.
      result = await recoverRun({ store, runId: result.runId, ...options });
    } else {
      await approveGate({ store, token, approver: 'p', ...options });
      result = await resumePlaybook({ store, approvalToken: token, ...options });
    }
  }
  return result;
}

function tamper(path: string, runId: string, moves: readonly string[]): void {
  const db = new Database(path);
  try {
    db.pragma('foreign_keys = ON');
    for (const move of moves) {
      if (move === 'drop-binding') db.prepare('DELETE FROM run_bindings WHERE rowid = (SELECT MAX(rowid) FROM run_bindings WHERE run_id = ?)').run(runId);
      if (move === 'change-binding') db.prepare(`UPDATE run_bindings SET value = '"tampered"' WHERE rowid = (SELECT MIN(rowid) FROM run_bindings WHERE run_id = ?)`).run(runId);
      if (move === 'extra-binding') db.prepare(`INSERT OR IGNORE INTO run_bindings (run_id, key, value) SELECT run_id, 'planted', '1' FROM runs WHERE run_id = ?`).run(runId);
      if (move === 'drop-attempts') db.prepare('DELETE FROM run_attempts WHERE run_id = ?').run(runId);
      if (move === 'change-attempts') db.prepare('UPDATE run_attempts SET attempts = attempts + 7 WHERE run_id = ?').run(runId);
      if (move === 'drop-run') db.prepare('DELETE FROM runs WHERE run_id = ?').run(runId);
      if (move === 'drop-approvals') db.prepare('DELETE FROM approvals WHERE run_id = ?').run(runId);
      if (move === 'change-status') db.prepare(`UPDATE runs SET status = 'cancelled' WHERE run_id = ?`).run(runId);
    }
  } finally {
    db.close();
  }
}

describe('projections equal the fold (fast-check, real stores; tampering raw rows on SQLite files)', () => {
  it('after every append, on random playbooks (gates, escalations, parallel groups) and outcomes', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArbitrary, async (scenario) => {
        const { store: inner, cleanup } = await tempStore();
        try {
          const appends = { count: 0 };
          await play(checkedStore(inner, appends), scenario);
          expect(appends.count).toBeGreaterThan(0);
        } finally {
          await cleanup();
        }
      }),
      { seed, numRuns },
    );
  }, 60_000);

  it('after rebuildProjections of rows that were tampered with or deleted', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArbitrary, tamperArbitrary, async (scenario, moves) => {
        const { store, path, cleanup } = tempSqliteStore();
        try {
          const { runId } = await play(store, scenario);
          const before = await store.getRun(runId);
          tamper(path, runId, moves);
          const after = await store.getRun(runId);
          if (JSON.stringify(after) !== JSON.stringify(before)) expect((await verifyRun(store, runId)).ok).toBe(false);
          await rebuildProjections(store, runId);
          await expectProjectionsMatchFold(store, runId, `after rebuilding from ${moves.join(', ')}`);
          expect(await store.getRun(runId)).toEqual(before);
        } finally {
          await cleanup();
        }
      }),
      { seed, numRuns: Math.ceil(numRuns / 2) },
    );
  }, 60_000);
});
