/**
 * SPEC §7, issue 16: every command line cantbook prints for the operator to
 * type next works when pasted verbatim, in the same directory.
 *
 * One operator session in a fresh directory (no cantbook.config.json, HOME
 * there too, USER=operator), a database that is not the default (`--db
 * state/runs.db`) and an exec agent named by a relative path (`--agent
 * 'exec:node my-agent.mjs'`). Every command line cantbook prints is scraped
 * from its human output and run as it is with `bash -c '<line>'`: a fresh
 * shell each time, in the session's directory, `cantbook` on PATH (a shim for
 * the built CLI), nothing added or edited. Each paste is checked for its exit
 * code, what it did to the run (read from the SQLite file with the library),
 * and that it created no file in the directory (a placeholder that is a shell
 * redirect would). The last test checks that every printed command was pasted,
 * or names the alternative that was pasted instead (approve or reject).
 *
 * The agent (my-agent.mjs) is steered from a control directory outside the
 * session: `<nodeId>.fail` makes that node fail, `<nodeId>.hang` makes it
 * hang; each attempt appends its pid to `<nodeId>.started`.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getRun, openSqliteStore } from '../../src/index.js';
import { cleanEnv, cliPath, createCliSession, expectCodedError, runProcess, waitFor } from '../helpers/cliSession.js';
import type { CliResult, CliSession } from '../helpers/cliSession.js';

/** The database every command names, relative to the session's directory. */
const DB = 'state/runs.db';
/** How every printed command starts: the program on PATH and the database repeated. */
const CB = `cantbook --db ${DB}`;
const AGENT = "'exec:node my-agent.mjs'";
/** A spec with a credential in it: a run started with it does not remember it. */
const SECRET_AGENT = 'exec:node my-agent.mjs --api-key=abc';
/** Short, so that `recover` after a SIGKILL does not wait the default 30 s. */
const LEASE_MS = '3000';
/** A resume token as `run` prints it. */
const TOKEN = String.raw`cbk1\.[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}`;

const AGENT_SOURCE = `// The operator's agent (test/e2e/pastedCommands.test.ts), steered by files in $PASTE_CONTROL.
import { appendFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
let text = '';
for await (const chunk of process.stdin) text += chunk;
const request = JSON.parse(text);
const flag = (name) => join(process.env.PASTE_CONTROL, request.nodeId + '.' + name);
appendFileSync(flag('started'), process.pid + '\\n');
const answer = (value) => process.stdout.write(JSON.stringify(value) + '\\n');
if (existsSync(flag('hang'))) setInterval(() => {}, 60_000);
else if (existsSync(flag('fail'))) answer({ status: 'failure', error: request.nodeId + ' was told to fail' });
else answer({ status: 'success', output: { [request.nodeId]: { attempt: request.iteration, argv: process.argv.slice(2) } } });
`;

/** agentic -> approval -> agentic: the part after the gate needs the agent. */
const GATED = `version: "1.0"
name: gated
nodes:
  - id: draft
    type: agentic
    skill: writer
  - id: review
    type: approval
    prompt: Ship the draft?
    depends: [draft]
  - id: publish
    type: agentic
    skill: publisher
    depends: [review]
`;

/** agentic -> approval -> deterministic: nothing agentic is left after the gate. */
const STAMPED = `version: "1.0"
name: stamped
nodes:
  - id: draft
    type: agentic
    skill: writer
  - id: review
    type: approval
    prompt: Stamp it?
    depends: [draft]
  - id: stamp
    type: deterministic
    command: node
    args: ["-e", ""]
    depends: [review]
`;

/** One agentic node; `cap` attempts at most (the default cap, 3, when not given). */
const oneNode = (name: string, nodeId: string, cap?: number): string => `version: "1.0"
name: ${name}
nodes:
  - id: ${nodeId}
    type: agentic
    skill: worker
${cap === undefined ? '' : `    on_failure:\n      max_iterations: ${cap}\n`}`;

