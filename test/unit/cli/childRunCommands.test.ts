/**
 * `cantbook runs`, `show` and `log`, and the viewer's API, on a store that
 * holds a tree of runs (SPEC §12): an epic whose plan child completed and
 * whose map has one child completed and one paused at a gate, beside another
 * root run. Through runCli in-process, on a real SQLite file written by the
 * store's own append; the rows are written as given (these commands only read).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../../src/index.js';
import type { EventStore, NewRunEvent, RunRow, RunStatus } from '../../../src/index.js';
import { runCli } from '../../../src/cli/runCli.js';
import { SESSION_KEY_HEADER, startUiServer } from '../../../src/cli/ui/uiServer.js';
import type { UiServer } from '../../../src/cli/ui/uiServer.js';
import type { CliResult } from '../../helpers/cliSession.js';
import { rawRequest } from '../../helpers/uiFixture.js';

const ROOT = '01a23394-5d62-71c0-8a46-beb19b45c113';
const OTHER = '01a23394-9999-71c0-8a46-beb19b45c113';
const PLAN = `${ROOT}.plan.1.0`;
const ITEM0 = `${ROOT}.implement_all.1.0`;
const ITEM1 = `${ROOT}.implement_all.1.1`;

const EPIC = `version: "1.0"
name: epic
inputs:
  - { name: epicId, required: true }
nodes:
  - { id: plan, type: playbook, playbook: rcasd.cantbook, inputs: { epicId: "{{inputs.epicId}}" } }
  - { id: implement_all, type: map, depends: [plan], items: "{{tasks}}", playbook: ivtr.cantbook, item_input: taskId, max_concurrency: 3 }
`;
const CHILD = (name: string) => `version: "1.0"
name: ${name}
nodes:
  - { id: work, type: agentic, agent: a }
  - { id: approval, type: approval, prompt: "ok?", depends: [work] }
`;

let dir: string;
let db: string;

/** `at` n seconds into the test's morning. */
const at = (n: number) => new Date(Date.parse('2026-01-05T09:00:00.000Z') + n * 1000).toISOString();

/** Appends `events` as run `runId`'s whole log, with a row saying what these commands show. */
async function writeRun(
  store: EventStore,
  runId: string,
  options: { name: string; source: string; start: number; status: RunStatus; currentNode: string | null; parent?: { nodeId: string; attempt: number; index: number }; events?: NewRunEvent[] },
): Promise<void> {
  const sourceHash = createHash('sha256').update(options.source).digest('hex');
  const events: NewRunEvent[] = [
    {
      type: 'RunStarted',
      at: at(options.start),
      data: {
        playbookName: options.name,
        sourceHash,
        source: options.source,
        context: {},
        maxIterationsDefault: 3,
        ...(options.parent === undefined ? {} : { parent: { runId: ROOT, ...options.parent } }),
      },
    },
    ...(options.events ?? []),
  ];
  const row: RunRow = {
    runId,
    playbookName: options.name,
    playbookHash: sourceHash,
    status: options.status,
    currentNode: options.currentNode,
    activeNodes: options.currentNode === null ? [] : [{ nodeId: options.currentNode, phase: options.status === 'paused' ? 'paused' : 'running' }],
    bindings: {},
    iterationCounts: {},
    errorContext: null,
    error: null,
    startedAt: at(options.start),
    updatedAt: at(options.start + 1),
    completedAt: options.status === 'completed' ? at(options.start + 1) : null,
    version: events.length,
    epicId: null,
    sessionId: null,
    parentRunId: options.parent === undefined ? null : ROOT,
    wakeAt: null,
  };
  await store.append({ runId, expectedVersion: 0, events, run: row, approvals: [], playbook: { sourceHash, name: options.name, source: options.source } });
}

