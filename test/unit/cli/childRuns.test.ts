/**
 * How the CLI and the viewer present child runs (SPEC §12), pure parts only:
 * the runs tree, a run's children placed by its log, the `show` lines, the
 * `log` and timeline lines of ChildRunStarted / ChildRunSettled, and the
 * labels of child runs' progress lines.
 */
import { describe, expect, it } from 'vitest';
import { parsePlaybook } from '../../../src/index.js';
import type { PlaybookResult, RunEvent, RunRow, RunStatus } from '../../../src/index.js';
import { childRunsOf, describePlace, mapNodeIds, mapNodeIdsOfLog, orderRunTree, parentOfLog } from '../../../src/cli/childRuns.js';
import { createOutput } from '../../../src/cli/output.js';
import { childLabel } from '../../../src/cli/progress.js';
import { createCommandLine, printResult } from '../../../src/cli/runResult.js';
import { describeChildren, describeParent, summarize as logLine } from '../../../src/cli/queryCommands.js';
import { summarize as timelineLine } from '../../../src/cli/ui/runView.js';
import { newestTreesFirst } from '../../../src/cli/ui/uiServer.js';

const ROOT = '01a23394-5d62-71c0-8a46-beb19b45c113';

const EPIC = `
version: "1.0"
name: epic
inputs:
  - { name: epicId, required: true }
nodes:
  - { id: plan, type: playbook, playbook: rcasd.cantbook, inputs: { epicId: "{{inputs.epicId}}" } }
  - { id: implement_all, type: map, depends: [plan], items: "{{tasks}}", playbook: ivtr.cantbook, item_input: taskId, max_concurrency: 3 }
`;

/** A runs row with the fields these views read; the rest as a fresh run has them. */
function row(runId: string, parentRunId: string | null, options: { status?: RunStatus; playbookName?: string; currentNode?: string | null; startedAt?: string } = {}): RunRow {
  const startedAt = options.startedAt ?? '2026-01-05T09:00:00.000Z';
  return {
    runId,
    playbookName: options.playbookName ?? 'ivtr',
    playbookHash: 'f'.repeat(64),
    status: options.status ?? 'completed',
    currentNode: options.currentNode ?? null,
    activeNodes: [],
    bindings: {},
    iterationCounts: {},
    errorContext: null,
    error: null,
    startedAt,
    updatedAt: startedAt,
    completedAt: null,
    version: 1,
    epicId: null,
    sessionId: null,
    parentRunId,
    wakeAt: null,
  };
}

let seq = 0;
/** A stored event of run `runId` (seq, hash and time are placeholders: these views never read them). */
function event<T extends RunEvent['type']>(runId: string, type: T, data: Extract<RunEvent, { type: T }>['data']): RunEvent {
  seq += 1;
  return { runId, seq, globalSeq: seq, type, data, at: '2026-01-05T09:00:00.000Z', hash: '0'.repeat(64) } as RunEvent;
}

const started = (nodeId: string, index: number, attempt = 1): RunEvent =>
  event(ROOT, 'ChildRunStarted', { nodeId, attempt, index, childRunId: `${ROOT}.${nodeId}.${attempt}.${index}` });
const runStarted = (runId: string, source: string, parent?: { runId: string; nodeId: string; attempt: number; index: number }): RunEvent =>
  event(runId, 'RunStarted', { playbookName: 'epic', sourceHash: 'a'.repeat(64), source, context: { epicId: 'EPIC-1' }, maxIterationsDefault: 3, ...(parent === undefined ? {} : { parent }) });

