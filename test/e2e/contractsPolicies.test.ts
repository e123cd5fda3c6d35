/**
 * SPEC §13 through the real CLI: a permissive gate that auto-passes (a fake
 * `pnpm` on PATH stands in for the guarded `pnpm test`), an escalation gate a
 * `hitl_escalate` handler opens, and the rcasd starter aborting on a broken
 * `ensures: { schema: task_tree }`, each shown as such by `run`, `show`,
 * `log` and `approvals` (SPEC §13: "shown as such everywhere"); and every
 * starter, contracts and all, running end to end with the demo agent.
 */
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCliSession, demoAgent, repoRoot } from '../helpers/cliSession.js';
import type { CliSession } from '../helpers/cliSession.js';

interface Gate {
  approvalId: string;
  runId: string;
  nodeId: string;
  status: string;
  approver: string | null;
  reason: string | null;
  auto?: true;
  rule?: string;
  escalation?: { on: string; checkpoint?: string };
}
interface Result {
  runId: string;
  terminalStatus: string;
  approvalToken?: string;
  finalContext: Record<string, unknown>;
  errorContext?: string;
  error?: { cause: string; nodeId?: string; message: string };
}
interface Event {
  type: string;
  data: Record<string, unknown>;
}

const starter = (file: string) => join(repoRoot, 'starter', file);
let cli: CliSession;
/** PATH with the session's bin/ (holding the fake pnpm) first. */
let path: string;

beforeAll(() => {
  cli = createCliSession();
  // A stand-in for pnpm: `pnpm test` prints a JSON verdict, as a deterministic step's command does.
  mkdirSync(cli.path('bin'));
  writeFileSync(cli.path('bin', 'pnpm'), `#!${process.execPath}\nconsole.log(JSON.stringify({ tests: { ran: process.argv.slice(2).join(' '), passed: 3 } }));\n`);
  chmodSync(cli.path('bin', 'pnpm'), 0o755);
  path = `${cli.path('bin')}${delimiter}${process.env.PATH ?? ''}`;
  // DEFAULT_POLICY_RULES auto-approve `^pnpm (test|…)` (safe-qa-tool): the permissive gate guards only that.
  writeFileSync(
    cli.path('qa.cantbook'),
    [
      'version: "1.0"',
      'name: qa',
      'nodes:',
      '  - { id: prepare, type: deterministic, command: node, args: ["-e", "console.log(JSON.stringify({ prepared: true }))"] }',
      '  - { id: run_tests, type: approval, policy: permissive, prompt: "Run the test suite?", depends: [prepare] }',
      '  - { id: unit, type: deterministic, command: pnpm, args: [test], depends: [run_tests] }',
      '',
    ].join('\n'),
  );
  // The same gate, conservative: a human must decide it, even one who calls themselves "policy".
  const qa = readFileSync(cli.path('qa.cantbook'), 'utf8');
  writeFileSync(cli.path('qa-human.cantbook'), qa.replace('name: qa', 'name: qa-human').replace('policy: permissive', 'policy: conservative'));
  writeFileSync(
    cli.path('escalate.cantbook'),
    [
      'version: "1.0"',
      'name: escalate',
      'error_handlers:',
      '  - { on: contract_violation, action: hitl_escalate }',
      'nodes:',
      '  - { id: research, type: agentic, skill: s }',
      '  - { id: plan, type: agentic, skill: s, depends: [research], requires: { fields: [topic] } }',
      '',
    ].join('\n'),
  );
});
afterAll(() => cli.remove());

/** The row of `table` (text output, header first) whose first cell is `id`, split into the header's columns. */
function rowOf(table: string, id: string): Record<string, string> {
  const [header = '', ...rows] = table.trimEnd().split('\n');
  const starts = [...header.matchAll(/\S+/g)].map((match) => match.index);
  const row = rows.find((line) => line.startsWith(id)) ?? '';
  return Object.fromEntries(starts.map((start, i) => [header.slice(start).split(/\s+/)[0], row.slice(start, starts[i + 1]).trim()]));
}