beforeAll(async () => {
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'cantbook-child-runs-')));
  db = join(dir, 'tree.db');
  const store = openSqliteStore(db);
  const started = (nodeId: string, index: number, n: number): NewRunEvent => ({ type: 'ChildRunStarted', at: at(n), data: { nodeId, attempt: 1, index, childRunId: `${ROOT}.${nodeId}.1.${index}` } });
  const settled = (nodeId: string, index: number, n: number, output: Record<string, unknown> = {}): NewRunEvent => ({
    type: 'ChildRunSettled',
    at: at(n),
    data: { nodeId, attempt: 1, index, childRunId: `${ROOT}.${nodeId}.1.${index}`, status: 'completed', output },
  });
  await writeRun(store, ROOT, {
    name: 'epic',
    source: EPIC,
    start: 0,
    status: 'running',
    currentNode: 'implement_all',
    events: [
      { type: 'NodeStarted', at: at(1), data: { nodeId: 'plan', attempt: 1 } },
      started('plan', 0, 2),
      settled('plan', 0, 9, { tasks: ['T1', 'T2'] }),
      { type: 'NodeSucceeded', at: at(10), data: { nodeId: 'plan', attempt: 1, output: { tasks: ['T1', 'T2'] } } },
      { type: 'NodeStarted', at: at(11), data: { nodeId: 'implement_all', attempt: 1 } },
      started('implement_all', 0, 12),
      started('implement_all', 1, 13),
      settled('implement_all', 0, 20),
    ],
  });
  await writeRun(store, PLAN, { name: 'rcasd', source: CHILD('rcasd'), start: 3, status: 'completed', currentNode: null, parent: { nodeId: 'plan', attempt: 1, index: 0 } });
  // The second item's child started first: the tree lists children in the order they started, show in the parent's order.
  await writeRun(store, ITEM1, { name: 'ivtr', source: CHILD('ivtr'), start: 14, status: 'paused', currentNode: 'approval', parent: { nodeId: 'implement_all', attempt: 1, index: 1 } });
  await writeRun(store, ITEM0, { name: 'ivtr', source: CHILD('ivtr'), start: 15, status: 'completed', currentNode: null, parent: { nodeId: 'implement_all', attempt: 1, index: 0 } });
  await writeRun(store, OTHER, { name: 'release', source: CHILD('release'), start: 30, status: 'completed', currentNode: null });
  await store.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(...argv: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(['--db', db, ...argv], { cwd: dir, env: {}, stdout: { write: (text: string) => (stdout += text) }, stderr: { write: (text: string) => (stderr += text) } });
  return { code, stdout, stderr };
}

async function json<T>(...argv: string[]): Promise<T> {
  const result = await cli(...argv, '--json');
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  return JSON.parse(result.stdout) as T;
}

describe('cantbook runs', () => {
  it('lists the newest root first, each with its children under it in the order they started', async () => {
    const result = await cli('runs');
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^RUN +PLAYBOOK +STATUS +NODE +STARTED +UPDATED$/);
    expect(lines.slice(1).map((line) => line.split(/ {2,}/).slice(0, 4))).toEqual([
      [OTHER, 'release', 'completed', '-'],
      [ROOT, 'epic', 'running', 'implement_all'],
      [`├─ ${PLAN}`, 'rcasd', 'completed', '-'],
      [`├─ ${ITEM1}`, 'ivtr', 'paused', 'approval'],
      [`└─ ${ITEM0}`, 'ivtr', 'completed', '-'],
    ]);
  });

  it('--limit keeps the newest runs; --playbook and --since filter; bad values are E_USAGE', async () => {
    const ids = async (...argv: string[]) => (await json<{ runId: string }[]>('runs', ...argv)).map((r) => r.runId);
    expect(await ids('--limit', '2')).toEqual([OTHER, ITEM0]);
    expect(await ids('--playbook', 'ivtr')).toEqual([ITEM0, ITEM1]);
    expect(await ids('--since', at(15))).toEqual([OTHER, ITEM0]);
    expect(await ids('--playbook', 'ivtr', '--status', 'paused')).toEqual([ITEM1]);
    expect((await cli('runs', '--limit', '0')).code).toBe(64);
    expect((await cli('runs', '--since', 'last tuesday')).code).toBe(64);
    expect((await cli('runs', '--playbook', 'nothing')).stdout).toBe('no runs match\n');
  });

  it('a filter that leaves the parent out shows its child at the top level', async () => {
    const lines = (await cli('runs', '--status', 'paused')).stdout.trimEnd().split('\n');
    expect(lines.slice(1).map((line) => line.split(/ {2,}/)[0])).toEqual([ITEM1]);
  });

  it('--json: the rows in listing order, each with its parentRunId', async () => {
    const rows = await json<{ runId: string; parentRunId: string | null }[]>('runs');
    expect(rows.map((r) => [r.runId, r.parentRunId])).toEqual([
      [OTHER, null],
      [ITEM0, ROOT],
      [ITEM1, ROOT],
      [PLAN, ROOT],
      [ROOT, null],
    ]);
  });
});

