/**
 * `cantbook worker` (SPEC §11) as a real process over a real SQLite file: it
 * finishes runs recorded by `startRun` and a run whose `cantbook run` was
 * killed (once that driver's lease expired), never more than `--concurrency`
 * at once; SIGTERM stops it cleanly (exit 0, the attempt in flight stopped,
 * nothing false recorded, its leases released, so a second worker takes the
 * work over at once); bad options are usage errors.
 */
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../unit/adapters/helpers.js';
import { cleanEnv, cliPath, createCliSession, demoAgent, expectCodedError, repoRoot, runProcess, waitFor } from '../helpers/cliSession.js';
import type { CliChild, CliSession } from '../helpers/cliSession.js';
import { killAll, sleeperAttempts } from './fixtures/sleeperLog.js';
import type { SleeperAttempt } from './fixtures/sleeperLog.js';

/** util-linux `script`, which gives the worker a pseudo-terminal (as in progress.test.ts). */
const hasScript = ((): boolean => {
  try {
    return execFileSync('script', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('util-linux');
  } catch {
    return false;
  }
})();

interface Event {
  type: string;
  data: { nodeId?: string; attempt?: number; interrupted?: boolean };
}
const library = join(repoRoot, 'dist', 'index.js');
let cli: CliSession;
const leftovers: number[] = [];
const workers: CliChild[] = [];

beforeAll(() => {
  cli = createCliSession();
  copyFileSync(join(import.meta.dirname, 'fixtures', 'sleeper.mjs'), cli.path('sleeper.mjs'));
  writeFileSync(cli.path('cantbook.config.json'), `${JSON.stringify({ agent: demoAgent })}\n`);
  mkdirSync(cli.path('elsewhere'));
  // One deterministic node that sleeps as long as the file `<name>.ms` says, logging to `<name>.log`.
  for (const name of ['batch', 'handover']) {
    writeFileSync(
      cli.path(`${name}.cantbook`),
      JSON.stringify({ version: '1.0', name, nodes: [{ id: 'nap', type: 'deterministic', command: process.execPath, args: ['sleeper.mjs', `${name}.log`, `@${name}.ms`] }] }),
    );
  }
});
afterAll(async () => {
  for (const worker of workers) if (worker.child.exitCode === null && worker.child.signalCode === null) worker.kill('SIGKILL');
  await Promise.all(workers.map((worker) => worker.exited));
  killAll(leftovers);
  cli.remove();
});

/** Records `count` runs of `playbook` with startRun (nobody drives them) and returns their ids. */
async function startRuns(db: string, playbook: string, count: number): Promise<string[]> {
  const result = await runProcess(process.execPath, [join(import.meta.dirname, 'fixtures', 'startRuns.mjs'), library, cli.path(db), cli.path(playbook), String(count)], { cwd: cli.dir, env: cleanEnv() });
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as string[];
}

function attemptsIn(log: string): SleeperAttempt[] {
  return sleeperAttempts(cli.path(log));
}

/** The most attempts alive at one moment, from their [start, end] intervals (a killed attempt's end is `killedAt`). */
function mostAtOnce(attempts: readonly SleeperAttempt[], killedAt: number): number {
  const edges = attempts.flatMap((attempt) => [[attempt.start, 1] as const, [attempt.end ?? killedAt, -1] as const]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let live = 0;
  let most = 0;
  for (const [, step] of edges) most = Math.max(most, (live += step));
  return most;
}

function startWorker(db: string, args: string[], env: Record<string, string> = {}): CliChild {
  const worker = cli.start(['--db', db, 'worker', ...args], { env });
  workers.push(worker);
  return worker;
}

describe('cantbook worker', () => {
  it('finishes runs started by startRun and a run whose `cantbook run` was killed, at most --concurrency at a time, one line per run', async () => {
    const db = 'batch.db';
    writeFileSync(cli.path('batch.ms'), '700');
    // A run whose driver dies mid-node: its lease (1 s) must expire before anyone takes it over.
    const run = cli.start(['--db', db, 'run', 'batch.cantbook'], { env: { CANTBOOK_LEASE_MS: '1000' } });
    await waitFor('the first attempt to start', () => attemptsIn('batch.log').length === 1 || run.child.exitCode !== null);
    run.kill('SIGKILL');
    const killedAt = Date.now();
    expect((await run.exited).signal).toBe('SIGKILL');
    const [killed] = await cli.json<{ runId: string }[]>(['--db', db, 'runs', '--status', 'running']);
    const started = await startRuns(db, 'batch.cantbook', 3);
    const all = [killed?.runId ?? '', ...started];

    const worker = startWorker(db, ['--concurrency', '2', '--poll-ms', '100'], { CANTBOOK_LEASE_MS: '1000' });
    await worker.printed(/^worker \S+ · concurrency 2 · /m);
    for (const runId of all) await worker.printed(`✔ run ${runId} completed\n`);
    worker.kill('SIGTERM');
    const ended = await worker.exited;
    expect({ code: ended.code, stderr: ended.stderr }).toEqual({ code: 0, stderr: '' });
    expect(ended.stdout).toMatch(/^worker \S+ stopped · active 0 · claimed 4 · settled 4 · handed back 0 · stopped 0$/m);
    // Off a terminal: the start lines, one line per run, the stop lines; no status line.
    expect(ended.stdout.split('\n').filter((line) => line.startsWith('✔ run ')).sort()).toEqual(all.map((runId) => `✔ run ${runId} completed`).sort());
    expect(ended.stdout).not.toContain('⟳');

    const completed = await cli.json<{ runId: string }[]>(['--db', db, 'runs', '--status', 'completed']);
    expect(completed.map((row) => row.runId).sort()).toEqual([...all].sort());
    // The killed run: its attempt recorded as interrupted, then driven again by the worker, once the dead driver's
    // lease had expired (at least two thirds of a lease after the kill: it was renewed every third).
    const killedLog = await cli.json<(Event & { at: string })[]>(['--db', db, 'log', killed?.runId ?? '']);
    const retakenAt = Date.parse(killedLog.find((event) => event.type === 'NodeFailed')?.at ?? '');
    expect(retakenAt - killedAt).toBeGreaterThanOrEqual(600);
    expect(killedLog.map((event) => [event.type, event.data.attempt ?? null, event.data.interrupted ?? null])).toEqual([
      ['RunStarted', null, null],
      ['NodeStarted', 1, null],
      ['NodeFailed', 1, true],
      ['NodeStarted', 2, null],
      ['NodeSucceeded', 2, null],
      ['RunCompleted', null, null],
    ]);
    // Five attempts: the killed one (no `end`), and one per run by the worker, never more than two at once.
    const attempts = attemptsIn('batch.log');
    expect(attempts).toHaveLength(5);
    expect(attempts.filter((attempt) => attempt.end === undefined)).toHaveLength(1);
    expect(mostAtOnce(attempts, killedAt)).toBeLessThanOrEqual(2);
  });

  it('SIGTERM stops it cleanly: the attempt in flight is stopped after --grace-ms, nothing is recorded for it, exit 0; its lease is released, so a second worker takes over at once', async () => {
    const db = 'handover.db';
    writeFileSync(cli.path('handover.ms'), '60000');
    const [first, second] = await startRuns(db, 'handover.cantbook', 2);
    // The default lease (30 s): only a released lease lets the second worker in within the test's time.
    const a = startWorker(db, ['--concurrency', '1', '--grace-ms', '200']);
    await waitFor('the first attempt to start', () => attemptsIn('handover.log').length === 1 || a.child.exitCode !== null);
    const [inFlight] = attemptsIn('handover.log') as [SleeperAttempt];
    leftovers.push(inFlight.pid, inFlight.grandchild);
    // The run the worker claimed is the one whose attempt started.
    const logs = await Promise.all([first, second].map(async (runId) => ({ runId, events: await cli.json<Event[]>(['--db', db, 'log', runId ?? '']) })));
    const claimed = logs.find((log) => log.events.some((event) => event.type === 'NodeStarted'));
    const before = claimed?.events ?? [];
    expect(before.map((event) => event.type)).toEqual(['RunStarted', 'NodeStarted']);
    expect(logs.filter((log) => log !== claimed).map((log) => log.events.map((event) => event.type))).toEqual([['RunStarted']]);

    a.kill('SIGTERM');
    const ended = await a.exited;
    expect({ code: ended.code, stderr: ended.stderr }).toEqual({ code: 0, stderr: '' });
    expect(ended.stdout).toContain('SIGTERM: stopping; no new runs are claimed, the attempts of 1 run in flight get up to 200 ms to finish');
    expect(ended.stdout).toMatch(/^worker \S+ stopped · active 0 · claimed 1 · settled 0 · handed back 0 · stopped 1$/m);
    expect([inFlight.pid, inFlight.grandchild].filter(isAlive)).toEqual([]);
    expect(await cli.json<Event[]>(['--db', db, 'log', claimed?.runId ?? ''])).toEqual(before);

    writeFileSync(cli.path('handover.ms'), '200');
    const b = startWorker(db, ['--concurrency', '2', '--poll-ms', '100']);
    const handedOver = Date.now();
    for (const runId of [first, second]) await b.printed(`✔ run ${runId} completed\n`);
    expect(Date.now() - handedOver).toBeLessThan(15_000);
    b.kill('SIGINT');
    expect((await b.exited).code).toBe(0);
    expect((await cli.json<Event[]>(['--db', db, 'log', claimed?.runId ?? ''])).map((event) => [event.type, event.data.attempt ?? null, event.data.interrupted ?? null])).toEqual([
      ['RunStarted', null, null],
      ['NodeStarted', 1, null],
      ['NodeFailed', 1, true],
      ['NodeStarted', 2, null],
      ['NodeSucceeded', 2, null],
      ['RunCompleted', null, null],
    ]);
  });

  it('--json prints one JSON object per line: started, driven, stopped', async () => {
    const db = 'json.db';
    writeFileSync(cli.path('batch.ms'), '10');
    const [runId] = await startRuns(db, 'batch.cantbook', 1);
    const worker = startWorker(db, ['--json', '--poll-ms', '100']);
    await worker.printed('"type":"driven"');
    worker.kill('SIGTERM');
    const ended = await worker.exited;
    expect({ code: ended.code, stderr: ended.stderr }).toEqual({ code: 0, stderr: '' });
    const records = ended.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(records).toMatchObject([
      { type: 'started', concurrency: 4, db: cli.path(db) },
      { type: 'driven', runId, result: { runId, terminalStatus: 'completed' } },
      { type: 'stopped', stats: { claimed: 1, settled: 1, active: 0 } },
    ]);
  });

  it("approve while another driver holds the run: the gate is approved, that driver is named, exit 0; a worker resumes the gate once that lease expired", async () => {
    const db = 'gate.db';
    const paused = await cli.json<{ runId: string; approvalToken: string }>(['--db', db, 'run', join(repoRoot, 'starter', 'release.cantbook'), '--input', 'targetVersion=8.0.0']);
    const held = await runProcess(process.execPath, [join(import.meta.dirname, 'fixtures', 'holdLease.mjs'), library, cli.path(db), paused.runId, 'other-driver', '3000'], { cwd: cli.dir, env: cleanEnv() });
    expect(JSON.parse(held.stdout)).toMatchObject({ lease: { runId: paused.runId, owner: 'other-driver' } });

    const approved = await cli.run(['--db', db, 'approve', paused.approvalToken, '--by', 'dana']);
    expect({ code: approved.code, stderr: approved.stderr }).toEqual({ code: 0, stderr: '' });
    expect(approved.stdout).toBe(
      `✓ approved 'approval' of run ${paused.runId} as dana\n▶ run ${paused.runId} is being driven by 'other-driver'; that driver resumes the gate\n`,
    );
    expect((await cli.json<Event[]>(['--db', db, 'log', paused.runId])).map((event) => event.type).slice(-2)).toEqual(['RunPaused', 'ApprovalGranted']);

    // That "driver" never comes back: once its lease expired, the approved gate is runnable work for a worker.
    const worker = startWorker(db, ['--poll-ms', '100']);
    await worker.printed(`✔ run ${paused.runId} completed\n`);
    worker.kill('SIGTERM');
    expect((await worker.exited).code).toBe(0);
    expect((await cli.json<Event[]>(['--db', db, 'log', paused.runId])).map((event) => event.type).slice(-4)).toEqual(['RunResumed', 'NodeStarted', 'NodeSucceeded', 'RunCompleted']);
  });

  it.skipIf(!hasScript)('on a terminal: a status line rewritten in place, the run lines above it; SIGINT stops it (exit 0)', async () => {
    const db = 'tty.db';
    writeFileSync(cli.path('batch.ms'), '10');
    const [runId] = await startRuns(db, 'batch.cantbook', 1);
    const quote = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`;
    const command = `stty cols 120 rows 40 && exec ${[process.execPath, cliPath, '--db', db, 'worker', '--poll-ms', '100'].map(quote).join(' ')}`;
    const child = spawn('script', ['-qec', command, '/dev/null'], { cwd: cli.dir, env: cleanEnv({ TERM: 'xterm-256color' }), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    const CLEAR = '\r\u001b[2K';
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString('utf8');
        // Once the run is driven and the status line says so (it is redrawn on every change, and every second).
        if (stdout.includes(`✔ run ${runId} completed`) && stdout.includes(`${CLEAR}⟳ active 0 · claimed 1 · settled 1 `)) resolve();
      });
      void exited.then(() => reject(new Error(`the worker exited before it drove the run:\n${stdout}`)));
    });
    // The worker's id names its pid: signal it, not `script`.
    const pid = Number(/worker:\S*:(\d+):[0-9a-f]{6}/.exec(stdout)?.[1]);
    process.kill(pid, 'SIGINT');
    expect(await exited).toBe(0);
    // While the node runs, after it, and the run's line scrolled above the status line.
    expect(stdout).toContain(`${CLEAR}⟳ active 1 · claimed 1 · settled 0 · handed back 0 · stopped 0`);
    expect(stdout).toContain(`${CLEAR}✔ run ${runId} completed\r\n⟳ `);
    expect(stdout).toContain(`${CLEAR}⟳ active 0 · claimed 1 · settled 1 · handed back 0 · stopped 0`);
    expect(stdout).toContain(`${CLEAR}SIGINT: stopping; no new runs are claimed, nothing is in flight\r\n`);
    const finalLine = stdout.slice(stdout.lastIndexOf(CLEAR) + CLEAR.length);
    expect(finalLine).toMatch(/^worker \S+ stopped · active 0 · claimed 1 · settled 1 · handed back 0 · stopped 0\r\n$/);
  });

  it.each([
    [['--concurrency', '0'], '--concurrency must be a positive integer'],
    [['--concurrency', 'two'], '--concurrency must be a positive integer'],
    [['--concurrency', '1.5'], '--concurrency must be a positive integer'],
    [['--poll-ms', '-5'], '--poll-ms'],
    [['--grace-ms', 'soon'], '--grace-ms must be a whole number of milliseconds'],
  ])('%j is E_USAGE (64)', async (args, message) => {
    const result = await cli.run(['--db', 'usage.db', 'worker', ...args]);
    expect(expectCodedError(result, 'E_USAGE', 64)).toContain(message);
    expect(existsSync(cli.path('usage.db'))).toBe(false);
  });

  it('a bad CANTBOOK_LEASE_MS is E_USAGE naming the variable; no agent is E_ADAPTER_INVALID (78)', async () => {
    const lease = expectCodedError(await cli.run(['--db', 'usage.db', 'worker'], { env: { CANTBOOK_LEASE_MS: '0' } }), 'E_USAGE', 64);
    expect(lease).toContain("CANTBOOK_LEASE_MS must be a whole number of milliseconds (at least 3), got '0'");
    // A directory without cantbook.config.json, so no agent is configured.
    const noAgent = expectCodedError(await cli.run(['--db', '../usage.db', 'worker'], { cwd: 'elsewhere' }), 'E_ADAPTER_INVALID', 78);
    expect(noAgent).toContain('a worker needs an agent');
    expect(existsSync(cli.path('usage.db'))).toBe(false);
  });
});
