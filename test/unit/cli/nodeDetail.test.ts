/**
 * The viewer's node panel (buildNodeDetail): each attempt's times, duration,
 * what it was dispatched with, output, error and log, and the node's gates,
 * folded from a real run's log. The oracle for "as dispatched" is what the
 * dispatcher and the runner really received.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { executePlaybook, replayRun } from '../../../src/index.js';
import type { AttemptLog, DeterministicRunner, DispatchRequest, EventStore, RunReplay } from '../../../src/index.js';
import { buildNodeDetail } from '../../../src/cli/ui/nodeDetail.js';
import { failure, manualClock, playbookFrom, scriptedDispatcher, SECRET, success, tempStore } from '../../helpers/runtimeHarness.js';

let store: EventStore;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ store, cleanup } = await tempStore());
});
afterEach(async () => cleanup());

const detailOf = (replay: RunReplay, nodeId: string, logs: readonly AttemptLog[] = []) =>
  buildNodeDetail({ runId: replay.runId, model: replay.model, events: replay.events, steps: replay.steps, nodeId, logs });

const pipeline = playbookFrom(`
version: "1.0"
name: pipeline
inputs:
  - { name: topic, required: true }
  - { name: url, required: true }
nodes:
  - { id: fetch, type: deterministic, command: curl, args: ["-s", "{{inputs.url}}"] }
  - { id: research, type: agentic, skill: research, depends: [fetch], inputs: { about: "{{inputs.topic}}", depth: "{{level}}" } }
  - { id: gate, type: approval, prompt: "Publish {{inputs.topic}}?", depends: [research] }
`);

/** Runs the pipeline to its gate: fetch succeeds in 200 ms; research fails once after 1.5 s, then succeeds after 2.5 s. */
async function pausedPipeline() {
  const clock = manualClock('2026-02-01T08:00:00.000Z');
  const scripted = scriptedDispatcher({ research: [failure('rate limited'), success({ summary: 'three sources' })] });
  const durations = [1500, 2500];
  const dispatcher = {
    dispatch: (request: DispatchRequest) => {
      clock.advance(durations.shift() ?? 0);
      return scripted.dispatch(request);
    },
  };
  const runnerCalls: { command: string; args: string[] }[] = [];
  const deterministicRunner: DeterministicRunner = {
    run: (request) => {
      runnerCalls.push({ command: request.command, args: [...request.args] });
      clock.advance(200);
      return { ...success({ level: 2 }), exitCode: 0 };
    },
  };
  const result = await executePlaybook({ store, ...pipeline, initialContext: { topic: 'tides', url: 'https://example.test/tides' }, dispatcher, deterministicRunner, approvalSecret: SECRET, now: clock.now });
  expect(result.terminalStatus).toBe('pending_approval');
  return { replay: await replayRun(store, result.runId), calls: scripted.calls, runnerCalls };
}