describe('cantbook show', () => {
  const fields = (text: string) => text.trimEnd().split('\n').map((line) => line.trimEnd());

  it("lists a parent's children in the order it started them, with status, playbook and place", async () => {
    const result = await cli('show', ROOT);
    expect(result.code).toBe(0);
    const lines = fields(result.stdout);
    const first = lines.findIndex((line) => line.startsWith('children '));
    // Field labels are padded to the longest one, `completed`.
    expect(lines.slice(first)).toEqual([
      `children   ${PLAN}           completed  rcasd  node plan`,
      `           ${ITEM0}  completed  ivtr   node implement_all, item 0`,
      `           ${ITEM1}  paused     ivtr   node implement_all, item 1 · at approval`,
    ]);
    expect(lines.some((line) => line.startsWith('parent '))).toBe(false);
  });

  it('names a child\'s parent with the node and item that started it', async () => {
    const item = fields((await cli('show', ITEM1)).stdout);
    expect(item).toContain(`parent     ${ROOT} (node implement_all, item 1) · epic · running`);
    expect(item.some((line) => line.startsWith('children'))).toBe(false);
    expect(fields((await cli('show', PLAN)).stdout)).toContain(`parent     ${ROOT} (node plan) · epic · running`);
  });

  it('a run with neither says nothing of either', async () => {
    const text = (await cli('show', OTHER)).stdout;
    expect(text).not.toMatch(/^(parent|children) /m);
  });

  it('--json adds parentRunId, parent and children', async () => {
    const root = await json<{ parentRunId: string | null; parent: unknown; children: unknown[] }>('show', ROOT);
    expect(root.parentRunId).toBeNull();
    expect(root.parent).toBeNull();
    expect(root.children).toEqual([
      { runId: PLAN, playbookName: 'rcasd', status: 'completed', currentNode: null, nodeId: 'plan', attempt: 1, index: 0 },
      { runId: ITEM0, playbookName: 'ivtr', status: 'completed', currentNode: null, nodeId: 'implement_all', attempt: 1, index: 0 },
      { runId: ITEM1, playbookName: 'ivtr', status: 'paused', currentNode: 'approval', nodeId: 'implement_all', attempt: 1, index: 1 },
    ]);
    const child = await json<{ parentRunId: string | null; parent: unknown; children: unknown[] }>('show', ITEM1);
    expect(child).toMatchObject({ parentRunId: ROOT, parent: { runId: ROOT, nodeId: 'implement_all', attempt: 1, index: 1, playbookName: 'epic', status: 'running' }, children: [] });
  });
});

describe('cantbook log', () => {
  it("says which child each ChildRunStarted started, for which item, and how each settled; a child's RunStarted names its parent", async () => {
    const details = (await cli('log', ROOT)).stdout.split('\n').slice(1).map((line) => line.split(/ {2,}/).slice(2).join('  '));
    expect(details.filter((line) => line.startsWith('Child'))).toEqual([
      `ChildRunStarted  plan attempt 1: started child ${PLAN}`,
      `ChildRunSettled  plan attempt 1: child ${PLAN} completed`,
      `ChildRunStarted  implement_all attempt 1: started child ${ITEM0} for item 0`,
      `ChildRunStarted  implement_all attempt 1: started child ${ITEM1} for item 1`,
      `ChildRunSettled  implement_all attempt 1: child ${ITEM0} completed`,
    ]);
    const child = (await cli('log', ITEM1)).stdout.split('\n')[1] ?? '';
    expect(child).toContain(`RunStarted  ivtr sha256 `);
    expect(child).toContain(` child of ${ROOT} (node implement_all, item 1) context {}`);
  });
});

describe("the viewer's API", () => {
  let server: UiServer;
  let store: EventStore;
  beforeAll(async () => {
    store = openSqliteStore(db, { readonly: true });
    server = await startUiServer({ store, port: 0, dispatcherFor: () => Promise.reject(new Error('no decisions here')) });
  });
  afterAll(async () => {
    await server.close();
    await store.close();
  });
  const get = async (path: string) => {
    const response = await rawRequest(server.port, { path, headers: { [SESSION_KEY_HEADER]: server.sessionKey } });
    expect(response.status, response.body).toBe(200);
    return response.json();
  };

  it('a run page links to its parent and lists its children with their places', async () => {
    const root = (await get(`/api/runs/${ROOT}`)) as { parent: unknown; children: { runId: string; status: string; place: string | null }[] };
    expect(root.parent).toBeNull();
    expect(root.children.map(({ runId, status, place }) => [runId, status, place])).toEqual([
      [PLAN, 'completed', 'node plan'],
      [ITEM0, 'completed', 'node implement_all, item 0'],
      [ITEM1, 'paused', 'node implement_all, item 1'],
    ]);
    const item = (await get(`/api/runs/${encodeURIComponent(ITEM1)}`)) as { parent: unknown; children: unknown[] };
    expect(item).toMatchObject({ parent: { runId: ROOT, playbookName: 'epic', status: 'running', place: 'node implement_all, item 1' }, children: [] });
  });

  it('the start page lists the newest tree first, children under their root with their depth', async () => {
    const { runs } = (await get('/api/runs')) as { runs: { runId: string; depth: number; parentRunId: string | null }[] };
    expect(runs.map(({ runId, depth }) => [runId, depth])).toEqual([
      [OTHER, 0],
      [ROOT, 0],
      [PLAN, 1],
      [ITEM1, 1],
      [ITEM0, 1],
    ]);
  });
});
