/**
 * An attempt's log (SPEC §7: the agent's stderr, bounded) and a run's settings
 * (ADR 0010) are written by the runtime beside the log, with the commit that
 * records the attempt's result or the run's start, and never into an event.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_ATTEMPT_LOG_BYTES } from '../../../src/adapters/types.js';
import type { AgentDispatcher, NodeOutcome } from '../../../src/adapters/types.js';
import { executePlaybook, startRun } from '../../../src/runtime/executePlaybook.js';
import { readRunEvents, verifyRun } from '../../../src/runtime/queries.js';
import { attemptLogOf } from '../../../src/runtime/runSession.js';
import type { EventStore } from '../../../src/store/eventStore.js';
import { playbookFrom, tempStore } from '../../helpers/runtimeHarness.js';

let store: EventStore;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ store, cleanup } = await tempStore()));
afterEach(() => cleanup());

const flaky = playbookFrom(`
version: "1.0"
name: flaky
nodes:
  - { id: build, type: agentic, skill: b, on_failure: { max_iterations: 3 } }
  - { id: quiet, type: agentic, skill: q, depends: [build] }
`);

/** Answers `outcomes` in turn for `build`, success for any other node; each answer carries a log naming its attempt, except `quiet`'s. */
function loggingDispatcher(outcomes: NodeOutcome['status'][]): AgentDispatcher {
  let call = 0;
  return {
    dispatch(request) {
      if (request.nodeId !== 'build') return { status: 'success', output: {} };
      const status = outcomes[call++] ?? 'success';
      const log = `attempt ${request.iteration} of ${request.nodeId} says hello\n`;
      return status === 'success' ? { status, output: { built: true }, log } : { status, error: 'compile error', log };
    },
  };
}

describe('attempt logs (SPEC §7)', () => {
  it("keeps each attempt's log, failed ones included, beside the log and never in an event", async () => {
    const result = await executePlaybook({ store, ...flaky, dispatcher: loggingDispatcher(['failure', 'failure', 'success']) });
    expect(result.terminalStatus).toBe('completed');
    const logs = await store.listAttemptLogs(result.runId);
    expect(logs).toEqual([1, 2, 3].map((attempt) => ({ runId: result.runId, nodeId: 'build', attempt, text: `attempt ${attempt} of build says hello\n`, droppedBytes: 0 })));
    expect(await store.listAttemptLogs(result.runId, { nodeId: 'quiet' })).toEqual([]);
    const events = JSON.stringify(await readRunEvents(store, result.runId));
    expect(events).not.toContain('says hello');
    expect((await verifyRun(store, result.runId)).ok).toBe(true);
  });

  it('keeps the log of an attempt that timed out', async () => {
    const timed = playbookFrom(`
version: "1.0"
name: timed
nodes:
  - { id: build, type: agentic, skill: b, timeout: 200ms, on_failure: { max_iterations: 1 } }
`);
    const dispatcher: AgentDispatcher = {
      dispatch: (request) =>
        new Promise<NodeOutcome>((resolve) => request.signal.addEventListener('abort', () => resolve({ status: 'failure', error: 'killed', log: 'was working when stopped\n' }))),
    };
    const result = await executePlaybook({ store, ...timed, dispatcher });
    expect(result.terminalStatus).toBe('exceeded_iteration_cap');
    expect(await store.listAttemptLogs(result.runId)).toMatchObject([{ nodeId: 'build', attempt: 1, text: 'was working when stopped\n' }]);
  });

  it('bounds a log to its last MAX_ATTEMPT_LOG_BYTES, never cutting a character, and says how much was dropped', () => {
    const head = 'h'.repeat(1000);
    const tail = 'é'.repeat(MAX_ATTEMPT_LOG_BYTES / 2); // two bytes each: exactly the bound
    const log = attemptLogOf('n', 2, { status: 'success', log: `${head}x${tail}` });
    expect(log).toEqual({ nodeId: 'n', attempt: 2, text: tail, droppedBytes: 1001 });
    // Cut inside a character: the partial character goes too.
    const odd = attemptLogOf('n', 1, { status: 'failure', log: `ab${'é'.repeat(MAX_ATTEMPT_LOG_BYTES / 2)}` });
    expect(Buffer.byteLength(odd?.text ?? '')).toBeLessThanOrEqual(MAX_ATTEMPT_LOG_BYTES);
    expect(odd?.text).toBe('é'.repeat(MAX_ATTEMPT_LOG_BYTES / 2));
    expect(odd?.droppedBytes).toBe(2);
    expect(attemptLogOf('n', 1, { status: 'success' })).toBeUndefined();
    expect(attemptLogOf('n', 1, { status: 'success', log: '' })).toBeUndefined();
    expect(attemptLogOf('n', 1, { status: 'success', log: 42 } as unknown as NodeOutcome)).toBeUndefined();
  });
});

describe('run settings (ADR 0010)', () => {
  it('a root run remembers the settings it was started with; a run started without has none', async () => {
    const dispatcher = loggingDispatcher([]);
    const remembered = await executePlaybook({ store, ...flaky, dispatcher, runSettings: { agent: 'exec:node my-agent.mjs' } });
    const plain = await executePlaybook({ store, ...flaky, dispatcher });
    expect(await store.getRunSettings(remembered.runId)).toEqual({ agent: 'exec:node my-agent.mjs' });
    expect(await store.getRunSettings(plain.runId)).toBeNull();
    expect(JSON.stringify(await readRunEvents(store, remembered.runId))).not.toContain('my-agent');
  });

  it('a run started for workers remembers them too', async () => {
    const { runId } = await startRun({ store, ...flaky, runSettings: { agent: 'http://agents.local/run' } });
    expect(await store.getRunSettings(runId)).toEqual({ agent: 'http://agents.local/run' });
  });
});