describe('orderRunTree (cantbook runs)', () => {
  const tree = (rows: RunRow[]) => orderRunTree(rows).map(({ row: r, depth, prefix }) => [`${prefix}${r.runId}`, depth]);

  it('puts each child right under its parent, in the listing order, with tree glyphs', () => {
    const rows = [
      row('r1', null),
      row('r1.plan.1.0', 'r1'),
      row('r2', null),
      row('r1.map.1.0', 'r1'),
      row('r1.map.1.0.inner.1.0', 'r1.map.1.0'),
      row('r1.map.1.1', 'r1'),
    ];
    expect(tree(rows)).toEqual([
      ['r1', 0],
      ['├─ r1.plan.1.0', 1],
      ['├─ r1.map.1.0', 1],
      ['│  └─ r1.map.1.0.inner.1.0', 2],
      ['└─ r1.map.1.1', 1],
      ['r2', 0],
    ]);
  });

  it('shows a child whose parent is not in the listing at the top level', () => {
    // `runs --status paused`: the paused child is listed, its running parent is not.
    expect(tree([row('r1.release.1.0', 'r1'), row('r3', null)])).toEqual([
      ['r1.release.1.0', 0],
      ['r3', 0],
    ]);
  });

  it('lists every row exactly once, even on a parent cycle a corrupt projection could hold', () => {
    const rows = [row('a', 'b'), row('b', 'a'), row('c', 'c'), row('d', null)];
    const lines = orderRunTree(rows);
    expect(lines.map((line) => line.row.runId).sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(lines.filter((line) => line.depth === 0).map((line) => line.row.runId)).toEqual(['c', 'd', 'a']);
  });

  it('the start page lists the newest tree first, each with its children oldest first', () => {
    const rows = [row('r1', null), row('r1.plan.1.0', 'r1'), row('r1.map.1.0', 'r1'), row('r2', null), row('r2.plan.1.0', 'r2')];
    expect(newestTreesFirst(rows).map((r) => [r.runId, r.depth])).toEqual([
      ['r2', 0],
      ['r2.plan.1.0', 1],
      ['r1', 0],
      ['r1.plan.1.0', 1],
      ['r1.map.1.0', 1],
    ]);
  });
});

describe('describePlace', () => {
  const maps = mapNodeIds(parsePlaybook(EPIC).definition);

  it('names the item of a map child only, and the attempt after a retry', () => {
    expect([...maps]).toEqual(['implement_all']);
    expect(describePlace({ nodeId: 'implement_all', attempt: 1, index: 2 }, maps)).toBe('node implement_all, item 2');
    expect(describePlace({ nodeId: 'plan', attempt: 1, index: 0 }, maps)).toBe('node plan');
    expect(describePlace({ nodeId: 'plan', attempt: 2, index: 0 }, maps)).toBe('node plan, attempt 2');
    // Node types unknown (a log whose text does not parse): the item is named.
    expect(describePlace({ nodeId: 'plan', attempt: 1, index: 0 }, null)).toBe('node plan, item 0');
  });

  it('reads the map nodes from the text a log is pinned to', () => {
    expect([...(mapNodeIdsOfLog([runStarted(ROOT, EPIC)]) ?? [])]).toEqual(['implement_all']);
    expect(mapNodeIdsOfLog([runStarted(ROOT, 'not: [a playbook')])).toBeNull();
    expect(mapNodeIdsOfLog([])).toBeNull();
  });
});

describe("a run's children and parent (cantbook show)", () => {
  it('places each child row by the ChildRunStarted that named it, in the order the parent started them', () => {
    const events = [runStarted(ROOT, EPIC), started('plan', 0), started('implement_all', 0), started('implement_all', 1), started('implement_all', 1, 2)];
    // listRuns order (oldest first) need not be the order the parent started them.
    const rows = [
      row(`${ROOT}.implement_all.1.1`, ROOT, { status: 'failed' }),
      row('stray', ROOT, { status: 'running' }),
      row(`${ROOT}.implement_all.2.1`, ROOT, { status: 'paused', currentNode: 'approval' }),
      row(`${ROOT}.plan.1.0`, ROOT, { playbookName: 'rcasd' }),
      row(`${ROOT}.implement_all.1.0`, ROOT),
    ];
    const children = childRunsOf(events, rows);
    expect(children.map((child) => [child.runId, child.nodeId, child.attempt, child.index, child.status])).toEqual([
      [`${ROOT}.plan.1.0`, 'plan', 1, 0, 'completed'],
      [`${ROOT}.implement_all.1.0`, 'implement_all', 1, 0, 'completed'],
      [`${ROOT}.implement_all.1.1`, 'implement_all', 1, 1, 'failed'],
      [`${ROOT}.implement_all.2.1`, 'implement_all', 2, 1, 'paused'],
      ['stray', null, null, null, 'running'],
    ]);
    expect(describeChildren(children, mapNodeIdsOfLog(events))).toEqual([
      `${ROOT}.plan.1.0           completed  rcasd  node plan`,
      `${ROOT}.implement_all.1.0  completed  ivtr   node implement_all, item 0`,
      `${ROOT}.implement_all.1.1  failed     ivtr   node implement_all, item 1`,
      `${ROOT}.implement_all.2.1  paused     ivtr   node implement_all, item 1, attempt 2 · at approval`,
      `${'stray'.padEnd(`${ROOT}.implement_all.1.0`.length)}  running    ivtr   -`,
    ]);
  });

  it("names the parent from the child's RunStarted, with the parent row's playbook and status when there is one", () => {
    const child = `${ROOT}.implement_all.1.2`;
    const parent = parentOfLog([runStarted(child, EPIC, { runId: ROOT, nodeId: 'implement_all', attempt: 1, index: 2 })]);
    expect(parent).toEqual({ runId: ROOT, nodeId: 'implement_all', attempt: 1, index: 2 });
    expect(parentOfLog([runStarted(ROOT, EPIC)])).toBeNull();
    const maps = new Set(['implement_all']);
    expect(describeParent({ ...(parent as NonNullable<typeof parent>), playbookName: 'epic', status: 'running' }, maps)).toBe(`${ROOT} (node implement_all, item 2) · epic · running`);
    expect(describeParent({ runId: ROOT, nodeId: 'plan', attempt: 1, index: 0, playbookName: null, status: null }, maps)).toBe(`${ROOT} (node plan)`);
  });
});

describe('ChildRunStarted and ChildRunSettled lines', () => {
  const maps = new Set(['implement_all']);
  const child = `${ROOT}.implement_all.1.2`;
  const settled = (status: 'completed' | 'failed' | 'cancelled', error?: string): RunEvent =>
    event(ROOT, 'ChildRunSettled', { nodeId: 'implement_all', attempt: 1, index: 2, childRunId: child, status, output: {}, ...(error === undefined ? {} : { error }) });

  it('cantbook log: who started which child for which item, and how it ended', () => {
    expect(logLine(started('implement_all', 2), maps)).toBe(`implement_all attempt 1: started child ${child} for item 2`);
    expect(logLine(started('plan', 0), maps)).toBe(`plan attempt 1: started child ${ROOT}.plan.1.0`);
    // Without the playbook's node types, the item is named.
    expect(logLine(started('plan', 0))).toBe(`plan attempt 1: started child ${ROOT}.plan.1.0 for item 0`);
    expect(logLine(settled('completed'), maps)).toBe(`implement_all attempt 1: child ${child} completed`);
    expect(logLine(settled('failed', "run failed at 'test': 12 tests fail"), maps)).toBe(`implement_all attempt 1: child ${child} failed: run failed at 'test': 12 tests fail`);
    expect(logLine(settled('cancelled', 'a sibling child failed'), maps)).toBe(`implement_all attempt 1: child ${child} cancelled: a sibling child failed`);
    expect(logLine(settled('failed', `why\n${'x'.repeat(300)}`), maps)).toMatch(/failed: why x{100,}…$/);
  });

  it("cantbook log: a child's RunStarted names its parent before the context", () => {
    const line = logLine(runStarted(child, EPIC, { runId: ROOT, nodeId: 'implement_all', attempt: 1, index: 2 }));
    expect(line).toBe(`epic sha256 aaaaaaaaaaaa child of ${ROOT} (node implement_all, item 2) context {"epicId":"EPIC-1"}`);
    expect(logLine(runStarted(ROOT, EPIC))).toBe('epic sha256 aaaaaaaaaaaa context {"epicId":"EPIC-1"}');
  });

  it("the viewer's timeline says the same in its own words", () => {
    // On the parent's page a child is named by what its id adds, as the page's lists name it.
    expect(timelineLine(started('implement_all', 2), maps)).toBe('implement_all started child ….implement_all.1.2 for item 2 (attempt 1)');
    expect(timelineLine(started('plan', 0), maps)).toBe('plan started child ….plan.1.0 (attempt 1)');
    expect(timelineLine(settled('completed'), maps)).toBe('child ….implement_all.1.2 of implement_all completed');
    expect(timelineLine(settled('failed', 'boom'), maps)).toBe('child ….implement_all.1.2 of implement_all failed: boom');
    const foreign = event(ROOT, 'ChildRunStarted', { nodeId: 'plan', attempt: 1, index: 0, childRunId: 'elsewhere-7' });
    expect(timelineLine(foreign, maps)).toBe('plan started child elsewhere-7 (attempt 1)');
    expect(timelineLine(runStarted(child, EPIC, { runId: ROOT, nodeId: 'implement_all', attempt: 1, index: 2 }))).toBe(`run of 'epic' started as a child of ${ROOT} (node implement_all)`);
  });

  it('progress lines of child runs are labelled by what their id adds to the first run the command saw', () => {
    expect(childLabel(ROOT, ROOT)).toBe('');
    expect(childLabel(ROOT, child)).toBe('[implement_all.1.2] ');
    // approve resumes the child first; the parent it then continues is named in full.
    expect(childLabel(child, ROOT)).toBe(`[${ROOT}] `);
  });
});

describe('printResult of a tree waiting at a gate inside a child', () => {
  const printed = (result: PlaybookResult): string[] => {
    let text = '';
    const sink = { write: (chunk: string) => (text += chunk) };
    printResult(createOutput({ json: false, stdout: sink, stderr: sink }), result, createCommandLine('cantbook', ''));
    return text.trimEnd().split('\n');
  };
  const paused = (gates: { nodeId: string; runId: string; approvalId: string; token: string }[]): PlaybookResult => ({
    runId: ROOT,
    terminalStatus: 'pending_approval',
    finalContext: {},
    approvals: gates,
    approvalId: gates[0]?.approvalId ?? '',
    pausedNodeId: gates[0]?.nodeId ?? '',
  });

  it("names the child run that holds the gate; a gate of the run itself reads as it always did", () => {
    const release = `${ROOT}.release.1.0`;
    expect(printed(paused([{ nodeId: 'approval', runId: release, approvalId: 'a1', token: 'cbk1.a1.sig' }])).slice(0, 3)).toEqual([
      `⏸ run ${ROOT} is waiting for approval at 'approval' of child run ${release} (approval a1)`,
      '  token:   cbk1.a1.sig',
      '  approve: cantbook approve cbk1.a1.sig --by "$USER"',
    ]);
    expect(printed(paused([{ nodeId: 'approval', runId: ROOT, approvalId: 'a1', token: 'cbk1.a1.sig' }]))[0]).toBe(`⏸ run ${ROOT} is waiting for approval at 'approval' (approval a1)`);
    const two = printed(paused([
      { nodeId: 'approval', runId: release, approvalId: 'a1', token: 'cbk1.a1.sig' },
      { nodeId: 'gate', runId: ROOT, approvalId: 'a2', token: 'cbk1.a2.sig' },
    ]));
    expect(two[0]).toBe(`⏸ run ${ROOT} is waiting for approval at 2 gates ('approval' of child run ${release}, 'gate')`);
    expect(two.filter((line) => line.startsWith('  gate '))).toEqual([`  gate approval of child run ${release}:`, '  gate gate:']);
  });
});
