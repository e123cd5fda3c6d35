/**
 * starter/epic.cantbook (SPEC §8, §12) through the real CLI with the demo
 * agent, in a temporary directory holding a copy of starter/ so the command
 * runs as the README gives it: rcasd plans the epic as a child run, a map
 * runs ivtr for each of the five tasks the decomposition named (at most three
 * at a time), then the release runs as a child and pauses at its gate. The
 * approve command `run` printed, pasted into a shell, finishes the release
 * and then the epic. `runs` draws the tree, `show` names parents and children.
 * The agent comes from the directory's cantbook.config.json, so the pasted
 * command finds it as `run` did (a run remembering its own agent is issue 16).
 */
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, cliPath, createCliSession, repoRoot, runProcess } from '../helpers/cliSession.js';
import type { CliSession } from '../helpers/cliSession.js';

interface RunRow {
  runId: string;
  playbookName: string;
  status: string;
  currentNode: string | null;
  parentRunId: string | null;
}
interface Shown extends RunRow {
  parent: { runId: string; nodeId: string; attempt: number; index: number } | null;
  children: { runId: string; playbookName: string; status: string; nodeId: string | null; attempt: number | null; index: number | null }[];
}
interface Event {
  seq: number;
  type: string;
  data: Record<string, unknown>;
}

const AGENT = 'exec:node starter/demo-agent.mjs';
const TASKS = ['EPIC-1-T1', 'EPIC-1-T2', 'EPIC-1-T3', 'EPIC-1-T4', 'EPIC-1-T5'];

let cli: CliSession;
let root: string;
let runOutput: string;
/** The approve command exactly as `run` printed it. */
let approveLine: string;

beforeAll(async () => {
  cli = createCliSession();
  mkdirSync(cli.path('starter'));
  for (const file of readdirSync(join(repoRoot, 'starter'))) copyFileSync(join(repoRoot, 'starter', file), cli.path('starter', file));
  writeFileSync(cli.path('cantbook.config.json'), JSON.stringify({ agent: AGENT }));
  const result = await cli.run(['run', 'starter/epic.cantbook', '--input', 'epicId=EPIC-1', '--input', 'targetVersion=1.0.0']);
  expect({ code: result.code, stderr: result.stderr }, result.stdout).toEqual({ code: 0, stderr: '' });
  runOutput = result.stdout;
  root = /^run (\S+) · playbook epic$/m.exec(runOutput)?.[1] ?? '';
  approveLine = /^ {2}approve: (.+)$/m.exec(runOutput)?.[1] ?? '';
});
afterAll(() => cli.remove());

const childId = (nodeId: string, index: number, attempt = 1) => `${root}.${nodeId}.${attempt}.${index}`;