describe('a permissive gate that guards only auto-approved commands', () => {
  const db = 'auto.db';
  let run: { code: number | null; stdout: string; stderr: string };
  let runId: string;

  beforeAll(async () => {
    run = await cli.run(['--db', db, 'run', 'qa.cantbook'], { env: { PATH: path } });
    runId = /^run (\S+) · playbook qa$/m.exec(run.stdout)?.[1] ?? '';
  });

  it('`run` goes past it without a token, marks the auto-pass, and the guarded `pnpm test` runs', async () => {
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines.slice(0, 7)).toEqual([
      `run ${runId} · playbook qa`,
      '✓ prepare (attempt 1)',
      '? run_tests: Run the test suite?',
      '✓ run_tests auto-passed by policy (rule safe-qa-tool)',
      '▶ resumed after run_tests',
      '✓ unit (attempt 1)',
      `✔ run ${runId} completed`,
    ]);
    expect(run.stdout).not.toMatch(/token:|cbk1\./);
    const shown = await cli.json<{ status: string }>(['--db', db, 'show', runId]);
    expect(shown.status).toBe('completed');
  });

  it('`show` says the gate was auto-passed by policy and by which rule, in text and JSON', async () => {
    const text = await cli.run(['--db', db, 'show', runId]);
    expect(text).toMatchObject({ code: 0, stderr: '' });
    expect(text.stdout).toMatch(/^approval {3}run_tests · auto-passed by policy \(rule safe-qa-tool\) · id [0-9a-f-]{36}$/m);
    expect(text.stdout).not.toMatch(/run_tests · approved by/);
    const shown = await cli.json<{ approvals: Gate[] }>(['--db', db, 'show', runId]);
    expect(shown.approvals).toEqual([
      expect.objectContaining({ nodeId: 'run_tests', status: 'approved', approver: 'policy', auto: true, rule: 'safe-qa-tool', resumed: true }),
    ]);
    expect(shown.approvals[0]).not.toHaveProperty('escalation');
  });

  it('`log` marks the auto-pass, and the event carries {auto: true, rule, approver: policy}', async () => {
    const text = await cli.run(['--db', db, 'log', runId]);
    expect(text.stdout).toMatch(/ApprovalGranted {2}run_tests auto-passed by policy \(rule safe-qa-tool\)$/m);
    const events = await cli.json<Event[]>(['--db', db, 'log', runId]);
    expect(events.map((event) => event.type)).toEqual([
      'RunStarted', 'NodeStarted', 'NodeSucceeded', 'RunPaused', 'ApprovalGranted', 'RunResumed', 'NodeStarted', 'NodeSucceeded', 'RunCompleted',
    ]);
    expect(events.find((event) => event.type === 'ApprovalGranted')?.data).toMatchObject({ nodeId: 'run_tests', approver: 'policy', auto: true, rule: 'safe-qa-tool' });
    expect(events.findLast((event) => event.type === 'NodeSucceeded')?.data).toMatchObject({ nodeId: 'unit', output: { tests: { ran: 'test', passed: 3 } } });
  });

  it('`approvals` lists it as auto-passed by policy (rule safe-qa-tool); nothing is pending', async () => {
    const text = await cli.run(['--db', db, 'approvals']);
    expect(text).toMatchObject({ code: 0, stderr: '' });
    const gates = await cli.json<Gate[]>(['--db', db, 'approvals']);
    expect(gates).toEqual([expect.objectContaining({ runId, nodeId: 'run_tests', status: 'approved', approver: 'policy', auto: true, rule: 'safe-qa-tool' })]);
    expect(rowOf(text.stdout, gates[0]?.approvalId ?? '?')).toMatchObject({ NODE: 'run_tests', KIND: 'approval', STATUS: 'auto-passed', BY: 'policy (rule safe-qa-tool)' });
    expect((await cli.run(['--db', db, 'approvals', '--pending'])).stdout).toBe('no pending approvals\n');
  });

  it('a human who approves as "policy" is not shown as an auto-pass: the mark comes from the log, not the name', async () => {
    const paused = await cli.json<Result>(['--db', db, 'run', 'qa-human.cantbook'], { env: { PATH: path } });
    expect(paused.terminalStatus).toBe('pending_approval');
    const approved = await cli.run(['--db', db, 'approve', paused.approvalToken as string, '--by', 'policy', '--reason', 'I read it'], { env: { PATH: path } });
    expect(approved.code).toBe(0);
    const shown = await cli.run(['--db', db, 'show', paused.runId]);
    expect(shown.stdout).toMatch(/^approval {3}run_tests · approved by policy \(I read it\) · id /m);
    const gates = await cli.json<Gate[]>(['--db', db, 'approvals']);
    const human = gates.find((gate) => gate.runId === paused.runId);
    expect(human).toMatchObject({ status: 'approved', approver: 'policy' });
    expect(human).not.toHaveProperty('auto');
    expect(rowOf((await cli.run(['--db', db, 'approvals'])).stdout, human?.approvalId ?? '?')).toMatchObject({ STATUS: 'approved', BY: 'policy' });
  });
});

