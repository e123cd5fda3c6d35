/**
 * `cantbook run` stopped by a signal while a deterministic node's command
 * sleeps (SPEC §4 "no two attempts of a node at once", §11 leases):
 * - SIGKILL: nothing in the CLI runs, yet within a second no process of the
 *   attempt is left (their supervisor kills them); `cantbook recover` takes
 *   the run over once the dead driver's lease expired.
 * - SIGINT / SIGTERM: the CLI stops the attempt's processes first, records
 *   nothing about it, releases its lease, prints how to finish the run and
 *   exits 130 / 143; `recover` takes the run over at once.
 * In every case the command's own log (each attempt appends `start` and, if it
 * lives to, `end`) shows at most one live attempt at any moment.
 */
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../unit/adapters/helpers.js';
import { createCliSession, waitFor } from '../helpers/cliSession.js';
import type { CliSession } from '../helpers/cliSession.js';
import { killAll, sleeperAttempts } from './fixtures/sleeperLog.js';
import type { SleeperAttempt } from './fixtures/sleeperLog.js';

interface Event {
  type: string;
  data: { nodeId?: string; attempt?: number; interrupted?: boolean };
}

/** How long an attempt sleeps: long enough for the two CLI calls that read the run before the signal, on a loaded machine. */
const SLEEP_MS = 3000;
/** The CLI's lease: the shortest that keeps the test quick and still renews (every third of it). */
const LEASE = { CANTBOOK_LEASE_MS: '1000' };

let cli: CliSession;
const leftovers: number[] = [];

beforeAll(() => {
  cli = createCliSession();
  copyFileSync(join(import.meta.dirname, 'fixtures', 'sleeper.mjs'), cli.path('sleeper.mjs'));
});
afterAll(() => {
  killAll(leftovers);
  cli.remove();
});

/** A playbook whose one node runs sleeper.mjs, logging to `log`. */
function napPlaybook(name: string, log: string): string {
  const file = `${name}.cantbook`;
  writeFileSync(
    cli.path(file),
    JSON.stringify({ version: '1.0', name, nodes: [{ id: 'nap', type: 'deterministic', command: process.execPath, args: ['sleeper.mjs', log, String(SLEEP_MS)] }] }),
  );
  return file;
}

function attemptsIn(log: string): SleeperAttempt[] {
  return sleeperAttempts(cli.path(log));
}

/** Starts `cantbook run` and resolves once its node's command has logged its start. */
async function startNapping(name: string, extra: string[] = []) {
  const log = `${name}.log`;
  const run = cli.start([...extra, 'run', napPlaybook(name, log)], { env: LEASE });
  await waitFor(`the first attempt of ${name} to start`, () => attemptsIn(log).length === 1 || run.child.exitCode !== null);
  const [first] = attemptsIn(log);
  expect(first, run.stdout + run.stderr).toBeDefined();
  leftovers.push((first as SleeperAttempt).pid, (first as SleeperAttempt).grandchild);
  return { run, log, first: first as SleeperAttempt };
}

function processesOf(attempt: SleeperAttempt): number[] {
  return [attempt.pid, attempt.grandchild].filter(isAlive);
}

/** The run's only run id, and its log as [type, nodeId, attempt, interrupted]. */
async function eventsOf(extra: string[] = []): Promise<{ runId: string; events: (string | number | boolean | null)[][] }> {
  const [run] = await cli.json<{ runId: string }[]>([...extra, 'runs']);
  const runId = run?.runId ?? '';
  const events = await cli.json<Event[]>([...extra, 'log', runId]);
  return { runId, events: events.map((event) => [event.type, event.data.nodeId ?? null, event.data.attempt ?? null, event.data.interrupted ?? null]) };
}

/**
 * After recovery: two attempts, the first killed (no `end`), the second whole,
 * and the second started only once every process of the first was gone.
 */