/** What the test writes into the session's directory; anything else there must be the database's. */
const SESSION_FILES: Record<string, string> = {
  'my-agent.mjs': AGENT_SOURCE,
  'gated.cantbook': GATED,
  'stamped.cantbook': STAMPED,
  'flaky.cantbook': oneNode('flaky', 'flaky_step', 1),
  'interrupted.cantbook': oneNode('interrupted', 'hang_int'),
  'killed.cantbook': oneNode('killed', 'hang_kill'),
};
/** What cantbook itself may create there: the database's directory and files. */
const DATABASE_FILE = /^state(\/runs\.db(-wal|-shm|-journal)?)?$/;

let cli: CliSession;
/** Outside the session: the `cantbook` shim (bin/) and the agent's control files (control/). */
let tools: string;
let control: string;
/** The environment of the operator's shell. */
let operator: Record<string, string>;

/** A command line cantbook printed: the label before it (`approve`, `retry`, `decide with`, ...) and the line. */
interface Printed {
  label: string;
  line: string;
}

/** Every printed command of the session, with whether it was pasted, or which command ran instead. */
const ledger = new Map<string, { label: string; pasted: boolean; instead?: string }>();
/** Every line run in a shell (pasted or typed). */
const ran = new Set<string>();

beforeAll(() => {
  cli = createCliSession('cantbook-pasted-');
  tools = realpathSync(mkdtempSync(join(tmpdir(), 'cantbook-pasted-tools-')));
  control = join(tools, 'control');
  mkdirSync(join(tools, 'bin'));
  mkdirSync(control);
  // `cantbook` on PATH, as an installed package puts it there.
  writeFileSync(join(tools, 'bin', 'cantbook'), `#!/bin/sh\nexec '${process.execPath}' '${cliPath}' "$@"\n`);
  chmodSync(join(tools, 'bin', 'cantbook'), 0o755);
  for (const [name, text] of Object.entries(SESSION_FILES)) writeFileSync(cli.path(name), text);
  operator = { HOME: cli.dir, USER: 'operator', LOGNAME: 'operator', PATH: `${join(tools, 'bin')}${delimiter}${process.env.PATH ?? ''}`, PASTE_CONTROL: control, CANTBOOK_LEASE_MS: LEASE_MS };
  // The directories above the session hold no config file that the CLI could read instead.
  expect(existsSync(join(cli.dir, '..', 'cantbook.config.json'))).toBe(false);
});