describe('an escalation gate (contract_violation: hitl_escalate)', () => {
  const db = 'escalate.db';
  let paused: Result;

  beforeAll(async () => {
    paused = await cli.json<Result>(['--db', db, 'run', 'escalate.cantbook', '--agent', demoAgent]);
  });

  it('the run pauses at the node that broke its contract, and `approvals --pending` lists an escalation', async () => {
    expect(paused).toMatchObject({ terminalStatus: 'pending_approval', pausedNodeId: 'plan' });
    const pending = await cli.json<(Gate & { prompt: string })[]>(['--db', db, 'approvals', '--pending']);
    expect(pending).toEqual([expect.objectContaining({ nodeId: 'plan', escalation: { on: 'contract_violation', checkpoint: 'entry' } })]);
    expect(pending[0]?.prompt).toContain("requires on 'plan': the context has no 'topic'");
    const text = await cli.run(['--db', db, 'approvals', '--pending']);
    expect(rowOf(text.stdout, pending[0]?.approvalId ?? '?')).toMatchObject({ NODE: 'plan', KIND: 'escalation (contract_violation)', STATUS: 'pending', BY: '-' });
  });

  it('`show` lists the gate as an escalation, with what opened it and how to decide it', async () => {
    const text = await cli.run(['--db', db, 'show', paused.runId]);
    expect(text.stdout).toMatch(/^escalation {2}plan · contract_violation at entry · pending · id [0-9a-f-]{36}$/m);
    expect(text.stdout).toMatch(/^ {12}decide with: cantbook --db escalate\.db approve '<the token run printed>' --by "\$USER"/m);
    const log = await cli.run(['--db', db, 'log', paused.runId]);
    expect(log.stdout).toMatch(/ContractViolated {2}plan attempt 1 requires topic: requires on 'plan': the context has no 'topic'$/m);
    expect(log.stdout).toMatch(/RunPaused {9}plan escalation \(contract_violation\) /);
  });

  it('approved by a human, the run goes on; the gate stays marked as an escalation, decided by that human', async () => {
    const done = await cli.json<Result>(['--db', db, 'approve', paused.approvalToken as string, '--by', 'alice', '--reason', 'plan without a topic', '--agent', demoAgent]);
    expect(done.terminalStatus).toBe('completed');
    const [gate] = await cli.json<Gate[]>(['--db', db, 'approvals']);
    expect(gate).toMatchObject({ status: 'approved', approver: 'alice', escalation: { on: 'contract_violation' } });
    expect(gate).not.toHaveProperty('auto');
    const text = await cli.run(['--db', db, 'show', paused.runId]);
    expect(text.stdout).toMatch(/^escalation {2}plan · contract_violation at entry · approved by alice \(plan without a topic\) · id /m);
  });
});