function expectOneLiveAttemptAtATime(log: string, firstGoneBy: number): void {
  const attempts = attemptsIn(log);
  expect(attempts).toHaveLength(2);
  const [killed, second] = attempts as [SleeperAttempt, SleeperAttempt];
  expect(killed.end).toBeUndefined();
  expect(second.end).toEqual(expect.any(Number));
  expect(second.start).toBeGreaterThanOrEqual(firstGoneBy);
  expect(processesOf(killed)).toEqual([]);
}

const RECOVERED = [
  ['RunStarted', null, null, null],
  ['NodeStarted', 'nap', 1, null],
  ['NodeFailed', 'nap', 1, true],
  ['NodeStarted', 'nap', 2, null],
  ['NodeSucceeded', 'nap', 2, null],
  ['RunCompleted', null, null, null],
];

describe('signals to cantbook run', () => {
  it('SIGKILL: the attempt dies with the CLI within a second; recover takes over once the lease expired, and the attempts never overlap', async () => {
    const db = ['--db', 'kill.db'];
    const { run, log, first } = await startNapping('killed', db);
    run.kill('SIGKILL');
    const killedAt = Date.now();
    expect((await run.exited).signal).toBe('SIGKILL');
    expect(await waitFor('the killed attempt\'s processes to die', () => processesOf(first).length === 0, 1000)).toBeLessThanOrEqual(1000);
    const goneAt = Date.now();

    // Nobody renews the dead driver's lease: it expires at most a second after the kill (recover.test.ts shows the refusal before).
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, killedAt + 1100 - Date.now())));

    const recovered = await cli.json<{ runs: { terminalStatus?: string }[] }>([...db, 'recover']);
    expect(recovered.runs).toMatchObject([{ terminalStatus: 'completed' }]);
    expect((await eventsOf(db)).events).toEqual(RECOVERED);
    expectOneLiveAttemptAtATime(log, goneAt);
  });

  it.each([
    { signal: 'SIGINT' as const, exitCode: 130, db: [] as string[] },
    { signal: 'SIGTERM' as const, exitCode: 143, db: ['--db', 'term.db'] },
  ])('$signal: the CLI stops the attempt first, records nothing about it, exits $exitCode with the recover command; recover takes over at once', async ({ signal, exitCode, db }) => {
    const { run, log, first } = await startNapping(signal.toLowerCase(), db);
    const before = await eventsOf(db);
    expect(before.events.at(-1)).toEqual(['NodeStarted', 'nap', 1, null]);

    run.kill(signal);
    const ended = await run.exited;
    const goneAt = Date.now();
    // It exited only after the attempt's processes were gone, and long before the attempt would have ended.
    expect(processesOf(first)).toEqual([]);
    expect(goneAt).toBeLessThan(first.start + SLEEP_MS);
    expect({ code: ended.code, signal: ended.signal }).toEqual({ code: exitCode, signal: null });
    const recoverCommand = ['cantbook', ...db, 'recover'].join(' ');
    expect(ended.stderr).toBe(
      `error[E_RUN_INTERRUPTED]: run ${before.runId} was interrupted (${signal}): its node's processes (if any) were stopped and nothing about them was recorded; ` +
        `the run is recoverable: finish it with: ${recoverCommand} (or leave it to a running cantbook worker)\n`,
    );

    // Nothing false recorded: the attempt is still just started, no NodeFailed, and the run still running.
    expect((await eventsOf(db)).events).toEqual(before.events);
    expect(await cli.json<{ status: string }>([...db, 'show', before.runId])).toMatchObject({ status: 'running', activeNodes: [{ nodeId: 'nap' }] });

    // The lease was released: the printed command recovers the run now, no wait for an expiry.
    const recovered = await cli.run([...recoverCommand.split(' ').slice(1), '--json']);
    expect(recovered.code, recovered.stdout + recovered.stderr).toBe(0);
    expect(JSON.parse(recovered.stdout)).toMatchObject({ runs: [{ runId: before.runId, terminalStatus: 'completed' }] });
    expect((await eventsOf(db)).events).toEqual(RECOVERED);
    expectOneLiveAttemptAtATime(log, goneAt);
  });
});
