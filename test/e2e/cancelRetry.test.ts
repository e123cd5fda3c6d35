/**
 * `cantbook cancel` and `cantbook retry` (SPEC §10) through the real CLI: a
 * paused run cancelled (its gate with it), a run that already ended refused,
 * a run cancelled from another process while `cantbook run` executes its
 * node (that process stops the node's command and ends `cancelled`), and a
 * failed run redriven from the node it failed at, keeping what succeeded.
 */
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../unit/adapters/helpers.js';
import { createCliSession, demoAgent, expectCodedError, expectJsonError, repoRoot, waitFor } from '../helpers/cliSession.js';
import type { CliSession } from '../helpers/cliSession.js';
import { killAll } from './fixtures/sleeperLog.js';

interface Result {
  runId: string;
  terminalStatus: string;
  approvalToken?: string;
  finalContext: Record<string, unknown>;
  error?: { cause: string; nodeId?: string; message: string };
}
interface Event {
  type: string;
  data: { nodeId?: string; attempt?: number; fromNode?: string; by?: string; reason?: string };
}

const node = process.execPath;
let cli: CliSession;
const leftovers: number[] = [];

beforeAll(() => {
  cli = createCliSession();
  copyFileSync(join(repoRoot, 'starter', 'release.cantbook'), cli.path('release.cantbook'));
  copyFileSync(join(import.meta.dirname, 'fixtures', 'sleeper.mjs'), cli.path('sleeper.mjs'));
  writeFileSync(cli.path('cantbook.config.json'), `${JSON.stringify({ agent: demoAgent })}\n`);
  // `count` logs each time it runs; `flaky` fails until the file 'fixed' exists; then `last`.
  writeFileSync(
    cli.path('flaky.cantbook'),
    JSON.stringify({
      version: '1.0',
      name: 'flaky',
      nodes: [
        { id: 'count', type: 'deterministic', command: node, args: ['-e', "require('fs').appendFileSync('count.log', 'ran\\n')"] },
        { id: 'flaky', type: 'deterministic', command: node, args: ['-e', "process.exit(require('fs').existsSync('fixed') ? 0 : 3)"], depends: ['count'], on_failure: { max_iterations: 1 } },
        { id: 'last', type: 'deterministic', command: node, args: ['-e', 'process.stdout.write(JSON.stringify({ last: "done" }))'], depends: ['flaky'] },
      ],
    }),
  );
  writeFileSync(
    cli.path('slow.cantbook'),
    JSON.stringify({ version: '1.0', name: 'slow', nodes: [{ id: 'nap', type: 'deterministic', command: node, args: ['sleeper.mjs', 'slow.log', '30000'] }] }),
  );
  writeFileSync(cli.path('quick.cantbook'), JSON.stringify({ version: '1.0', name: 'quick', nodes: [{ id: 'only', type: 'deterministic', command: node, args: ['-e', '0'] }] }));
});
afterAll(() => {
  killAll(leftovers);
  cli.remove();
});

async function typesOf(runId: string): Promise<string[]> {
  return (await cli.json<Event[]>(['log', runId])).map((event) => event.type);
}

