/**
 * Trust boundaries (SPEC §5.2, §14; docs/security.md), with real processes on
 * real files: an agent cannot approve its own gate from anything cantbook
 * writes, a rewritten history is caught by an anchor kept from before, an
 * agent's output cannot pick the program or directory of a deterministic
 * node, and of eight processes deciding one gate at once exactly one wins.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENESIS_HASH, hashEvent } from '../../src/events/hashChain.js';
import type { RunEvent } from '../../src/events/types.js';
import { parsePlaybook } from '../../src/playbook/parsePlaybook.js';
import { executePlaybook } from '../../src/runtime/executePlaybook.js';
import { rebuildProjections } from '../../src/runtime/queries.js';
import { openSqliteStore } from '../../src/store/sqliteEventStore.js';
import { cleanEnv, cliPath, createCliSession, demoAgent, expectCodedError, repoRoot, runProcess } from '../helpers/cliSession.js';
import type { CliSession } from '../helpers/cliSession.js';
import { rawRequest } from '../helpers/uiFixture.js';

const FORGER = join(import.meta.dirname, 'fixtures', 'forgingAgent.mjs');
const WORKER = join(import.meta.dirname, 'fixtures', 'approveWorker.mjs');
const LIBRARY = join(repoRoot, 'dist', 'index.js');

interface Result {
  runId: string;
  terminalStatus: string;
  approvalToken?: string;
  approvalId?: string;
  anchor?: string;
  finalContext: Record<string, unknown>;
}
interface Verdict {
  ok: boolean;
  runs: { runId: string; ok: boolean; anchor: string | null; head: { seq: number; hash: string } | null; problems: { kind: string; seq?: number; message: string }[] }[];
}
interface Loot {
  ownEnv: Record<string, string>;
  ancestors: { pid: number; cmdline: string[]; environ: Record<string, string> }[];
  databases: { path: string; dump: { tables: string[]; events: number } }[];
  keyFiles: Record<string, string>;
}
interface AttackReport {
  secretsTried: number;
  attempts: { approvalId: string; how: string; exitCode: number; errorCode: string | null; terminalStatus: string | null }[];
}

let cli: CliSession;
beforeAll(() => {
  cli = createCliSession('cantbook-trust-');
});
afterAll(() => cli.remove());

const gatePlaybook = `version: "1.0"
name: gated
nodes:
  - { id: work, type: agentic, agent: worker }
  - { id: gate, type: approval, prompt: "Ship what work produced?", depends: [work] }
  - { id: ship, type: agentic, agent: worker, depends: [gate] }
`;

describe('an agent cannot approve its own gate (SPEC §5.2)', () => {
  it.each([
    { name: 'default set-up: default database, no secret anywhere', db: join('.cantbook', 'cantbook.db'), env: {}, leftoverKey: false },
    {
      name: 'CANTBOOK_SECRET set for the driver, --db elsewhere, and a v1 key file left beside the database',
      db: 'other.db',
      env: { CANTBOOK_SECRET: 'driver-secret-that-agents-can-read-via-proc' },
      leftoverKey: true,
    },
  ])('$name', async ({ db, env, leftoverKey }) => {
    const dir = join(cli.dir, leftoverKey ? 'secret-case' : 'default-case');
    mkdirSync(dir);
    writeFileSync(join(dir, 'gated.cantbook'), gatePlaybook);
    if (leftoverKey) writeFileSync(join(dir, `${db}.secret`), `${'ab'.repeat(32)}\n`, { mode: 0o600 });
    const loot = join(dir, 'loot.json');
    const agent = `exec:${process.execPath} ${FORGER}`;
    const cwd = leftoverKey ? 'secret-case' : 'default-case';
    const dbArgs = leftoverKey ? ['--db', db] : [];

    // 1. The driver runs the forging agent for `work`; the run pauses at the gate with the one true token.
    const paused = await cli.json<Result>([...dbArgs, 'run', 'gated.cantbook', '--agent', agent], { cwd, env: { ...env, FORGER_LOOT: loot } });
    expect(paused.terminalStatus).toBe('pending_approval');
    const found = JSON.parse(readFileSync(loot, 'utf8')) as Loot;

    // The agent really went everywhere the audit went: the database file and its driver's environment.
    expect(found.databases.map((entry) => entry.path)).toContain(join(dir, db));
    expect(found.databases[0]?.dump.tables).toEqual(expect.arrayContaining(['events', 'approvals']));
    // The agent's parent is its supervisor (src/adapters/supervisor.ts), which runs with an empty environment; the driver is above it.
    expect(found.ancestors[0]?.environ).toEqual({});
    const driver = found.ancestors.find((ancestor) => ancestor.cmdline.includes(cliPath));
    expect(driver?.cmdline).toEqual(expect.arrayContaining([cliPath, 'run']));
    if (leftoverKey) {
      expect(driver?.environ.CANTBOOK_SECRET).toBe(env.CANTBOOK_SECRET);
      expect(Object.values(found.keyFiles)).toContain('ab'.repeat(32));
    } else {
      // Nothing to find: no key file exists.
      expect(found.keyFiles).toEqual({});
    }
    // Its own environment carries nothing of cantbook's but the four per-attempt variables.
    expect(Object.keys(found.ownEnv).sort()).toEqual(['CANTBOOK_ATTEMPT', 'CANTBOOK_IDEMPOTENCY_KEY', 'CANTBOOK_NODE_ID', 'CANTBOOK_RUN_ID']);

    // 2. Its accomplice, once the gate is open, mints every token it can and approves with the CLI.
    const attack = await runProcess(process.execPath, [FORGER, 'attack', loot, cliPath], { cwd: dir, env: cleanEnv() });
    expect(attack.code, attack.stderr).toBe(0);
    const report = JSON.parse(attack.stdout) as AttackReport;
    expect(report.secretsTried).toBe(leftoverKey ? 2 : 0);
    expect(report.attempts.length).toBe(3 + report.secretsTried);
    for (const attempt of report.attempts) {
      expect(attempt, attempt.how).toMatchObject({ approvalId: paused.approvalId, exitCode: 77, errorCode: 'E_APPROVAL_TOKEN_INVALID', terminalStatus: null });
    }

    // 3. The run is still paused at its gate, undecided; the genuine token still works.
    const shown = await cli.json<{ status: string; approvals: { status: string; approver: string | null }[] }>([...dbArgs, 'show', paused.runId], { cwd });
    expect(shown).toMatchObject({ status: 'paused', approvals: [{ status: 'pending', approver: null }] });
    const approved = await cli.json<Result>([...dbArgs, 'approve', paused.approvalToken ?? '', '--by', 'the-human', '--agent', demoAgent], { cwd });
    expect(approved.terminalStatus).toBe('completed');
    // No key file was created by any of it (a leftover one is ignored, never rewritten).
    expect(existsSync(join(dir, `${db}.secret`))).toBe(leftoverKey);
  });
});

describe('anchors detect a rewritten history (SPEC §14)', () => {
  it('edit an event, recompute the whole chain, rebuild projections: verify passes, verify --anchor from before fails and names the run', async () => {
    const dir = join(cli.dir, 'anchor-case');
    mkdirSync(dir);
    copyFileSync(join(repoRoot, 'starter', 'release.cantbook'), join(dir, 'release.cantbook'));
    const cwd = 'anchor-case';
    const paused = await cli.json<Result>(['run', 'release.cantbook', '--input', 'targetVersion=5.0.0', '--agent', demoAgent], { cwd });
    const done = await cli.json<Result>(['approve', paused.approvalToken ?? '', '--by', 'alice', '--agent', demoAgent], { cwd });
    const other = await cli.json<Result>(['run', 'release.cantbook', '--input', 'targetVersion=5.0.1', '--agent', demoAgent], { cwd });

    // The anchors are exported before the rewrite: printed by approve, and by verify --json for every run.
    const before = await cli.json<Verdict>(['verify'], { cwd });
    expect(before.ok).toBe(true);
    const anchor = before.runs.find((run) => run.runId === done.runId)?.anchor ?? '';
    expect(anchor).toMatch(new RegExp(`^${done.runId}:\\d+:[0-9a-f]{64}$`));
    expect(done.anchor).toBe(anchor);
    writeFileSync(join(dir, 'anchors.txt'), `# kept off the machine\n${before.runs.map((run) => run.anchor).join('\n')}\n`);

    // Someone with write access says bob approved, and covers their tracks completely.
    const path = join(dir, '.cantbook', 'cantbook.db');
    const db = new Database(path);
    try {
      const rows = db.prepare('SELECT seq, type, data, at, hash FROM events WHERE run_id = ? ORDER BY seq').all(done.runId) as { seq: number; type: string; data: string; at: string; hash: string }[];
      let prev = GENESIS_HASH;
      for (const row of rows) {
        const data = JSON.parse(row.data) as Record<string, unknown>;
        if (row.type === 'ApprovalGranted') data.approver = 'bob';
        const hash = hashEvent(prev, done.runId, row.seq, { type: row.type, data, at: row.at } as unknown as RunEvent);
        db.prepare('UPDATE events SET data = ?, hash = ? WHERE run_id = ? AND seq = ?').run(JSON.stringify(data), hash, done.runId, row.seq);
        prev = hash;
      }
    } finally {
      db.close();
    }
    const store = openSqliteStore(path);
    try {
      await rebuildProjections(store, done.runId);
    } finally {
      await store.close();
    }

    // Without an anchor the forgery is self-consistent, so verify passes.
    const blind = await cli.run(['verify'], { cwd });
    expect({ code: blind.code, stderr: blind.stderr }).toEqual({ code: 0, stderr: '' });
    expect((await cli.json<{ approvals: { approver: string }[] }>(['show', done.runId], { cwd })).approvals[0]?.approver).toBe('bob');

    // With the anchor kept from before it fails, naming the run; the untouched run still verifies against its own.
    const anchored = await cli.run(['verify', '--anchor', anchor], { cwd });
    expect(anchored.code).toBe(1);
    expect(anchored.stdout).toMatch(new RegExp(`^✗ ${done.runId} \\(1 problem\\)$`, 'm'));
    expect(anchored.stdout).toContain(`anchor_mismatch: run '${done.runId}'`);
    const fromFile = await cli.run(['verify', '--anchors', 'anchors.txt', '--json'], { cwd });
    expect(fromFile.code).toBe(1);
    const verdict = JSON.parse(fromFile.stdout) as Verdict;
    expect(verdict.runs.filter((run) => !run.ok).map((run) => run.runId)).toEqual([done.runId]);
    expect(verdict.runs.find((run) => run.runId === other.runId)?.ok).toBe(true);
    const one = await cli.run(['verify', done.runId, '--anchor', anchor], { cwd });
    expect(one.code).toBe(1);

    // Deleting the whole run is caught by its anchor too.
    const gone = new Database(path);
    try {
      gone.prepare('DELETE FROM approvals WHERE run_id = ?').run(other.runId);
      gone.prepare('DELETE FROM runs WHERE run_id = ?').run(other.runId);
      gone.prepare('DELETE FROM events WHERE run_id = ?').run(other.runId);
    } finally {
      gone.close();
    }
    const deleted = JSON.parse((await cli.run(['verify', '--anchors', 'anchors.txt', '--json'], { cwd })).stdout) as Verdict;
    expect(deleted.runs.find((run) => run.runId === other.runId)).toMatchObject({ ok: false, problems: [{ kind: 'anchor_mismatch' }] });

    // A malformed anchor is a usage error, not a verdict.
    expectCodedError(await cli.run(['verify', '--anchor', 'not-an-anchor'], { cwd }), 'E_USAGE', 64);
  });
});

describe("an agent's output cannot choose what a deterministic node runs, or where (SPEC §2 trust note)", () => {
  it('cwd comes from the inputs, command is literal; the agent-written workdir and a fake "inputs" key change nothing', async () => {
    const dir = join(cli.dir, 'cwd-case');
    for (const sub of ['good', 'evil']) {
      mkdirSync(join(dir, sub), { recursive: true });
      writeFileSync(join(dir, sub, 'build.sh'), `#!/bin/sh\necho "${sub} $*" > "${join(dir, `${sub}.ran`)}"\necho '{}'\n`);
      chmodSync(join(dir, sub, 'build.sh'), 0o755);
    }
    // The agent writes the attacker's directory wherever it might be read from.
    const evil = join(dir, 'evil');
    writeFileSync(
      join(dir, 'agent.mjs'),
      `for await (const _ of process.stdin);\nprocess.stdout.write(JSON.stringify({ status: 'success', output: { workdir: ${JSON.stringify(evil)}, inputs: { workdir: ${JSON.stringify(evil)} }, tool: './build.sh' } }));\n`,
    );
    writeFileSync(
      join(dir, 'build.cantbook'),
      `version: "1.0"
name: build
inputs: [{ name: workdir, required: true }]
nodes:
  - { id: plan, type: agentic, agent: planner }
  - { id: build, type: deterministic, command: ./build.sh, cwd: "{{inputs.workdir}}", args: ["{{workdir}}"], depends: [plan] }
`,
    );
    const result = await cli.json<Result>(['run', 'build.cantbook', '--input', `workdir=${join(dir, 'good')}`, '--agent', `exec:${process.execPath} agent.mjs`], { cwd: 'cwd-case' });
    expect(result.terminalStatus).toBe('completed');
    // The operator's directory and literal program ran; the agent's value arrived only as an argument.
    expect(readFileSync(join(dir, 'good.ran'), 'utf8')).toBe(`good ${evil}\n`);
    expect(existsSync(join(dir, 'evil.ran'))).toBe(false);

    // The audit's playbook, cwd: "{{workdir}}", no longer parses: a coded issue with its position.
    writeFileSync(join(dir, 'audit.cantbook'), `version: "1.0"\nname: audit\nnodes:\n  - { id: plan, type: agentic, agent: planner }\n  - { id: build, type: deterministic, command: ./build.sh, cwd: "{{workdir}}", depends: [plan] }\n`);
    const refused = await cli.run(['validate', 'audit.cantbook', '--json'], { cwd: 'cwd-case' });
    expect(refused.code).toBe(70);
    expect(refused.stdout).toContain('I_TEMPLATE_NOT_ALLOWED');
    const issues = (JSON.parse(refused.stdout) as { files: { issues: { code: string; line: number; column: number }[] }[] }).files[0]?.issues ?? [];
    expect(issues).toEqual([expect.objectContaining({ code: 'I_TEMPLATE_NOT_ALLOWED', line: 5, column: 65 })]);
  });
});

describe('concurrent decisions (SPEC §5.3)', () => {
  const TRIALS = 30;
  const RACERS = 8;

  it(`${RACERS} processes approve one gate at once: one succeeds, ${RACERS - 1} get E_APPROVAL_ALREADY_DECIDED, in each of ${TRIALS} trials`, async () => {
    const path = cli.path('race.db');
    const source = `version: "1.0"\nname: race\nnodes:\n  - { id: gate, type: approval, prompt: "go?" }\n`;
    const { definition } = parsePlaybook(source);
    const store = openSqliteStore(path);
    const tokens: string[] = [];
    try {
      for (let i = 0; i < TRIALS; i += 1) {
        const paused = await executePlaybook({ store, playbook: definition, source, dispatcher: { dispatch: () => ({ status: 'failure', error: 'unused' }) } });
        tokens.push(paused.approvalToken as string);
      }
    } finally {
      await store.close();
    }

    // Eight long-lived processes, each with its own connection; every trial hands all of them the same token at once.
    const workers = Array.from({ length: RACERS }, (_, i) => startWorker(path, `racer-${i}`));
    try {
      await Promise.all(workers.map((worker) => worker.next()));
      for (const token of tokens) {
        const answers = workers.map((worker) => worker.next());
        for (const worker of workers) worker.child.stdin.write(`${token}\n`);
        const outcomes = (await Promise.all(answers)) as { token: string; ok: boolean; code?: string; message?: string }[];
        expect(outcomes.every((outcome) => outcome.token === token)).toBe(true);
        expect(outcomes.filter((outcome) => outcome.ok), JSON.stringify(outcomes)).toHaveLength(1);
        expect(outcomes.filter((outcome) => !outcome.ok).map((outcome) => outcome.code)).toEqual(Array(RACERS - 1).fill('E_APPROVAL_ALREADY_DECIDED'));
      }
    } finally {
      for (const worker of workers) worker.child.stdin.end();
      await Promise.all(workers.map((worker) => worker.exited));
    }
    const verdict = await cli.json<Verdict>(['--db', 'race.db', 'verify']);
    expect(verdict.ok).toBe(true);
    expect(verdict.runs).toHaveLength(TRIALS);
  });
});

describe('a read-only database (the audit: the CLI could not even list or verify one)', () => {
  it('runs, show, log, approvals, verify, inspect and ui work on a file and directory this user cannot write', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cantbook-ro-'));
    try {
      copyFileSync(join(repoRoot, 'starter', 'release.cantbook'), join(dir, 'release.cantbook'));
      const db = join(dir, 'ro.db');
      const env = cleanEnv();
      const paused = JSON.parse((await runProcess(process.execPath, [cliPath, '--db', db, 'run', 'release.cantbook', '--input', 'targetVersion=6.0.0', '--agent', demoAgent, '--json'], { cwd: dir, env })).stdout) as Result;
      expect(paused.terminalStatus).toBe('pending_approval');
      // Root writes whatever the mode says, so as root the reader is another user (nobody); otherwise the modes do it.
      const asOther = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
      chmodSync(db, 0o444);
      chmodSync(dir, 0o555);
      const read = (args: string[]) => runAs(asOther, [cliPath, '--db', db, ...args], dir, env);
      for (const args of [['runs'], ['show', paused.runId], ['log', paused.runId], ['approvals', '--pending'], ['verify'], ['inspect', paused.runId]]) {
        const result = await read([...args, '--json']);
        expect({ args, code: result.code, stderr: result.stderr }).toEqual({ args, code: 0, stderr: '' });
      }
      const runs = JSON.parse((await read(['runs', '--json'])).stdout) as { runId: string; status: string }[];
      expect(runs).toMatchObject([{ runId: paused.runId, status: 'paused' }]);
      // A decision needs to write: refused with a code, never a stack trace, and the file is unchanged.
      const decided = await read(['approve', paused.approvalToken ?? '', '--by', 'alice', '--agent', demoAgent]);
      expect(decided.code).not.toBe(0);
      expect(decided.stderr).toMatch(/^error\[E_[A-Z_]+\]: /);
      expect(decided.stderr).not.toMatch(/^\s+at /m);

      // The viewer reads through a read-only connection.
      const viewer = spawn(process.execPath, [cliPath, '--db', db, 'ui', '--port', '0', '--json'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], ...asOther });
      try {
        const info = (await firstDocument(viewer)) as { port: number; openUrl: string };
        const key = /#key=([0-9a-f]+)$/.exec(info.openUrl)?.[1] ?? '';
        const response = await rawRequest(info.port, { path: '/api/runs', headers: { 'x-cantbook-key': key } });
        expect(response.status).toBe(200);
        expect((response.json() as { runs: { runId: string }[] }).runs.map((run) => run.runId)).toEqual([paused.runId]);
      } finally {
        viewer.kill('SIGTERM');
        await new Promise((resolve) => viewer.once('exit', resolve));
      }
    } finally {
      chmodSync(dir, 0o755);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Runs node with `args` as another user when `as` names one (the test runs as root), else as this one. */
function runAs(as: { uid?: number; gid?: number }, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], ...as });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The one JSON document a child prints on stdout (complete once it parses). */
function firstDocument(child: ReturnType<typeof spawn>): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      try {
        resolve(JSON.parse(stdout));
      } catch {
        // not complete yet
      }
    });
    child.once('exit', (code) => reject(new Error(`exited (${code}) before printing: ${stdout}${stderr}`)));
  });
}

/** A racer process and a way to await its next JSON line. */
function startWorker(db: string, name: string): { child: ChildProcessWithoutNullStreams; next: () => Promise<unknown>; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [WORKER, LIBRARY, db, name], { cwd: repoRoot, env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    child,
    exited,
    async next() {
      const line = await lines.next();
      if (line.done === true) throw new Error(`${name} exited before answering: ${stderr}`);
      return JSON.parse(line.value) as unknown;
    },
  };
}