describe("rcasd's decomposition without a task tree (contract_violation: abort)", () => {
  const db = 'rcasd.db';
  const broken = { DEMO_AGENT_EMPTY: 'decomposition' };
  const message = 'ensures.schema[task_tree] on decomposition: the context has no "task_tree" (the node\'s output must set it)';
  let run: { code: number | null; stdout: string; stderr: string };
  let runId: string;

  beforeAll(async () => {
    run = await cli.run(['--db', db, 'run', starter('rcasd.cantbook'), '--input', 'epicId=EPIC-9', '--agent', demoAgent], { env: broken });
    runId = /^run (\S+) · playbook rcasd$/m.exec(run.stdout)?.[1] ?? '';
  });

  it('`run` fails at decomposition with cause contract_violation and exits 1 (a failed run), offering retry', () => {
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`✗ run ${runId} failed at 'decomposition' (contract_violation): ${message}`);
    expect(run.stdout).toContain(`  retry:   cantbook --db rcasd.db retry ${runId}`);
  });

  it('`show` gives the cause, the node and the violation, and exits 0', async () => {
    const text = await cli.run(['--db', db, 'show', runId]);
    expect(text).toMatchObject({ code: 0, stderr: '' });
    expect(text.stdout).toMatch(/^status {5}failed$/m);
    expect(text.stdout).toContain(`error      contract_violation at 'decomposition': ${message}`);
    const shown = await cli.json<{ status: string; error: unknown; errorContext: string }>(['--db', db, 'show', runId]);
    expect(shown).toMatchObject({ status: 'failed', error: { cause: 'contract_violation', nodeId: 'decomposition', message }, errorContext: message });
    const events = await cli.json<Event[]>(['--db', db, 'log', runId]);
    expect(events.slice(-3).map((event) => [event.type, event.data])).toEqual([
      ['ContractViolated', expect.objectContaining({ nodeId: 'decomposition', attempt: 1, kind: 'schema', key: 'task_tree', message })],
      ['NodeSucceeded', expect.objectContaining({ nodeId: 'decomposition', output: {} })],
      ['RunFailed', expect.objectContaining({ nodeId: 'decomposition', cause: 'contract_violation' })],
    ]);
  });

  it('`retry` redrives decomposition only, and with a task tree the run completes', async () => {
    const retried = await cli.json<Result>(['--db', db, 'retry', runId, '--agent', demoAgent]);
    expect(retried.terminalStatus).toBe('completed');
    const events = await cli.json<Event[]>(['--db', db, 'log', runId]);
    const started = events.filter((event) => event.type === 'NodeStarted').map((event) => `${String(event.data.nodeId)}#${String(event.data.attempt)}`);
    expect(started).toEqual(['research#1', 'consensus#1', 'architecture#1', 'specification#1', 'decomposition#1', 'decomposition#2']);
    expect(events.filter((event) => event.type === 'ContractViolated')).toHaveLength(1);
  });
});

describe('every starter, contracts included, runs end to end with the demo agent', () => {
  const inputs: Record<string, string[]> = {
    'rcasd.cantbook': ['--input', 'epicId=EPIC-1'],
    'ivtr.cantbook': ['--input', 'taskId=T-1'],
    'release.cantbook': ['--input', 'targetVersion=1.0.0'],
    'review.cantbook': ['--input', 'change=PR-1'],
    'ci-gate.cantbook': [],
    'epic.cantbook': ['--input', 'epicId=EPIC-1', '--input', 'targetVersion=1.0.0'],
  };
  const files = readdirSync(join(repoRoot, 'starter')).filter((file) => file.endsWith('.cantbook'));

  it('knows the inputs of every starter', () => {
    expect(files.sort()).toEqual(Object.keys(inputs).sort());
  });

  it.each(files)('%s completes or waits at its gate, and breaks no contract', async (file) => {
    const result = await cli.json<Result>(['--db', 'starters.db', 'run', starter(file), ...(inputs[file] ?? []), '--agent', demoAgent]);
    expect(['completed', 'pending_approval']).toContain(result.terminalStatus);
    const events = await cli.json<Event[]>(['--db', 'starters.db', 'log', result.runId]);
    expect(events.filter((event) => event.type === 'ContractViolated')).toEqual([]);
  });

  it("rcasd's final context holds the decomposition's task tree, as SPEC §13's task_tree describes it", async () => {
    const result = await cli.json<Result>(['--db', 'starters.db', 'run', starter('rcasd.cantbook'), '--input', 'epicId=EPIC-2', '--agent', demoAgent]);
    const tree = result.finalContext.task_tree as { title: unknown; acceptance: unknown; id?: unknown; depends?: unknown }[];
    expect(Array.isArray(tree) && tree.length > 0).toBe(true);
    for (const task of tree) {
      expect(typeof task.title === 'string' && task.title !== '').toBe(true);
      expect(Array.isArray(task.acceptance) && task.acceptance.some((line) => typeof line === 'string' && line.trim() !== '')).toBe(true);
    }
    expect(tree.map((task) => task.id)).toEqual(['EPIC-2-T1', 'EPIC-2-T2', 'EPIC-2-T3']);
    // The human-readable list the decomposition always produced is still there.
    expect(result.finalContext.decomposition).toMatchObject({ tasks: ['EPIC-2-T1: api', 'EPIC-2-T2: worker', 'EPIC-2-T3: store'] });
  });
});