describe('cantbook cancel', () => {
  it('cancels a paused run: its gate is cancelled, approvals no longer lists it, its token is refused, and a second cancel is E_RUN_FINISHED', async () => {
    const paused = await cli.json<Result>(['run', 'release.cantbook', '--input', 'targetVersion=7.0.0']);
    expect(paused.terminalStatus).toBe('pending_approval');
    expect(await cli.json<unknown[]>(['approvals', '--pending'])).toHaveLength(1);

    const cancelled = await cli.run(['cancel', paused.runId, '--reason', 'superseded by 7.0.1', '--by', 'alice']);
    expect({ code: cancelled.code, stderr: cancelled.stderr }).toEqual({ code: 0, stderr: '' });
    const lines = cancelled.stdout.split('\n');
    expect(lines[0]).toBe(`✓ cancelled run ${paused.runId} as alice: superseded by 7.0.1`);
    expect(lines[1]).toMatch(new RegExp(`^✗ run ${paused.runId} cancelled`));

    expect((await cli.run(['approvals', '--pending'])).stdout).toBe('no pending approvals\n');
    expect(await cli.json<{ status: string }[]>(['approvals'])).toMatchObject([{ status: 'cancelled' }]);
    expect(await cli.json<{ status: string }>(['show', paused.runId])).toMatchObject({ status: 'cancelled' });
    expect((await typesOf(paused.runId)).slice(-1)).toEqual(['RunCancelled']);
    expect((await cli.json<Event[]>(['log', paused.runId])).at(-1)?.data).toMatchObject({ reason: 'superseded by 7.0.1', by: 'alice' });
    expectCodedError(await cli.run(['approve', paused.approvalToken ?? '', '--by', 'bob']), 'E_APPROVAL_ALREADY_DECIDED', 75);

    const again = expectCodedError(await cli.run(['cancel', paused.runId, '--reason', 'twice']), 'E_RUN_FINISHED', 75);
    expect(again).toContain('already ended (cancelled)');
  });

  it('--json prints the result; an ended run is E_RUN_FINISHED (75), a blank reason E_USAGE (64), an unknown run E_RUN_NOT_FOUND (67)', async () => {
    const paused = await cli.json<Result>(['run', 'release.cantbook', '--input', 'targetVersion=7.1.0']);
    const result = await cli.json<Result & { anchor: string }>(['cancel', paused.runId, '--reason', 'not this week']);
    expect(result).toMatchObject({ runId: paused.runId, terminalStatus: 'cancelled', anchor: expect.stringMatching(new RegExp(`^${paused.runId}:\\d+:[0-9a-f]{64}$`)) as unknown });

    const done = await cli.json<Result>(['run', 'quick.cantbook']);
    expect(done.terminalStatus).toBe('completed');
    expectCodedError(await cli.run(['cancel', done.runId, '--reason', 'too late']), 'E_RUN_FINISHED', 75);
    expectJsonError(await cli.run(['cancel', done.runId, '--reason', 'too late', '--json']), 'E_RUN_FINISHED', 75);
    expect(await typesOf(done.runId)).not.toContain('RunCancelled');
    expectCodedError(await cli.run(['cancel', done.runId, '--reason', '   ']), 'E_USAGE', 64);
    expectCodedError(await cli.run(['cancel', done.runId]), 'E_USAGE', 64);
    expectCodedError(await cli.run(['cancel', 'no-such-run', '--reason', 'x']), 'E_RUN_NOT_FOUND', 67);
  });

  it('from another process while `cantbook run` executes a slow node: the run process stops the command, ends cancelled (exit 1), and records no result for it', async () => {
    // A short lease: the driver hears of the cancellation at its next renewal (a third of it).
    const run = cli.start(['--db', 'slow.db', 'run', 'slow.cantbook'], { env: { CANTBOOK_LEASE_MS: '900' } });
    await waitFor('the slow node to start', () => existsSync(cli.path('slow.log')) || run.child.exitCode !== null);
    const [, pid, , grandchild] = readFileSync(cli.path('slow.log'), 'utf8').split('\n')[0]?.split(' ') ?? [];
    const pids = [Number(pid), Number(grandchild)];
    leftovers.push(...pids);
    const [running] = await cli.json<{ runId: string }[]>(['--db', 'slow.db', 'runs', '--status', 'running']);
    const runId = running?.runId ?? '';

    const cancelled = await cli.run(['--db', 'slow.db', 'cancel', runId, '--reason', 'taking too long']);
    expect({ code: cancelled.code, stderr: cancelled.stderr }).toEqual({ code: 0, stderr: '' });
    expect(cancelled.stdout).toContain(`drives it: it stops the run's attempts at its next lease renewal`);
    const cancelledAt = Date.now();

    const ended = await run.exited;
    expect(Date.now() - cancelledAt).toBeLessThan(5000);
    expect({ code: ended.code, stderr: ended.stderr }).toEqual({ code: 1, stderr: '' });
    expect(ended.stdout).toMatch(new RegExp(`^✗ run ${runId} cancelled`, 'm'));
    expect(pids.filter(isAlive)).toEqual([]);
    expect(readFileSync(cli.path('slow.log'), 'utf8')).not.toMatch(/^end /m);
    expect(await cli.json<Event[]>(['--db', 'slow.db', 'log', runId])).toMatchObject([
      { type: 'RunStarted' },
      { type: 'NodeStarted', data: { nodeId: 'nap', attempt: 1 } },
      { type: 'RunCancelled', data: { reason: 'taking too long' } },
    ]);
  });
});

