/**
 * Properties of time (SPEC §10) over random chains of nodes with random caps,
 * backoffs and timeouts, and random outcomes (success, failure, a failure
 * that is not retryable, an agent that hangs until its timeout): driven by
 * workers on an injected clock that the test moves to each run's next due
 * time, every run ends within its cap bound; every wait recorded is exactly
 * the backoff the node names for that attempt and no attempt starts before
 * it; a non-retryable failure is never retried in place; a hung attempt ends
 * timedOut; and the log replays to the projections (verify).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { AgentDispatcher, NodeOutcome } from '../../src/adapters/types.js';
import { backoffDelayMs } from '../../src/compiler/playbookModel.js';
import type { RunEvent } from '../../src/events/types.js';
import { parsePlaybook } from '../../src/playbook/parsePlaybook.js';
import { startRun } from '../../src/runtime/executePlaybook.js';
import { getRun, readRunEvents, verifyRun } from '../../src/runtime/queries.js';
import { createWorker } from '../../src/runtime/worker.js';
import type { EventStore } from '../../src/store/eventStore.js';
import { tempStore } from '../helpers/runtimeHarness.js';
import { testClock } from '../helpers/testClock.js';

const seed = Number(process.env['FC_SEED'] ?? 9_310_122);
const numRuns = Number(process.env['FC_RUNS'] ?? 60);

type Outcome = 'ok' | 'fail' | 'final' | 'hang';

const nodeArbitrary = fc.record({
  cap: fc.integer({ min: 1, max: 3 }),
  backoff: fc.option(fc.record({ initial: fc.integer({ min: 1, max: 90 }), factor: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }), max: fc.option(fc.integer({ min: 1, max: 120 }), { nil: undefined }) }), { nil: undefined }),
  timeoutMinutes: fc.option(fc.integer({ min: 1, max: 30 }), { nil: undefined }),
});

const scenarioArbitrary = fc.record({
  nodes: fc.array(nodeArbitrary, { minLength: 1, maxLength: 4 }),
  outcomes: fc.array(fc.constantFrom<Outcome>('ok', 'ok', 'fail', 'fail', 'final', 'hang'), { maxLength: 30 }),
});

type Scenario = typeof scenarioArbitrary extends fc.Arbitrary<infer T> ? T : never;

function sourceOf(scenario: Scenario): string {
  const nodes = scenario.nodes.map((node, i) => ({
    id: `n${i}`,
    type: 'agentic',
    skill: 's',
    ...(i === 0 ? {} : { depends: [`n${i - 1}`] }),
    ...(node.timeoutMinutes === undefined ? {} : { timeout: `${node.timeoutMinutes}m` }),
    on_failure: {
      max_iterations: node.cap,
      ...(node.backoff === undefined ? {} : {
        backoff: { initial: `${node.backoff.initial}s`, ...(node.backoff.factor === undefined ? {} : { factor: node.backoff.factor }), ...(node.backoff.max === undefined ? {} : { max: `${node.backoff.max}s` }) },
      }),
    },
  }));
  return stringify({ version: '1.0', name: 'timed', nodes });
}

/** Plays the outcomes in order (a hang only where the node has a timeout to end it); then every dispatch succeeds. */
function scripted(scenario: Scenario): AgentDispatcher {
  let next = 0;
  return {
    dispatch(request) {
      const node = scenario.nodes[Number(request.nodeId.slice(1))];
      const outcome = scenario.outcomes[next++] ?? 'ok';
      if (outcome === 'hang' && node?.timeoutMinutes !== undefined) {
        return new Promise<NodeOutcome>((resolve) => request.signal.addEventListener('abort', () => resolve({ status: 'failure', error: 'stopped' })));
      }
      if (outcome === 'fail') return { status: 'failure', error: 'flaky' };
      if (outcome === 'final') return { status: 'failure', error: 'malformed', retryable: false };
      return { status: 'success', output: {} };
    },
  };
}