afterAll(() => {
  // An agent left hanging (a failed test) goes with the session.
  for (const file of existsSync(control) ? readdirSync(control).filter((name) => name.endsWith('.started')) : []) {
    for (const pid of readFileSync(join(control, file), 'utf8').split('\n').filter(Boolean)) {
      try {
        // Only a process that is still this agent (a pid may have been reused since).
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('my-agent.mjs')) process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }
  cli.remove();
  rmSync(tools, { recursive: true, force: true });
});

/** Every file and directory under the session's directory, relative to it. */
function listSession(): string[] {
  return readdirSync(cli.dir, { recursive: true, encoding: 'utf8' })
    .map((entry) => relative(cli.dir, join(cli.dir, entry)))
    .sort();
}

/** Runs `line` the way an operator's shell does: `bash -c`, a fresh shell, in the session's directory. */
function shell(line: string, extra: Record<string, string> = {}): Promise<CliResult> {
  const env = cleanEnv({ ...operator, ...extra });
  delete env.BASH_ENV;
  delete env.ENV;
  return runProcess('bash', ['-c', line], { cwd: cli.dir, env, timeoutMs: 40_000 });
}

/**
 * Runs `line` with {@link shell} and checks that it created nothing in the
 * session's directory but the database (the listing before and after), and
 * that no shell error came out.
 */
async function runInShell(line: string, extra: Record<string, string> = {}): Promise<CliResult> {
  const before = listSession();
  ran.add(line);
  const result = await shell(line, extra);
  const created = listSession().filter((entry) => !before.includes(entry) && !DATABASE_FILE.test(entry));
  expect(created, `files created in the session's directory by: ${line}`).toEqual([]);
  expect(listSession().filter((entry) => !(entry in SESSION_FILES) && !DATABASE_FILE.test(entry)), 'files in the session directory').toEqual([]);
  expect(result.stderr, `a shell error from: ${line}`).not.toMatch(/^(bash|sh): /m);
  return result;
}

/** A command the operator types (as the docs write it), not one cantbook printed. */
function typed(line: string, extra: Record<string, string> = {}): Promise<CliResult> {
  return runInShell(line, extra);
}

/** Pastes a line cantbook printed (see {@link printed}), verbatim. */
function paste(command: Printed, extra: Record<string, string> = {}): Promise<CliResult> {
  const entry = ledger.get(command.line);
  expect(entry, `pasting a line cantbook did not print: ${command.line}`).toBeDefined();
  if (entry) entry.pasted = true;
  return runInShell(command.line, extra);
}

/** Records that `command` is not pasted because the line `instead` ran (approve and reject are alternatives). */
function notPasted(command: Printed, instead: string): void {
  const entry = ledger.get(command.line);
  expect(entry, command.line).toBeDefined();
  if (entry) entry.instead = instead;
}

/**
 * A line of human output holding a command for the operator: `<label>: cantbook ...`,
 * the label being the words before the colon (`approve`, `decide with`, `finish it with`).
 * A trailing "(or leave it to a running cantbook worker)" is prose, not part of the command.
 */
const PRINTED_LINE = /(?:^|\s)([a-z][a-z ]*[a-z]):\s+(cantbook\s.*?)(?:\s\(or leave it to a running cantbook worker\))?$/;
/** Any mention of a cantbook command: each must be one that {@link PRINTED_LINE} finds. */
const MENTION = /\bcantbook (?:--db \S+ )?(?:run|approve|reject|resume|recover|retry|show|cancel|log|runs|approvals|watch|verify)\b/;

/**
 * Scrapes the commands `result` printed (stdout and stderr), expects exactly
 * `expected` (labels in order, each line equal to or matching its form), adds
 * them to the ledger and returns them by label.
 */
function printed<Label extends string>(result: CliResult, expected: readonly (readonly [Label, string | RegExp])[]): Record<Label, Printed> {
  const lines = `${result.stdout}\n${result.stderr}`.split('\n');
  const found: Printed[] = lines.flatMap((line) => {
    const match = PRINTED_LINE.exec(line);
    return match ? [{ label: match[1] as string, line: match[2] as string }] : [];
  });
  const context = `${result.stdout}${result.stderr}`;
  expect(lines.filter((line) => MENTION.test(line)).length, `every command mentioned is a printed command line:\n${context}`).toBe(found.length);
  expect(found.map((command) => command.label), context).toEqual(expected.map(([label]) => label));
  const byLabel = {} as Record<Label, Printed>;
  found.forEach((command, index) => {
    const [label, form] = expected[index] as readonly [Label, string | RegExp];
    if (typeof form === 'string') expect(command.line).toBe(form);
    else expect(command.line).toMatch(form);
    if (!ledger.has(command.line)) ledger.set(command.line, { label: command.label, pasted: false });
    byLabel[label] = command;
  });
  return byLabel;
}

/** The run id `run` printed first (`run <id> · playbook <name>`). */
function runIdOf(result: CliResult): string {
  const match = /^run (\S+) · playbook /m.exec(result.stdout);
  expect(match, result.stdout + result.stderr).not.toBeNull();
  return (match as RegExpExecArray)[1] as string;
}

/** The run as the database has it: status, error, bindings, its gates, what it remembers, its lease. */
async function stored(runId: string) {
  const store = openSqliteStore(cli.path(DB), { readonly: true });
  try {
    const run = await getRun(store, runId);
    return { run, approvals: await store.listApprovals({ runId }), settings: await store.getRunSettings(runId), lease: await store.getLease(runId) };
  } finally {
    await store.close();
  }
}

/** The forms of the approve and reject lines of a run that paused. */
const GATE_LINES = [
  ['approve', new RegExp(`^${CB} approve ${TOKEN} --by "\\$USER"$`)],
  ['reject', new RegExp(`^${CB} reject ${TOKEN} --by "\\$USER" --reason "<why>"$`)],
] as const;

/** `run` of a playbook that pauses at its gate: the run id and the approve and reject lines. */
async function runToGate(file: string, agent: string): Promise<{ runId: string; approve: Printed; reject: Printed; result: CliResult }> {
  const result = await typed(`cantbook --db ${DB} run ${file} --agent ${agent}`);
  expect(result.code, result.stdout + result.stderr).toBe(0);
  const runId = runIdOf(result);
  expect(result.stdout).toContain(`⏸ run ${runId} is waiting for approval at 'review'`);
  const { approve, reject } = printed(result, GATE_LINES);
  // The lines carry the token the run printed.
  const token = (/^ {2}token: {3}(\S+)$/m.exec(result.stdout) as RegExpExecArray)[1] as string;
  expect([approve.line, reject.line].map((line) => new RegExp(TOKEN).exec(line)?.[0])).toEqual([token, token]);
  return { runId, approve, reject, result };
}

describe('every command cantbook prints works pasted verbatim (SPEC §7)', () => {
  it.concurrent('approve after a gate: the run remembers its relative agent spec; show\'s "decide with" pastes safely', async () => {
    const { runId, approve, reject } = await runToGate('gated.cantbook', AGENT);
    notPasted(reject, approve.line);

    const show = await typed(`${CB} show ${runId}`);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/^agent +exec:node my-agent\.mjs \(remembered: /m);
    const { 'decide with': decide } = printed(show, [['decide with', `${CB} approve '<the token run printed>' --by "$USER"`]]);
    // The placeholder is a quoted word, not a redirect: cantbook refuses it with a code, and no file appears.
    expectCodedError(await paste(decide), 'E_APPROVAL_TOKEN_INVALID', 77);

    const approved = await paste(approve);
    expect(approved.code, approved.stdout + approved.stderr).toBe(0);
    expect(approved.stdout).toContain(`✓ approved 'review' of run ${runId} as operator`);
    expect(approved.stdout).toContain(`✔ run ${runId} completed`);
    printed(approved, []);
    const after = await stored(runId);
    expect(after.run?.status).toBe('completed');
    // `publish`, after the gate, ran with the remembered spec: `node my-agent.mjs`, found in this directory.
    expect(after.run?.bindings.publish).toEqual({ attempt: 1, argv: [] });
    expect(after.approvals.map((gate) => [gate.status, gate.approver])).toEqual([['approved', 'operator']]);
  });

  it.concurrent('reject after a gate: the run fails (approval_rejected), and its details line pastes', async () => {
    const { runId, approve, reject } = await runToGate('gated.cantbook', AGENT);
    notPasted(approve, reject.line);
    const rejected = await paste(reject);
    expect(rejected.code, rejected.stdout + rejected.stderr).toBe(0);
    expect(rejected.stdout).toContain(`✗ rejected 'review' of run ${runId} as operator`);
    // A rejected run cannot be retried, so no retry line.
    const { details } = printed(rejected, [['details', `${CB} show ${runId}`]]);
    const after = await stored(runId);
    expect([after.run?.status, after.run?.error?.cause]).toEqual(['failed', 'approval_rejected']);
    expect(after.approvals.map((gate) => [gate.status, gate.approver, gate.reason])).toEqual([['rejected', 'operator', '<why>']]);

    const shown = await paste(details);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/^status +failed$/m);
    printed(shown, []);
  });

  it.concurrent('a failed run: details, then retry once the agent succeeds', async () => {
    writeFileSync(join(control, 'flaky_step.fail'), '');
    const failed = await typed(`${CB} run flaky.cantbook --agent ${AGENT}`);
    expect(failed.code, failed.stdout + failed.stderr).toBe(2);
    const runId = runIdOf(failed);
    const { details, retry } = printed(failed, [
      ['details', `${CB} show ${runId}`],
      ['retry', `${CB} retry ${runId}`],
    ]);

    const shown = await paste(details);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/^error +exceeded_iteration_cap at 'flaky_step': /m);
    printed(shown, []);

    rmSync(join(control, 'flaky_step.fail'));
    const retried = await paste(retry);
    expect(retried.code, retried.stdout + retried.stderr).toBe(0);
    expect(retried.stdout).toContain(`✔ run ${runId} completed`);
    printed(retried, []);
    const after = await stored(runId);
    expect(after.run?.status).toBe('completed');
    expect(after.run?.bindings.flaky_step).toEqual({ attempt: expect.any(Number), argv: [] });
  });

  it.concurrent('cancel a paused run by an id prefix, as the docs write it; its details line pastes', async () => {
    const { runId, approve, reject } = await runToGate('gated.cantbook', AGENT);
    const cancel = `${CB} cancel ${runId.slice(0, 18)} --reason x --by "$USER"`;
    const cancelled = await typed(cancel);
    expect(cancelled.code, cancelled.stdout + cancelled.stderr).toBe(0);
    expect(cancelled.stdout).toContain(`✓ cancelled run ${runId} as operator: x`);
    const { details } = printed(cancelled, [['details', `${CB} show ${runId}`]]);
    // Neither decision is left to paste: the cancellation refuses both.
    notPasted(approve, cancel);
    notPasted(reject, cancel);
    const after = await stored(runId);
    expect(after.run?.status).toBe('cancelled');

    const shown = await paste(details);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/^status +cancelled$/m);
    printed(shown, []);
  });

  it.concurrent('approve of a run whose agent was not remembered (a credential) and only a deterministic node left: completes', async () => {
    const { runId, approve, reject, result } = await runToGate('stamped.cantbook', `'${SECRET_AGENT}'`);
    notPasted(reject, approve.line);
    expect(result.stderr).toMatch(/^note: the run does not remember its agent, because it passes the option '--api-key' /m);
    expect((await stored(runId)).settings).toBeNull();

    const approved = await paste(approve);
    expect(approved.code, approved.stdout + approved.stderr).toBe(0);
    expect(approved.stdout).toContain(`✔ run ${runId} completed`);
    printed(approved, []);
    expect((await stored(runId)).run?.status).toBe('completed');
  });

  it.concurrent('approve of a run whose agent was not remembered and an agentic node left: 78, then the hint with $CANTBOOK_AGENT completes it', async () => {
    const { runId, approve, reject, result } = await runToGate('gated.cantbook', `'${SECRET_AGENT}'`);
    notPasted(reject, approve.line);
    expect(result.stderr).toMatch(/^note: the run does not remember its agent/m);

    const approved = await paste(approve);
    expect(approved.code, approved.stdout + approved.stderr).toBe(78);
    expect(approved.stdout).toContain(`✓ approved 'review' of run ${runId} as operator`);
    expect(approved.stderr).toMatch(/^error\[E_ADAPTER_INVALID\]: no agent configured and playbook 'gated' has agentic node 'publish' still to run/m);
    const { 'then continue the run with': hint } = printed(approved, [['then continue the run with', `${CB} resume ${runId} --agent "$CANTBOOK_AGENT"`]]);
    expect((await stored(runId)).approvals.map((gate) => [gate.status, gate.resumed])).toEqual([['approved', false]]);

    // show says how to continue, naming the agent the run does not remember; pasted without CANTBOOK_AGENT set
    // (no agent anywhere) it is refused with the same code, and nothing runs.
    const show = await typed(`${CB} show ${runId}`);
    expect(show.code, show.stderr).toBe(0);
    const { 'then continue with': resume } = printed(show, [['then continue with', `${CB} resume ${runId} --agent "$CANTBOOK_AGENT"`]]);
    const refused = await paste(resume);
    expectCodedError(refused, 'E_ADAPTER_INVALID', 78);
    printed(refused, []);
    expect((await stored(runId)).run?.status).toBe('running');

    // The hint's command, with CANTBOOK_AGENT set in the shell as the hint says.
    const resumed = await paste(hint, { CANTBOOK_AGENT: SECRET_AGENT });
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(`✔ run ${runId} completed`);
    printed(resumed, []);
    const after = await stored(runId);
    expect(after.run?.status).toBe('completed');
    expect(after.run?.bindings.publish).toEqual({ attempt: 1, argv: ['--api-key=abc'] });
  });

  // After the tests above: `recover` takes every run it finds left running, an approved gate nobody resumed included.
  it('Ctrl-C: the printed recover line finishes the run; after a SIGKILL, `recover` as the docs write it does', async () => {
    writeFileSync(join(control, 'hang_int.hang'), '');
    writeFileSync(join(control, 'hang_kill.hang'), '');
    const interrupted = cli.start(['--db', DB, 'run', 'interrupted.cantbook', '--agent', 'exec:node my-agent.mjs'], { env: operator });
    const killed = cli.start(['--db', DB, 'run', 'killed.cantbook', '--agent', 'exec:node my-agent.mjs'], { env: operator });
    await Promise.all(['hang_int', 'hang_kill'].map((node) => waitFor(`the agent's attempt at ${node}`, () => existsSync(join(control, `${node}.started`)), 20_000)));

    interrupted.kill('SIGINT');
    const stopped = await interrupted.exited;
    expect(stopped.code, stopped.stdout + stopped.stderr).toBe(130);
    const intId = runIdOf(stopped);
    expect(stopped.stderr).toContain(`error[E_RUN_INTERRUPTED]: run ${intId} was interrupted (SIGINT)`);
    const { 'finish it with': finish } = printed(stopped, [['finish it with', `${CB} recover --agent ${AGENT}`]]);

    rmSync(join(control, 'hang_int.hang'));
    const recovered = await paste(finish);
    expect(recovered.code, recovered.stdout + recovered.stderr).toBe(0);
    expect(recovered.stdout).toContain(`✔ run ${intId} completed`);
    printed(recovered, []);
    expect((await stored(intId)).run?.status).toBe('completed');

    // The other run's driver is alive and holds its lease: that recover left it alone.
    await killed.printed(/^run \S+ · playbook killed$/m);
    const killId = runIdOf({ code: null, stdout: killed.stdout, stderr: killed.stderr });
    expect((await stored(killId)).run?.status).toBe('running');
    killed.kill('SIGKILL');
    expect((await killed.exited).signal).toBe('SIGKILL');
    rmSync(join(control, 'hang_kill.hang'));
    await waitFor("the killed driver's lease to expire", async () => {
      const { lease } = await stored(killId);
      return lease === null || lease.expiresAt === '' || Date.parse(lease.expiresAt) < Date.now() - 50;
    }, 15_000);
    const taken = await typed(`${CB} recover`);
    expect(taken.code, taken.stdout + taken.stderr).toBe(0);
    expect(taken.stdout).toContain(`↻ recovering run ${killId} · playbook killed`);
    expect(taken.stdout).toContain(`✔ run ${killId} completed`);
    printed(taken, []);
    const after = await stored(killId);
    expect(after.run?.status).toBe('completed');
    // The interrupted attempt, then the one recover dispatched with the remembered spec.
    expect(after.run?.bindings.hang_kill).toEqual({ attempt: 2, argv: [] });
  });

  it('every printed command was pasted, or the alternative to it was', () => {
    const left = [...ledger].filter(([, entry]) => !entry.pasted && entry.instead === undefined);
    expect(left).toEqual([]);
    for (const [line, entry] of ledger) if (entry.instead !== undefined) expect(ran.has(entry.instead), `${entry.instead}, instead of ${line}`).toBe(true);
    // Each kind of printed command was pasted at least once (show's "then continue with" is the same line as the
    // approve hint's "then continue the run with", so the ledger has it under the hint's label).
    expect([...new Set([...ledger.values()].filter((entry) => entry.pasted).map((entry) => entry.label))].sort()).toEqual(
      ['approve', 'reject', 'decide with', 'then continue the run with', 'details', 'retry', 'finish it with'].sort(),
    );
  });
});