describe('cantbook retry', () => {
  it('redrives a failed run from the node it failed at: earlier successes are not run again; exit codes as for run', async () => {
    const failed = await cli.run(['--db', 'flaky.db', 'run', 'flaky.cantbook']);
    expect(failed.code).toBe(2); // max_iterations 1: its first failure exceeds the cap
    const runId = /^run (\S+) · playbook flaky$/m.exec(failed.stdout)?.[1] ?? '';
    expect(failed.stdout.split('\n')).toContain(`  retry:   cantbook --db flaky.db retry ${runId}`);

    // Not fixed yet: the redrive fails the same way, with the same exit code.
    const stillFailing = await cli.json<Result>(['--db', 'flaky.db', 'retry', runId, '--by', 'bob'], { code: 2 });
    expect(stillFailing).toMatchObject({ terminalStatus: 'exceeded_iteration_cap', error: { nodeId: 'flaky' } });

    writeFileSync(cli.path('fixed'), '');
    const retried = await cli.run(['--db', 'flaky.db', 'retry', runId, '--by', 'bob', '--reason', 'disk replaced']);
    expect({ code: retried.code, stderr: retried.stderr }).toEqual({ code: 0, stderr: '' });
    expect(retried.stdout).toMatch(new RegExp(`^✔ run ${runId} completed$`, 'm'));

    const events = await cli.json<Event[]>(['--db', 'flaky.db', 'log', runId]);
    const starts = events.filter((event) => event.type === 'NodeStarted').map((event) => event.data.nodeId);
    expect(starts).toEqual(['count', 'flaky', 'flaky', 'flaky', 'last']);
    expect(events.filter((event) => event.type === 'RunRetried').map((event) => event.data)).toEqual([
      { fromNode: 'flaky', by: 'bob' },
      { fromNode: 'flaky', by: 'bob', reason: 'disk replaced' },
    ]);
    expect(events.at(-1)?.type).toBe('RunCompleted');
    expect(readFileSync(cli.path('count.log'), 'utf8')).toBe('ran\n');
    expect(await cli.json<{ ok: boolean }>(['--db', 'flaky.db', 'verify', runId])).toMatchObject({ ok: true });
  });

  it('a completed, cancelled or rejected run is E_RUN_NOT_RETRYABLE (65), and nothing is written', async () => {
    const done = await cli.json<Result>(['run', 'quick.cantbook']);
    const completed = expectCodedError(await cli.run(['retry', done.runId]), 'E_RUN_NOT_RETRYABLE', 65);
    expect(completed).toContain('it completed');
    expectJsonError(await cli.run(['retry', done.runId, '--json']), 'E_RUN_NOT_RETRYABLE', 65);

    const paused = await cli.json<Result>(['run', 'release.cantbook', '--input', 'targetVersion=7.2.0']);
    await cli.json(['cancel', paused.runId, '--reason', 'dropped']);
    expect(expectCodedError(await cli.run(['retry', paused.runId]), 'E_RUN_NOT_RETRYABLE', 65)).toContain('it was cancelled');

    const rejected = await cli.json<Result>(['run', 'release.cantbook', '--input', 'targetVersion=7.3.0']);
    await cli.json(['reject', rejected.approvalToken ?? '', '--by', 'carol', '--reason', 'no']);
    expect(expectCodedError(await cli.run(['retry', rejected.runId]), 'E_RUN_NOT_RETRYABLE', 65)).toContain('a human rejected it');

    for (const runId of [done.runId, paused.runId, rejected.runId]) expect(await typesOf(runId)).not.toContain('RunRetried');
    expectCodedError(await cli.run(['retry', 'no-such-run']), 'E_RUN_NOT_FOUND', 67);
  });
});