describe('cantbook run starter/epic.cantbook', () => {
  it('pauses at the release approval inside the release child, printing its token and the approve command', () => {
    expect(root).not.toBe('');
    expect(runOutput.split('\n')[0]).toBe(`run ${root} · playbook epic`);
    // The root call returns pending_approval with the child's gate (SPEC §12), named with the child that holds it.
    expect(runOutput).toMatch(new RegExp(`^⏸ run ${escape(root)} is waiting for approval at 'approval' of child run ${escape(childId('release', 0))} \\(approval [0-9a-f-]{36}\\)$`, 'm'));
    expect(runOutput).toContain('Publish version 1.0.0 to the "latest" channel?');
    expect(approveLine).toMatch(/^cantbook approve cbk1\.[\w-]+\.[\w-]{43} --by "\$USER"$/);
  });

  it('runs shows the tree: the epic, then its rcasd child, five ivtr children and the release child', async () => {
    const rows = await cli.json<RunRow[]>(['runs']);
    expect(rows).toHaveLength(8);
    expect(rows.filter((row) => row.parentRunId === null).map((row) => [row.runId, row.playbookName])).toEqual([[root, 'epic']]);
    const children = rows.filter((row) => row.parentRunId === root);
    expect(children.map((row) => row.playbookName).sort()).toEqual(['ivtr', 'ivtr', 'ivtr', 'ivtr', 'ivtr', 'rcasd', 'release']);
    expect(children.filter((row) => row.playbookName !== 'release').every((row) => row.status === 'completed')).toBe(true);
    expect(children.find((row) => row.playbookName === 'release')).toMatchObject({ runId: childId('release', 0), status: 'paused', currentNode: 'approval' });

    const text = await cli.run(['runs']);
    expect({ code: text.code, stderr: text.stderr }).toEqual({ code: 0, stderr: '' });
    const ids = text.stdout.trimEnd().split('\n').slice(1).map((line) => line.split(/ {2,}/)[0]);
    // Children under their parent, oldest first: the plan, the five tasks (started in item order), the release.
    expect(ids[0]).toBe(root);
    expect(ids.slice(1, 2)).toEqual([`├─ ${childId('plan', 0)}`]);
    expect(ids.slice(2, 7).sort()).toEqual(TASKS.map((_, index) => `├─ ${childId('implement_all', index)}`));
    expect(ids.slice(7)).toEqual([`└─ ${childId('release', 0)}`]);
  });

  it("show lists the epic's children, and a child names its parent", async () => {
    const shown = await cli.json<Shown>(['show', root]);
    expect(shown.parentRunId).toBeNull();
    expect(shown.children.map((child) => [child.runId, child.nodeId, child.index, child.status])).toEqual([
      [childId('plan', 0), 'plan', 0, 'completed'],
      ...TASKS.map((_, index) => [childId('implement_all', index), 'implement_all', index, 'completed']),
      [childId('release', 0), 'release', 0, 'paused'],
    ]);
    const text = (await cli.run(['show', root])).stdout;
    expect(text).toMatch(new RegExp(`^children +${escape(childId('plan', 0))} +completed +rcasd +node plan$`, 'm'));
    expect(text).toMatch(new RegExp(`^ +${escape(childId('implement_all', 2))} +completed +ivtr +node implement_all, item 2$`, 'm'));
    expect(text).toMatch(new RegExp(`^ +${escape(childId('release', 0))} +paused +release +node release · at approval$`, 'm'));

    const item = await cli.json<Shown>(['show', childId('implement_all', 2)]);
    expect(item).toMatchObject({ parentRunId: root, parent: { runId: root, nodeId: 'implement_all', attempt: 1, index: 2 }, children: [] });
    expect((await cli.run(['show', childId('implement_all', 2)])).stdout).toMatch(new RegExp(`^parent +${escape(root)} \\(node implement_all, item 2\\) · epic · `, 'm'));
  });

  it('each ivtr child got one task id of the decomposition, and the map never had more than three children in flight', async () => {
    for (const [index, task] of TASKS.entries()) {
      const [started] = await cli.json<Event[]>(['log', childId('implement_all', index)]);
      expect(started).toMatchObject({ type: 'RunStarted', data: { playbookName: 'ivtr', context: { taskId: task }, parent: { runId: root, nodeId: 'implement_all', attempt: 1, index } } });
    }
    const events = await cli.json<Event[]>(['log', root]);
    let inFlight = 0;
    let most = 0;
    for (const event of events) {
      if (event.data.nodeId !== 'implement_all') continue;
      if (event.type === 'ChildRunStarted') most = Math.max(most, ++inFlight);
      if (event.type === 'ChildRunSettled') inFlight -= 1;
    }
    expect(most).toBeLessThanOrEqual(3);
    // Inline, the children are driven concurrently (docs/adr/0009-child-runs.md).
    expect(most).toBeGreaterThan(1);
    const text = (await cli.run(['log', root])).stdout;
    expect(text).toContain(`implement_all attempt 1: started child ${childId('implement_all', 4)} for item 4`);
    expect(text).toContain(`plan attempt 1: child ${childId('plan', 0)} completed`);
  });

  it('approvals lists the gate of the release child', async () => {
    const pending = await cli.json<{ runId: string; nodeId: string }[]>(['approvals', '--pending']);
    expect(pending).toMatchObject([{ runId: childId('release', 0), nodeId: 'approval' }]);
  });

  it('the approve command the run printed, pasted into a shell, completes the release and then the epic', async () => {
    const script = `cantbook() { "${process.execPath}" "${cliPath}" "$@"; }\n${approveLine}`;
    const result = await runProcess('sh', ['-c', script], { cwd: cli.dir, env: cleanEnv({ USER: 'alice' }) });
    expect({ code: result.code, stderr: result.stderr }, result.stdout).toEqual({ code: 0, stderr: '' });
    expect(result.stdout).toContain(`✓ approved 'approval' of run ${childId('release', 0)} as alice`);
    expect(result.stdout).toMatch(/^✔ run \S+ completed$/m);

    const shown = await cli.json<Shown>(['show', root]);
    expect(shown.status).toBe('completed');
    expect(shown.children.every((child) => child.status === 'completed')).toBe(true);
    const rows = await cli.json<RunRow[]>(['runs']);
    expect(rows.map((row) => row.status)).toEqual(Array(8).fill('completed'));
    const verdict = await cli.json<{ ok: boolean; runs: { runId: string; ok: boolean }[] }>(['verify']);
    expect(verdict.ok).toBe(true);
    expect(verdict.runs).toHaveLength(8);
  });
});

/** `text` as a literal inside a RegExp. */
function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
