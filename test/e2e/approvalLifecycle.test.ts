/**
 * The release starter through the real CLI, in a temporary directory with the
 * default database (./.cantbook/cantbook.db) and a cantbook.config.json naming
 * the demo agent: validate, run to the gate, approve with the exact command the
 * run printed, then the log, verify, tampering, rejection, and every way a
 * token can be wrong. Decisions are refused with their own codes even where no
 * agent is configured.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, cliPath, createCliSession, demoAgent, expectCodedError, expectJsonError, repoRoot, runProcess } from '../helpers/cliSession.js';
import type { CliSession } from '../helpers/cliSession.js';

interface Result {
  runId: string;
  terminalStatus: string;
  approvalToken?: string;
  finalContext: Record<string, unknown>;
  errorContext?: string;
  error?: { cause: string; nodeId?: string; message: string };
}
interface RunRow {
  runId: string;
  status: string;
  currentNode: string | null;
  errorContext: string | null;
  error: { cause: string } | null;
  approvals?: { status: string; approver: string | null; reason: string | null; resumed: boolean }[];
}
interface Event {
  runId: string;
  seq: number;
  globalSeq: number;
  type: string;
  data: Record<string, unknown>;
  at: string;
  hash: string;
}
interface Verdict {
  ok: boolean;
  runs: { runId: string; ok: boolean; problems: { kind: string; seq?: number; message: string }[] }[];
}

const DB = join('.cantbook', 'cantbook.db');
/** Where commands run with no agent configured: no config file there, the same database by --db. */
const NO_AGENT = { cwd: 'elsewhere' };
const NO_AGENT_DB = ['--db', join('..', DB)];

let cli: CliSession;
let runId: string;
let token: string;
/** The approve command exactly as `run` printed it. */
let approveLine: string;

beforeAll(() => {
  cli = createCliSession();
  copyFileSync(join(repoRoot, 'starter', 'release.cantbook'), cli.path('release.cantbook'));
  writeFileSync(cli.path('cantbook.config.json'), `${JSON.stringify({ agent: demoAgent })}\n`);
  mkdirSync(cli.path('elsewhere'));
});
afterAll(() => cli.remove());

/** A fresh paused release run (agent by --agent, which the run remembers; or by the config file, remembering none), for the tests that need their own gate. */
async function pausedRun(targetVersion: string, env: Record<string, string> = {}, agentFrom: 'flag' | 'config' = 'flag'): Promise<Result> {
  const agent = agentFrom === 'flag' ? ['--agent', demoAgent] : [];
  const result = await cli.json<Result>(['run', 'release.cantbook', '--input', `targetVersion=${targetVersion}`, ...agent], { env });
  expect(result.terminalStatus).toBe('pending_approval');
  return result;
}