describe('buildNodeDetail', () => {
  it("folds each attempt: times, duration, inputs as the dispatcher received them, output, error, and the attempt's own log", async () => {
    const { replay, calls } = await pausedPipeline();
    const logs: AttemptLog[] = [
      { nodeId: 'research', attempt: 2, text: 'searching tides\nfound 3\n', droppedBytes: 0 },
      { nodeId: 'research', attempt: 1, text: '…429 from upstream\n', droppedBytes: 4096 },
      { nodeId: 'fetch', attempt: 1, text: 'not research', droppedBytes: 0 },
    ];
    const detail = detailOf(replay, 'research', logs);
    expect(detail).toMatchObject({ runId: replay.runId, nodeId: 'research', type: 'agentic', branches: [], gates: [] });
    expect(calls.map((call) => [call.iteration, call.bindings])).toEqual([
      [1, { about: 'tides', depth: '2' }],
      [2, { about: 'tides', depth: '2' }],
    ]);
    expect(detail?.attempts).toEqual([
      expect.objectContaining({
        attempt: 1,
        status: 'failed',
        startedAt: '2026-02-01T08:00:00.200Z',
        endedAt: '2026-02-01T08:00:01.700Z',
        durationMs: 1500,
        dispatched: { kind: 'agent', agentId: 'research', bindings: calls[0]?.bindings },
        error: 'rate limited',
        log: { text: '…429 from upstream\n', droppedBytes: 4096 },
        contractViolations: [],
        childRuns: [],
      }),
      expect.objectContaining({
        attempt: 2,
        status: 'succeeded',
        startedAt: '2026-02-01T08:00:01.700Z',
        endedAt: '2026-02-01T08:00:04.200Z',
        durationMs: 2500,
        dispatched: { kind: 'agent', agentId: 'research', bindings: calls[1]?.bindings },
        output: { summary: 'three sources' },
        log: { text: 'searching tides\nfound 3\n', droppedBytes: 0 },
      }),
    ]);
    expect(detail?.attempts[1]).not.toHaveProperty('error');
    // Each attempt's start and end are the events of the log that say so.
    for (const attempt of detail?.attempts ?? []) {
      expect(replay.events.find((event) => event.seq === attempt.startSeq)).toMatchObject({ type: 'NodeStarted', at: attempt.startedAt, data: { nodeId: 'research', attempt: attempt.attempt } });
      expect(replay.events.find((event) => event.seq === attempt.endSeq)).toMatchObject({ at: attempt.endedAt, data: { nodeId: 'research', attempt: attempt.attempt } });
    }
  });

  it('renders a command the way the runner received it, with its exit code', async () => {
    const { replay, runnerCalls } = await pausedPipeline();
    const [fetch] = detailOf(replay, 'fetch')?.attempts ?? [];
    expect(runnerCalls).toEqual([{ command: 'curl', args: ['-s', 'https://example.test/tides'] }]);
    expect(fetch).toMatchObject({ attempt: 1, status: 'succeeded', durationMs: 200, exitCode: 0, output: { level: 2 }, log: null, dispatched: { kind: 'command', ...runnerCalls[0] } });
  });

  it("lists a gate's node with its gate as the fold has it, and no token hash", async () => {
    const { replay } = await pausedPipeline();
    const gate = detailOf(replay, 'gate');
    expect(gate?.attempts).toEqual([]);
    expect(gate?.gates).toEqual([
      { approvalId: expect.any(String), status: 'pending', prompt: 'Publish tides?', requestedAt: '2026-02-01T08:00:04.200Z', expiresAt: null, decidedAt: null, approver: null, reason: null, resumed: false },
    ]);
    expect(JSON.stringify(gate)).not.toContain('tokenHash');
  });

  it('shows an attempt with no result as running while the run goes on, and no node for an id the playbook lacks', async () => {
    const { replay } = await pausedPipeline();
    const started = replay.events.findIndex((event) => event.type === 'NodeStarted' && event.data.nodeId === 'research' && event.data.attempt === 2);
    const prefix = { ...replay, events: replay.events.slice(0, started + 1), steps: replay.steps.slice(0, started + 1) };
    expect(detailOf(prefix, 'research')?.attempts.map((a) => [a.attempt, a.status, a.endedAt, a.durationMs])).toEqual([
      [1, 'failed', '2026-02-01T08:00:01.700Z', 1500],
      [2, 'running', null, null],
    ]);
    expect(detailOf(replay, 'nope')).toBeNull();
    expect(detailOf(replay, '@completed')).toBeNull();
  });

  it("renders a branch node's inputs from what its branch produced (the context it sees)", async () => {
    const dispatcher = scriptedDispatcher({ draft: [success({ text: 'v1' })] });
    const result = await executePlaybook({
      store,
      ...playbookFrom(`
version: "1.0"
name: fork
nodes:
  - { id: start, type: agentic, skill: s }
  - id: both
    type: parallel
    depends: [start]
    branches:
      - id: writing
        nodes:
          - { id: draft, type: agentic, skill: w }
          - { id: edit, type: agentic, skill: e, depends: [draft], inputs: { text: "{{text}}", from: "{{start}}" } }
      - id: other
        nodes:
          - { id: lint, type: agentic, skill: l }
`),
      dispatcher,
      approvalSecret: SECRET,
    });
    expect(result.terminalStatus).toBe('completed');
    const replay = await replayRun(store, result.runId);
    const edit = detailOf(replay, 'edit');
    expect(edit?.branches).toEqual(['writing']);
    const received = dispatcher.calls.find((call) => call.nodeId === 'edit')?.bindings;
    expect(received).toEqual({ text: 'v1', from: 'done' });
    expect(edit?.attempts.map((a) => a.dispatched)).toEqual([{ kind: 'agent', agentId: 'e', bindings: received }]);
  });
});
