/**
 * The real CLI on PostgreSQL (SPEC §7, §11): `--db postgres://…` and
 * `CANTBOOK_DB=postgresql://…` for every command, each test in a schema of its
 * own (the URL's `schema` parameter), dropped afterwards. The README demo runs
 * to its gate and the approve command it prints completes it when pasted; the
 * commands that read, cancel and retry work on the same URL; a worker drains
 * runs recorded by `startRun` and by `cantbook run`; a password in the URL
 * never reaches any output (printed commands leave it out, or leave `--db`
 * out when the URL came from CANTBOOK_DB). Needs CANTBOOK_TEST_POSTGRES_URL
 * (scripts/pgTestCluster.sh start prints one); without it only the
 * connection-error tests run, which need no server: an unreachable server is
 * error[E_STORE_UNAVAILABLE] (74) naming host and database, for every command
 * that opens the store.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveGate, openPostgresStore, parsePlaybook, startRun } from '../../src/index.js';
import { cleanEnv, createCliSession, demoAgent, expectCodedError, expectJsonError, repoRoot, runProcess } from '../helpers/cliSession.js';
import type { CliChild, CliResult, CliSession } from '../helpers/cliSession.js';
import { rawRequest } from '../helpers/uiFixture.js';

const baseUrl = process.env['CANTBOOK_TEST_POSTGRES_URL'] ?? '';
const node = process.execPath;

interface Result {
  runId: string;
  terminalStatus: string;
  approvalToken?: string;
}
interface Event {
  type: string;
}

/** The user part of a URL (`user[:password]`), or undefined when it has none. Independent of src/cli/postgresUrl.ts. */
function userPart(url: string): string | undefined {
  return /^postgres(?:ql)?:\/\/([^/?#]*)@/i.exec(url)?.[1];
}

/** The password of the server's URL, if it has one (then the tests use it, and pass it as PGPASSWORD where they drop it). */
const basePassword = ((): string | undefined => {
  const user = userPart(baseUrl);
  return user?.includes(':') ? decodeURIComponent(user.slice(user.indexOf(':') + 1)) : undefined;
})();
/** The password put into URLs: the server's own, PGPASSWORD's, or (trust authentication ignores it) a made-up one. */
const secret = basePassword ?? process.env['PGPASSWORD'] ?? `Pg-Secret-${randomBytes(6).toString('hex')}`;
/** The server's URL without its password: connections then take it from PGPASSWORD. */
const plainBase = basePassword === undefined ? baseUrl : baseUrl.replace(/^(postgres(?:ql)?:\/\/[^:/?#@]*):[^/?#]*@/i, '$1@');
/** Environment for a CLI child on `plainBase`: PGPASSWORD when the server's URL had a password. */
const pgEnv: Record<string, string> = basePassword === undefined ? {} : { PGPASSWORD: basePassword };

function withParameter(url: string, key: string, value: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}${key}=${value}`;
}

/** `url` with `password` in its user part (a user is added when there is none: the OS user, as libpq and node-postgres default to). */
function withPassword(url: string, password: string): string {
  const match = /^(postgres(?:ql)?:\/\/)([^/?#]*@)?(.*)$/is.exec(url);
  if (match === null) throw new Error(`not a PostgreSQL URL: ${url}`);
  const [, scheme, user, rest] = match as unknown as [string, string, string | undefined, string];
  const name = user === undefined ? encodeURIComponent(process.env['USER'] ?? 'postgres') : user.slice(0, -1).split(':')[0];
  return `${scheme}${name}:${encodeURIComponent(password)}@${rest}`;
}

/** The quoting printed commands use for a word with shell metacharacters (src/cli/output.ts shellQuote). */
function quoted(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

let cli: CliSession;
const schemas: string[] = [];
const children: CliChild[] = [];
/** Outputs of processes the session does not record (pasted commands, npm). */
const extraTranscript: string[] = [];

/** A fresh schema for one test, as a URL (without a password) to pass as --db. */
function freshUrl(): { url: string; schema: string } {
  const schema = `cantbook_cli_${randomBytes(5).toString('hex')}`;
  schemas.push(schema);
  return { url: withParameter(plainBase, 'schema', schema), schema };
}

/** Runs a pasted command line with `sh`, in the session's directory (or `cwd`). */
async function paste(line: string, env: Record<string, string> = {}, cwd = cli.dir): Promise<CliResult> {
  const result = await runProcess('sh', ['-c', line], { cwd, env: cleanEnv({ ...pgEnv, ...env }), timeoutMs: 60_000 });
  extraTranscript.push(result.stdout, result.stderr);
  return result;
}

/** The `approve:` line a paused run printed, and its token. */
function approveLine(stdout: string): { line: string; token: string } {
  const token = /^ {2}token: {3}(\S+)$/m.exec(stdout)?.[1] ?? '';
  const line = /^ {2}approve: (.+)$/m.exec(stdout)?.[1] ?? '';
  expect({ token, line }, stdout).toEqual({ token: expect.stringMatching(/^cbk1\./), line: expect.stringContaining(' approve ') });
  return { line, token };
}

async function dropSchemas(): Promise<void> {
  if (schemas.length === 0) return;
  const client = new pg.Client({ connectionString: baseUrl });
  await client.connect();
  try {
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

beforeAll(() => {
  cli = createCliSession('cantbook-pg-e2e-');
  copyFileSync(join(repoRoot, 'starter', 'release.cantbook'), cli.path('release.cantbook'));
  writeFileSync(cli.path('cantbook.config.json'), `${JSON.stringify({ agent: demoAgent })}\n`);
  writeFileSync(cli.path('quick.cantbook'), JSON.stringify({ version: '1.0', name: 'quick', nodes: [{ id: 'only', type: 'deterministic', command: node, args: ['-e', '0'] }] }));
  // `flaky` fails until the file 'fixed' exists in the working directory.
  writeFileSync(
    cli.path('flaky.cantbook'),
    JSON.stringify({
      version: '1.0',
      name: 'flaky',
      nodes: [
        { id: 'flaky', type: 'deterministic', command: node, args: ['-e', "process.exit(require('fs').existsSync('fixed') ? 0 : 3)"], on_failure: { max_iterations: 1 } },
        { id: 'last', type: 'deterministic', command: node, args: ['-e', '0'], depends: ['flaky'] },
      ],
    }),
  );
});

afterAll(async () => {
  for (const child of children) if (child.child.exitCode === null && child.child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(children.map((child) => child.exited));
  try {
    if (baseUrl !== '') await dropSchemas();
  } finally {
    cli.remove();
  }
});

/** What the session's directory holds besides the files beforeAll wrote (a database resolved as a path would show here). */
function strayFiles(): string[] {
  const ours = new Set(['release.cantbook', 'cantbook.config.json', 'quick.cantbook', 'flaky.cantbook', 'fixed']);
  return readdirSync(cli.dir).filter((name) => !ours.has(name));
}

describe('the CLI on an unreachable PostgreSQL server (no server needed)', () => {
  const password = 'Unreachable-Pw-3f9a';
  let refusedPort = 0;
  beforeAll(async () => {
    // A port that nothing listens on: bind one, then close it.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    refusedPort = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const socketUrl = (): string => `postgresql://cbk_user:${password}@/cantbook_nowhere?host=${cli.path('no-such-socket-dir')}&port=5432&schema=cbk`;
  const tcpUrl = (): string => `postgres://cbk_user:${password}@127.0.0.1:${refusedPort}/cantbook_nowhere`;

  const commands: readonly (readonly string[])[] = [
    ['runs'],
    ['show', 'r1'],
    ['log', 'r1'],
    ['verify'],
    ['approvals', '--pending'],
    ['inspect', 'r1'],
    ['run', 'quick.cantbook'],
    ['resume', 'r1'],
    ['recover'],
    ['approve', 'cbk1.a.b', '--by', 'ann'],
    ['reject', 'cbk1.a.b', '--by', 'ann', '--reason', 'no'],
    ['cancel', 'r1', '--reason', 'stop'],
    ['retry', 'r1'],
    ['worker', '--poll-ms', '100'],
    ['ui', '--port', '0'],
  ];

  it.each(commands)('a socket directory that does not exist: %s is error[E_STORE_UNAVAILABLE] (74) naming host and database, never the password', async (...args) => {
    const result = await cli.run(['--db', socketUrl(), ...args]);
    const stderr = expectCodedError(result, 'E_STORE_UNAVAILABLE', 74);
    expect(stderr).toContain(`cannot reach database 'cantbook_nowhere' on PostgreSQL host '${cli.path('no-such-socket-dir')}' port 5432 as user 'cbk_user'`);
    expect(stderr.split('\n').filter((line) => line !== '')).toHaveLength(1);
    expect(stderr).not.toContain(password);
  });

  it.each(commands.filter((args) => ['runs', 'run', 'approve', 'worker', 'verify'].includes(args[0] as string)))(
    'a port nothing listens on: %s is E_STORE_UNAVAILABLE (74), in JSON too, from --db and from CANTBOOK_DB',
    async (...args) => {
      const human = await cli.run([...args], { env: { CANTBOOK_DB: tcpUrl() } });
      expect(expectCodedError(human, 'E_STORE_UNAVAILABLE', 74)).toMatch(/cannot reach database 'cantbook_nowhere' on PostgreSQL host '127\.0\.0\.1' port \d+ as user 'cbk_user': .*ECONNREFUSED/);
      const json = expectJsonError(await cli.run(['--db', tcpUrl(), ...args, '--json']), 'E_STORE_UNAVAILABLE', 74);
      expect(json.message).toContain(`host '127.0.0.1' port ${refusedPort}`);
      for (const text of [human.stdout, human.stderr, json.message]) expect(text).not.toContain(password);
    },
  );

  it('a bad schema parameter is E_USAGE (64), without the URL; nothing is created in the working directory', async () => {
    const result = await cli.run(['--db', `${tcpUrl()}?schema=drop%20table`, 'runs']);
    expect(expectCodedError(result, 'E_USAGE', 64)).toContain("the database URL's 'schema' parameter must be letters, digits and '_' (at most 63, not starting with a digit), got 'drop table'");
    expect(result.stderr).not.toContain(password);
    expect(cli.transcript.join('\n')).not.toContain(password);
    // A URL is never a path: no `postgres:` directory, no .cantbook.
    expect(strayFiles()).toEqual([]);
  });
});

describe.skipIf(baseUrl === '')('the CLI on PostgreSQL (CANTBOOK_TEST_POSTGRES_URL)', () => {
  it("the README demo with CANTBOOK_DB=<url>: npm run demo pauses at the gate; its approve command, pasted (without CANTBOOK_DB), completes the run", async () => {
    const { url } = freshUrl();
    const demo = await runProcess('sh', ['-c', 'npm run --silent demo'], { cwd: repoRoot, env: cleanEnv({ ...pgEnv, CANTBOOK_DB: url }), timeoutMs: 60_000 });
    extraTranscript.push(demo.stdout, demo.stderr);
    expect({ code: demo.code, stderr: demo.stderr }).toEqual({ code: 0, stderr: '' });
    expect(demo.stdout).toContain('✓ version_bump (attempt 1)\n✓ changelog (attempt 1)\n');
    const runId = /^⏸ run (\S+) is waiting for approval at 'approval'/m.exec(demo.stdout)?.[1] ?? '';
    const { line, token } = approveLine(demo.stdout);
    expect(line).toBe(`npm run cantbook -- --db ${quoted(url)} approve ${token} --by "$USER"`);

    const approved = await paste(line, { USER: 'you' }, repoRoot);
    expect({ code: approved.code, stderr: approved.stderr }).toEqual({ code: 0, stderr: '' });
    expect(approved.stdout).toContain(`✓ approved 'approval' of run ${runId} as you\n`);
    expect(approved.stdout).toContain('✓ publish (attempt 1)\n');
    expect(approved.stdout).toContain(`✔ run ${runId} completed\n`);
  });

  it('run, approvals, show, approve, runs, log, verify, inspect, recover, retry and cancel on one --db URL; another schema sees none of it; nothing is created on disk', async () => {
    const { url } = freshUrl();
    const env = { env: pgEnv };
    const paused = await cli.json<Result>(['--db', url, 'run', 'release.cantbook', '--input', 'targetVersion=1.0.0'], env);
    expect(paused.terminalStatus).toBe('pending_approval');
    const pending = await cli.json<{ runId: string; nodeId: string }[]>(['--db', url, 'approvals', '--pending'], env);
    expect(pending).toMatchObject([{ runId: paused.runId, nodeId: 'approval' }]);
    const shown = await cli.run(['--db', url, 'show', paused.runId], env);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`decide with: cantbook --db ${quoted(url)} approve '<the token run printed>' --by "$USER"`);

    const approved = await cli.json<Result>(['--db', url, 'approve', paused.approvalToken ?? '', '--by', 'ann'], env);
    expect(approved).toMatchObject({ runId: paused.runId, terminalStatus: 'completed' });
    expect(await cli.json<{ runId: string; status: string }[]>(['--db', url, 'runs'], env)).toMatchObject([{ runId: paused.runId, status: 'completed' }]);
    expect(await cli.json<{ status: string }>(['--db', url, 'show', paused.runId], env)).toMatchObject({ status: 'completed' });
    const log = await cli.json<Event[]>(['--db', url, 'log', paused.runId], env);
    expect(log.map((event) => event.type)).toEqual([
      'RunStarted', 'NodeStarted', 'NodeSucceeded', 'NodeStarted', 'NodeSucceeded', 'RunPaused',
      'ApprovalGranted', 'RunResumed', 'NodeStarted', 'NodeSucceeded', 'RunCompleted',
    ]);
    expect(await cli.json<{ ok: boolean; runs: unknown[] }>(['--db', url, 'verify'], env)).toMatchObject({ ok: true, runs: [{ runId: paused.runId, ok: true }] });
    const verified = await cli.run(['--db', url, 'verify'], env);
    expect(verified.stdout).toContain(`anchors of every run: cantbook --db ${quoted(url)} verify --json`);
    const inspected = await cli.json<{ records: unknown[] }>(['--db', url, 'inspect', paused.runId], env);
    expect(inspected.records.length).toBeGreaterThan(0);
    expect(await cli.json(['--db', url, 'recover'], env)).toEqual({ expired: [], runs: [] });

    // A failed run prints its retry command; pasted once the cause is fixed, it completes the run.
    const failed = await cli.run(['--db', url, 'run', 'flaky.cantbook'], env);
    expect(failed.code, failed.stdout + failed.stderr).toBe(2);
    const failedId = /^✗ run (\S+) exceeded its iteration cap at 'flaky'/m.exec(failed.stdout)?.[1] ?? '';
    const retry = /^ {2}retry: {3}(.+)$/m.exec(failed.stdout)?.[1] ?? '';
    expect(retry).toBe(`cantbook --db ${quoted(url)} retry ${failedId}`);
    writeFileSync(cli.path('fixed'), '');
    const retried = await paste(retry.replace(/^cantbook /, `${node} ${join(repoRoot, 'dist', 'cli', 'main.js')} `));
    expect({ code: retried.code, stderr: retried.stderr }).toEqual({ code: 0, stderr: '' });
    expect(retried.stdout).toContain(`✔ run ${failedId} completed`);

    const second = await cli.json<Result>(['--db', url, 'run', 'release.cantbook', '--input', 'targetVersion=2.0.0'], env);
    await cli.json(['--db', url, 'cancel', second.runId, '--reason', 'not this week', '--by', 'ann'], env);
    expect(await cli.json<{ status: string }>(['--db', url, 'show', second.runId], env)).toMatchObject({ status: 'cancelled' });
    expect(await cli.json<{ status: string }[]>(['--db', url, 'runs'], env)).toHaveLength(3);

    // The schema parameter decides where runs live. One with no store (a typo, say) is an error for a
    // command that only reads, and nothing is created there; a command that writes creates it.
    const fresh = freshUrl();
    const missing = await cli.run(['--db', fresh.url, 'runs'], env);
    expect(expectCodedError(missing, 'E_STORE_UNAVAILABLE', 74)).toContain(`has no cantbook store in the schema '${fresh.schema}'`);
    const admin = new pg.Client({ connectionString: baseUrl });
    await admin.connect();
    try {
      expect((await admin.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [fresh.schema])).rows).toEqual([]);
    } finally {
      await admin.end();
    }
    expect(strayFiles()).toEqual([]);
  });

  it('a password in --db: printed commands carry the URL without it (plus one note on stderr), and work pasted with PGPASSWORD; the password is printed nowhere', async () => {
    const { url } = freshUrl();
    const secretUrl = withPassword(url, secret);
    expect(secretUrl).toContain(encodeURIComponent(secret));
    const paused = await cli.run(['--db', secretUrl, 'run', 'release.cantbook', '--input', 'targetVersion=3.0.0']);
    expect(paused.code, paused.stderr).toBe(0);
    const { line, token } = approveLine(paused.stdout);
    const shownUrl = withPassword(url, secret).replace(`:${encodeURIComponent(secret)}@`, '@');
    expect(line).toBe(`cantbook --db ${quoted(shownUrl)} approve ${token} --by "$USER"`);
    expect(paused.stderr).toBe(
      'note: printed commands leave the password out of the --db URL (a command line is visible to other users of this machine): ' +
        'give it with PGPASSWORD or ~/.pgpass, or put the whole URL in CANTBOOK_DB\n',
    );
    // Read-only commands and JSON output with the same URL.
    expect(await cli.json<unknown[]>(['--db', secretUrl, 'runs'])).toHaveLength(1);
    const approved = await paste(line.replace(/^cantbook /, `${node} ${join(repoRoot, 'dist', 'cli', 'main.js')} `), { PGPASSWORD: secret, USER: 'bo' });
    expect({ code: approved.code, stderr: approved.stderr }).toEqual({ code: 0, stderr: '' });
    expect(approved.stdout).toContain('✓ publish (attempt 1)\n');
    for (const text of [...cli.transcript, ...extraTranscript]) expect(text).not.toContain(secret);
  });

  it('a password in CANTBOOK_DB: printed commands leave --db out (pasted in the same environment they use it); the viewer shows the URL without it', async () => {
    const { url } = freshUrl();
    const secretUrl = withPassword(url, secret);
    const env = { CANTBOOK_DB: secretUrl };
    const paused = await cli.run(['run', 'release.cantbook', '--input', 'targetVersion=4.0.0'], { env });
    expect({ code: paused.code, stderr: paused.stderr }).toEqual({ code: 0, stderr: '' });
    const { line, token } = approveLine(paused.stdout);
    expect(line).toBe(`cantbook approve ${token} --by "$USER"`);

    const viewer = cli.start(['ui', '--port', '0', '--json'], { env });
    children.push(viewer);
    await viewer.printed(/\}\s*$/);
    const info = JSON.parse(viewer.stdout) as { port: number; openUrl: string; db: string };
    expect(info.db).toBe(secretUrl.replace(`:${encodeURIComponent(secret)}@`, '@'));
    const key = /#key=([0-9a-f]{64})$/.exec(info.openUrl)?.[1] ?? '';
    const runs = await rawRequest(info.port, { path: '/api/runs', headers: { 'x-cantbook-key': key } });
    expect(runs.status).toBe(200);
    expect(runs.body).toContain(/^⏸ run (\S+) is waiting/m.exec(paused.stdout)?.[1] ?? '?');
    expect(runs.body).not.toContain(secret);
    viewer.kill('SIGTERM');
    expect((await viewer.exited).code).toBe(0);

    const approved = await paste(line.replace(/^cantbook /, `${node} ${join(repoRoot, 'dist', 'cli', 'main.js')} `), { ...env, USER: 'cy' });
    expect({ code: approved.code, stderr: approved.stderr }).toEqual({ code: 0, stderr: '' });
    expect(approved.stdout).toContain('✓ publish (attempt 1)\n');
    for (const text of [...cli.transcript, ...extraTranscript]) expect(text).not.toContain(secret);
  });

  it('cantbook worker drains runs recorded by startRun and an approved gate of a `cantbook run`; the gate it opens prints an approve command that works pasted', async () => {
    const { url, schema } = freshUrl();
    const env = { env: pgEnv };
    // A run started by the CLI, paused at its gate, approved through the library (the decision only, no resume).
    const cliRun = await cli.json<Result>(['--db', url, 'run', 'release.cantbook', '--input', 'targetVersion=5.0.0'], env);
    // Runs recorded by the library: RunStarted only, nobody drives them.
    const store = await openPostgresStore(baseUrl, { schema });
    const started: string[] = [];
    let gated: string;
    try {
      await approveGate({ store, token: cliRun.approvalToken ?? '', approver: 'library' });
      const quickText = readFileSync(cli.path('quick.cantbook'), 'utf8');
      const releaseText = readFileSync(cli.path('release.cantbook'), 'utf8');
      const quick = parsePlaybook(quickText).definition;
      for (let i = 0; i < 3; i += 1) started.push((await startRun({ store, playbook: quick, source: quickText, initialContext: {} })).runId);
      gated = (await startRun({ store, playbook: parsePlaybook(releaseText).definition, source: releaseText, initialContext: { targetVersion: '6.0.0' } })).runId;
    } finally {
      await store.close();
    }

    const worker = cli.start(['--db', url, 'worker', '--concurrency', '2', '--poll-ms', '100'], env);
    children.push(worker);
    await worker.printed(`· concurrency 2 · ${url}\n`);
    for (const runId of [...started, cliRun.runId]) await worker.printed(`✔ run ${runId} completed\n`);
    await worker.printed(`⏸ run ${gated} is waiting for approval at 'approval'\n`);
    await worker.printed(/ approval: approve: .+\n/);
    const line = / {2}approval: approve: (.+)$/m.exec(worker.stdout)?.[1] ?? '';
    expect(line).toMatch(new RegExp(`^cantbook --db ${quoted(url).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} approve cbk1\\.\\S+ --by "\\$USER"$`));
    // Stopped first, so that the pasted approve resumes the gate itself (a running worker could take the approved gate first).
    worker.kill('SIGTERM');
    const ended = await worker.exited;
    expect({ code: ended.code, stderr: ended.stderr }).toEqual({ code: 0, stderr: '' });
    expect(ended.stdout).toMatch(/^worker \S+ stopped · active 0 · claimed 5 · settled 5 /m);

    const approved = await paste(line.replace(/^cantbook /, `${node} ${join(repoRoot, 'dist', 'cli', 'main.js')} `), { USER: 'dee' });
    expect({ code: approved.code, stderr: approved.stderr }).toEqual({ code: 0, stderr: '' });
    expect(approved.stdout).toContain(`✔ run ${gated} completed`);
    const completed = await cli.json<{ runId: string }[]>(['--db', url, 'runs', '--status', 'completed'], env);
    expect(completed.map((row) => row.runId).sort()).toEqual([...started, cliRun.runId, gated].sort());
  });
});