describe('validate -> run -> paused -> approve -> completed', () => {
  it('validate accepts the starter', async () => {
    const result = await cli.run(['validate', 'release.cantbook']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/^✓ release\.cantbook {2}release · 4 nodes · sha256 [0-9a-f]{12}\n$/);
  });

  it('run creates ./.cantbook/cantbook.db, prints plain progress lines off a terminal, and pauses with the token and the approve command', async () => {
    expect(existsSync(cli.path('.cantbook'))).toBe(false);
    const result = await cli.run(['run', 'release.cantbook', '--input', 'targetVersion=2.0.0']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const lines = result.stdout.trimEnd().split('\n');
    runId = /^run (\S+) · playbook release$/.exec(lines[0] ?? '')?.[1] ?? '';
    token = /^ {2}token: {3}(cbk1\.\S+)$/m.exec(result.stdout)?.[1] ?? '';
    expect(runId).toMatch(/^[0-9a-f-]{36}$/);
    expect(token).toMatch(/^cbk1\.[\w-]+\.[\w-]{43}$/);
    expect(lines.slice(0, 5)).toEqual([
      `run ${runId} · playbook release`,
      '✓ version_bump (attempt 1)',
      '✓ changelog (attempt 1)',
      '? approval: Publish version 2.0.0 to the "latest" channel? Review the version bump and the changelog first.',
      expect.stringMatching(new RegExp(`^⏸ run ${runId} is waiting for approval at 'approval' \\(approval [0-9a-f-]{36}\\)$`)),
    ]);
    approveLine = lines.find((line) => line.startsWith('  approve: '))?.slice('  approve: '.length) ?? '';
    expect(approveLine).toBe(`cantbook approve ${token} --by "$USER"`);
    expect(lines).toContain(`  reject:  cantbook reject ${token} --by "$USER" --reason "<why>"`);
    // The database is private to its owner, in a private directory; no key file exists beside it (none is needed).
    expect(statSync(cli.path(DB)).isFile()).toBe(true);
    expect(statSync(cli.path(DB)).mode & 0o777).toBe(0o600);
    expect(statSync(cli.path('.cantbook')).mode & 0o777).toBe(0o700);
    expect(existsSync(cli.path(`${DB}.secret`))).toBe(false);
  });

  it('runs --status paused lists the run at its gate; approvals list the gate, never a token or its hash', async () => {
    const [paused, pending, all] = await Promise.all([
      cli.json<RunRow[]>(['runs', '--status', 'paused']),
      cli.json<{ runId: string; nodeId: string }[]>(['approvals', '--pending']),
      cli.json<{ runId: string; status: string }[]>(['approvals']),
    ]);
    expect(paused.map((row) => [row.runId, row.status, row.currentNode])).toEqual([[runId, 'paused', 'approval']]);
    expect(pending).toMatchObject([{ runId, nodeId: 'approval' }]);
    expect(all).toMatchObject([{ runId, status: 'pending' }]);
    for (const gate of [...pending, ...all]) expect(gate).not.toHaveProperty('tokenHash');
    expect(JSON.stringify([pending, all])).not.toContain(token.slice(token.lastIndexOf('.') + 1));
  });

  it('the approve command the run printed, pasted into a shell, approves and completes the run', async () => {
    // Verbatim: `--by "$USER"` is the pasting user's name.
    const script = `cantbook() { "${process.execPath}" "${cliPath}" "$@"; }\n${approveLine}`;
    const result = await runProcess('sh', ['-c', script], { cwd: cli.dir, env: cleanEnv({ USER: 'alice' }) });
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout.trimEnd().split('\n')).toEqual([
      `✓ approved 'approval' of run ${runId} as alice`,
      '▶ resumed after approval',
      '✓ publish (attempt 1)',
      `✔ run ${runId} completed`,
      expect.stringMatching(/^ {2}context: \{"targetVersion":"2\.0\.0","channel":"latest","version":"2\.0\.0",/),
      expect.stringMatching(new RegExp(`^ {2}anchor: {2}${runId}:11:[0-9a-f]{64}$`)),
    ]);
    const shown = await cli.json<RunRow>(['show', runId]);
    expect(shown).toMatchObject({ status: 'completed', currentNode: null, approvals: [{ status: 'approved', approver: 'alice', resumed: true }] });
  });

  it('log --json lists the events in order', async () => {
    const events = await cli.json<Event[]>(['log', runId]);
    expect(events.map((event) => [event.seq, event.type, event.data.nodeId ?? null])).toEqual([
      [1, 'RunStarted', null],
      [2, 'NodeStarted', 'version_bump'],
      [3, 'NodeSucceeded', 'version_bump'],
      [4, 'NodeStarted', 'changelog'],
      [5, 'NodeSucceeded', 'changelog'],
      [6, 'RunPaused', 'approval'],
      [7, 'ApprovalGranted', 'approval'],
      [8, 'RunResumed', 'approval'],
      [9, 'NodeStarted', 'publish'],
      [10, 'NodeSucceeded', 'publish'],
      [11, 'RunCompleted', null],
    ]);
    expect(events.every((event) => event.runId === runId && /^[0-9a-f]{64}$/.test(event.hash))).toBe(true);
    expect(new Set(events.map((event) => event.hash)).size).toBe(events.length);
    const globalSeqs = events.map((event) => event.globalSeq);
    expect(globalSeqs).toEqual([...globalSeqs].sort((a, b) => a - b));
    const times = events.map((event) => Date.parse(event.at));
    expect(times.every((time, index) => Number.isFinite(time) && (index === 0 || time >= (times[index - 1] ?? 0)))).toBe(true);
    expect(events[6]?.data).toMatchObject({ approver: 'alice', reason: '' });
    expect(events[9]?.data.output).toEqual({ published: { version: '2.0.0', channel: 'latest' } });
  });
});

// Each case has its own run or only reads the first one: they run side by side.
describe.concurrent('gate decisions: checked before agents are; reject -> failed', () => {
  it('approving an already-decided gate is E_APPROVAL_ALREADY_DECIDED (exit 75), with no agent configured', async () => {
    const [approved, rejected] = await Promise.all([
      cli.run([...NO_AGENT_DB, 'approve', token, '--by', 'bob'], NO_AGENT),
      cli.run([...NO_AGENT_DB, 'reject', token, '--by', 'bob', '--reason', 'late', '--json'], NO_AGENT),
    ]);
    expect(expectCodedError(approved, 'E_APPROVAL_ALREADY_DECIDED', 75)).toContain('was already approved by alice');
    expectJsonError(rejected, 'E_APPROVAL_ALREADY_DECIDED', 75);
  });

  it('resuming a completed run is E_PLAYBOOK_RESUME_BLOCKED (exit 75), with no agent configured', async () => {
    const stderr = expectCodedError(await cli.run([...NO_AGENT_DB, 'resume', runId], NO_AGENT), 'E_PLAYBOOK_RESUME_BLOCKED', 75);
    expect(stderr).toContain('was already resumed');
  });

  it('an unknown token is E_APPROVAL_NOT_FOUND (exit 67), with no agent configured', async () => {
    const unknown = `cbk1.00000000-0000-4000-8000-000000000000.${'A'.repeat(43)}`;
    const [approved, rejected] = await Promise.all([
      cli.run([...NO_AGENT_DB, 'approve', unknown, '--by', 'bob'], NO_AGENT),
      cli.run([...NO_AGENT_DB, 'reject', unknown, '--by', 'bob', '--reason', 'x', '--json'], NO_AGENT),
    ]);
    expectCodedError(approved, 'E_APPROVAL_NOT_FOUND', 67);
    expectJsonError(rejected, 'E_APPROVAL_NOT_FOUND', 67);
  });

  it('a forged token, or one from another gate, is E_APPROVAL_TOKEN_INVALID (exit 77); the genuine token then rejects: the run fails at once', async () => {
    const paused = await pausedRun('3.0.0');
    const genuine = paused.approvalToken ?? '';
    const signature = genuine.slice(genuine.lastIndexOf('.') + 1);
    const forged = `${genuine.slice(0, genuine.lastIndexOf('.') + 1)}${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
    const other = await pausedRun('3.0.1');
    const otherGate = `${genuine.slice(0, genuine.lastIndexOf('.') + 1)}${(other.approvalToken ?? '').slice((other.approvalToken ?? '').lastIndexOf('.') + 1)}`;
    const refusals = await Promise.all([
      cli.run([...NO_AGENT_DB, 'approve', forged, '--by', 'mallory'], NO_AGENT),
      cli.run([...NO_AGENT_DB, 'reject', forged, '--by', 'mallory', '--reason', 'x'], NO_AGENT),
      cli.run([...NO_AGENT_DB, 'approve', otherGate, '--by', 'mallory'], NO_AGENT),
    ]);
    for (const refusal of refusals) expectCodedError(refusal, 'E_APPROVAL_TOKEN_INVALID', 77);

    // The gate is still pending, and rejecting needs no agent.
    const rejected = await cli.json<Result>([...NO_AGENT_DB, 'reject', genuine, '--by', 'dave', '--reason', 'changelog is incomplete'], NO_AGENT);
    expect(rejected).toMatchObject({ runId: paused.runId, terminalStatus: 'failed', error: { cause: 'approval_rejected', nodeId: 'approval' } });
    const [shown, failed] = await Promise.all([cli.json<RunRow>(['show', paused.runId]), cli.json<RunRow[]>(['runs', '--status', 'failed'])]);
    expect(shown).toMatchObject({ status: 'failed', error: { cause: 'approval_rejected' }, approvals: [{ status: 'rejected', approver: 'dave', reason: 'changelog is incomplete' }] });
    expect(failed.map((row) => row.runId)).toEqual([paused.runId]);
  });

  it('approve with no agent records the approval, says how to continue, and resume --agent finishes the run', async () => {
    // Started with the config file's agent, the run remembers none: elsewhere, no agent is configured.
    const paused = await pausedRun('2.2.0', {}, 'config');
    const approved = await cli.run([...NO_AGENT_DB, 'approve', paused.approvalToken ?? '', '--by', 'carol'], NO_AGENT);
    // The decision is made and said so on stdout; the resume is what fails, with the code of the missing agent.
    expect({ code: approved.code, stdout: approved.stdout }).toEqual({ code: 78, stdout: `✓ approved 'approval' of run ${paused.runId} as carol\n` });
    expect(approved.stderr).toMatch(/^error\[E_ADAPTER_INVALID\]: no agent configured/);
    expect(approved.stderr).toContain(`hint: the approval is recorded; set CANTBOOK_AGENT to the agent's spec, then continue the run with: cantbook --db ${join('..', DB)} resume ${paused.runId} --agent "$CANTBOOK_AGENT"`);
    expect(await cli.json<RunRow>(['show', paused.runId])).toMatchObject({ status: 'running', activeNodes: [{ nodeId: 'approval', phase: 'approved' }], approvals: [{ status: 'approved', approver: 'carol', resumed: false }] });
    const resumed = await cli.json<Result>(['resume', paused.runId, '--agent', demoAgent]);
    expect(resumed).toMatchObject({ runId: paused.runId, terminalStatus: 'completed', finalContext: { published: { version: '2.2.0', channel: 'latest' } } });
  });
});

describe('verify', () => {
  it('passes on the untouched database, then fails after an event row is changed in the file', async () => {
    const before = await cli.json<Verdict>(['verify']);
    expect(before.ok).toBe(true);
    expect(before.runs).toHaveLength(4);
    expect(before.runs.every((run) => run.ok && run.problems.length === 0)).toBe(true);

    // Rewrite who approved the first run, as someone with write access to the file could.
    const db = new Database(cli.path(DB));
    try {
      const changed = db.prepare("UPDATE events SET data = json_set(data, '$.approver', 'mallory') WHERE run_id = ? AND type = 'ApprovalGranted'").run(runId);
      expect(changed.changes).toBe(1);
    } finally {
      db.close();
    }

    const after = await cli.run(['verify', '--json']);
    expect({ code: after.code, stderr: after.stderr }).toEqual({ code: 1, stderr: '' });
    const verdict = JSON.parse(after.stdout) as Verdict;
    expect(verdict.ok).toBe(false);
    const bad = verdict.runs.filter((run) => !run.ok);
    expect(bad.map((run) => run.runId)).toEqual([runId]);
    expect(bad[0]?.problems.some((problem) => problem.seq === 7)).toBe(true);

    const human = await cli.run(['verify', runId]);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(new RegExp(`^✗ ${runId} \\(\\d+ problems?\\)$`, 'm'));
    expect(human.stdout).toMatch(/^ {4}seq 7 /m);
  });
});

describe('secrets', () => {
  it('no token, credential or key reaches any output but the one line that hands the token over, nor the database file', () => {
    expect(cli.transcript.length).toBeGreaterThan(20);
    const credential = token.slice(token.lastIndexOf('.') + 1);
    const showing = cli.transcript.filter((text) => text.includes(credential));
    // run printed it (the human and --json forms); approve named it only in the command line the test typed.
    expect(showing.length).toBeGreaterThan(0);
    for (const text of showing) expect(text).toMatch(/token|approvalToken|approve/);
    expect(readFileSync(cli.path(DB)).includes(Buffer.from(credential))).toBe(false);
    expect(existsSync(cli.path(`${DB}.secret`))).toBe(false);
  });

  it('CANTBOOK_SECRET is accepted and ignored: tokens work with or without it, and it never appears in output, events or the file', async () => {
    const secret = 'cantbook-e2e-secret-7d1f0c55b2';
    const env = { CANTBOOK_SECRET: secret };
    const paused = await cli.json<Result>(['--db', 'env-secret.db', 'run', 'release.cantbook', '--input', 'targetVersion=4.0.0'], { env });
    expect(existsSync(cli.path('env-secret.db.secret'))).toBe(false);
    const approved = await cli.json<Result>(['--db', 'env-secret.db', 'approve', paused.approvalToken ?? '', '--by', 'frank']);
    expect(approved.terminalStatus).toBe('completed');
    expect(cli.transcript.some((text) => text.includes(secret))).toBe(false);
    expect(readFileSync(cli.path('env-secret.db')).includes(Buffer.from(secret))).toBe(false);
  });
});