describe('time properties (SPEC §10)', () => {
  let store: EventStore;
  let cleanup: () => Promise<void>;
  beforeAll(async () => ({ store, cleanup } = await tempStore()));
  afterAll(() => cleanup());

  it('backoff waits are exact and honoured, non-retryable failures end the node, hung attempts time out, every run ends', async () => {
    const seen = { waits: 0, timedOut: 0, notRetryable: 0 };
    await fc.assert(
      fc.asyncProperty(scenarioArbitrary, async (scenario) => {
        const source = sourceOf(scenario);
        const { definition } = parsePlaybook(source);
        const clock = testClock();
        const { runId } = await startRun({ store, playbook: definition, source, clock });
        const dispatcher = scripted(scenario);
        const bound = scenario.nodes.reduce((sum, node) => sum + node.cap, 0) + 1;
        for (let round = 0; ; round++) {
          expect(round, 'the run keeps waking without ending').toBeLessThan(4 * bound + 4);
          const worker = createWorker({ store, dispatcher, clock });
          // A hung attempt is cut by its timeout: move time while the worker drives.
          const idle = worker.runUntilIdle();
          for (let i = 0; i < 4 * bound; i++) await clock.advance(30 * 60_000);
          await idle;
          const row = await getRun(store, runId);
          if (row?.wakeAt === null || row?.wakeAt === undefined) break;
          await clock.advance(Math.max(0, Date.parse(row.wakeAt) - clock.now().getTime()));
        }
        const events = await readRunEvents(store, runId);
        const last = events.at(-1);
        const ended = last?.type === 'RunCompleted' || (last?.type === 'RunFailed' && last.data.cause !== 'internal_error');
        expect(ended, events.map((event) => event.type).join(' ')).toBe(true);
        seen.waits += events.filter((event) => event.type === 'NodeRetryScheduled').length;
        seen.timedOut += events.filter((event) => event.type === 'NodeFailed' && event.data.timedOut === true).length;
        seen.notRetryable += events.filter((event) => event.type === 'RunFailed' && event.data.cause === 'not_retryable').length;
        checkTime(definition.nodes, events);
        expect((await verifyRun(store, runId)).ok).toBe(true);
      }),
      { seed, numRuns },
    );
    // The generator really exercised each rule.
    expect(seen.waits).toBeGreaterThan(0);
    expect(seen.timedOut).toBeGreaterThan(0);
    expect(seen.notRetryable).toBeGreaterThan(0);
  }, 240_000);
});

/** The time rules, read off the log. */
function checkTime(nodes: Parameters<typeof backoffDelayMs>[0][], events: readonly RunEvent[]): void {
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const inPlace = new Map<string, number>();
  for (const [i, event] of events.entries()) {
    if (event.type === 'NodeStarted') inPlace.set(event.data.nodeId, (inPlace.get(event.data.nodeId) ?? 0) + 1);
    if (event.type === 'NodeRetryScheduled') {
      const node = byId.get(event.data.nodeId);
      expect(Date.parse(event.data.dueAt) - Date.parse(event.at)).toBe(backoffDelayMs(node as never, inPlace.get(event.data.nodeId) ?? 0));
      const start = events.slice(i).find((later) => later.type === 'NodeStarted' && later.data.nodeId === event.data.nodeId);
      if (start !== undefined) expect(Date.parse(start.at)).toBeGreaterThanOrEqual(Date.parse(event.data.dueAt));
    }
    if (event.type === 'NodeFailed' && event.data.retryable === false) {
      const next = events[i + 1];
      expect(next?.type === 'NodeStarted' && next.data.nodeId === event.data.nodeId, 'a non-retryable failure was retried').toBe(false);
      expect(next?.type === 'NodeRetryScheduled').toBe(false);
    }
    if (event.type === 'NodeFailed' && event.data.timedOut === true) {
      const started = events.slice(0, i).findLast((earlier) => earlier.type === 'NodeStarted' && earlier.data.nodeId === event.data.nodeId);
      const minutes = (byId.get(event.data.nodeId) as { timeout?: string }).timeout;
      expect(Date.parse(event.at) - Date.parse(started?.at as string)).toBeGreaterThanOrEqual(Number.parseInt(minutes as string, 10) * 60_000);
    }
  }
}
