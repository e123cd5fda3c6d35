/**
 * A CLI process killed mid-node, and `cantbook recover` finishing its run from
 * the SQLite file alone (and leaving it alone while that process's lease was
 * live): the agent dies with the CLI, the interrupted attempt is recorded, the
 * node is dispatched again (at-least-once), and the run goes on to its gate.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../unit/adapters/helpers.js';
import { cleanEnv, cliPath, createCliSession, demoAgent, repoRoot, waitFor } from '../helpers/cliSession.js';
import type { CliSession } from '../helpers/cliSession.js';
import { killAll } from './fixtures/sleeperLog.js';

interface Event {
  seq: number;
  type: string;
  data: { nodeId?: string; attempt?: number; interrupted?: boolean };
}

let cli: CliSession;
const leftovers: number[] = [];

beforeAll(() => {
  cli = createCliSession();
  // Answers like a real agent, except that it announces itself and never finishes 'changelog'.
  writeFileSync(
    cli.path('stuck-agent.mjs'),
    [
      "import { writeFileSync } from 'node:fs';",
      'let text = "";',
      'for await (const chunk of process.stdin) text += chunk;',
      'const request = JSON.parse(text);',
      "if (request.nodeId === 'changelog') {",
      "  writeFileSync('stuck.pid', String(process.pid));",
      '  setInterval(() => {}, 1000);',
      '} else {',
      "  process.stdout.write(JSON.stringify({ status: 'success', output: { [request.nodeId]: 'done' } }));",
      '}',
    ].join('\n'),
  );
});
afterAll(() => {
  killAll(leftovers);
  cli.remove();
});

/** Resolves once `path` exists (the stuck agent writes it after NodeStarted was committed and it was dispatched). */
function fileAppears(path: string, child: ReturnType<typeof spawn>): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (existsSync(path)) resolve();
      else if (child.exitCode !== null) reject(new Error(`cantbook exited (${child.exitCode}) before the agent started`));
      else setTimeout(check, 25);
    };
    check();
  });
}

describe('recover', () => {
  it('with nothing interrupted, says so', async () => {
    const result = await cli.run(['recover']);
    expect(result).toMatchObject({ code: 0, stdout: 'no interrupted runs\n', stderr: '' });
  });

  it('finishes a run whose process was killed mid-node: the agent dies with it; once the lease expired, NodeFailed{interrupted}, a second attempt, then the gate', async () => {
    const release = join(repoRoot, 'starter', 'release.cantbook');
    // A short lease (renewed every third of it), so the killed CLI's lease expires within a second.
    const child = spawn(process.execPath, [cliPath, 'run', release, '--input', 'targetVersion=6.0.0', '--agent', `exec:${process.execPath} stuck-agent.mjs`], {
      cwd: cli.dir,
      env: cleanEnv({ CANTBOOK_LEASE_MS: '1000' }),
      stdio: 'ignore',
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    await fileAppears(cli.path('stuck.pid'), child);
    const agentPid = Number(readFileSync(cli.path('stuck.pid'), 'utf8'));
    leftovers.push(agentPid);

    // While the CLI that runs it holds its lease, recover skips the run (exit 0), names the owner, and writes nothing.
    const [live] = await cli.json<{ runId: string }[]>(['runs', '--status', 'running']);
    const skipped = await cli.run(['recover', '--agent', demoAgent, '--json']);
    expect(skipped.code).toBe(0);
    expect(JSON.parse(skipped.stdout)).toMatchObject({
      expired: [],
      runs: [{ runId: live?.runId, skipped: { code: 'E_RUN_ACTIVE', message: expect.stringContaining(`:${child.pid}'`) as unknown } }],
    });
    expect((await cli.json<Event[]>(['log', live?.runId ?? ''])).at(-1)).toMatchObject({ type: 'NodeStarted', data: { nodeId: 'changelog', attempt: 1 } });

    child.kill('SIGKILL');
    const killedAt = Date.now();
    expect(await exited).toBe('SIGKILL');
    // The agent's supervisor kills it when its driver dies, however it dies.
    expect(await waitFor('the agent to die with the CLI', () => !isAlive(agentPid), 1000)).toBeLessThanOrEqual(1000);
    // Nobody renews the lease any more: it expires at most 1000 ms after the last renewal, which came before the kill.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, killedAt + 1100 - Date.now())));

    const running = await cli.json<{ runId: string; currentNode: string }[]>(['runs', '--status', 'running']);
    expect(running).toHaveLength(1);
    const runId = running[0]?.runId ?? '';
    expect(running[0]?.currentNode).toBe('changelog');

    const recovered = await cli.json<{ expired: string[]; runs: { runId: string; terminalStatus: string; approvalToken?: string }[] }>(['recover', '--agent', demoAgent]);
    expect(recovered.expired).toEqual([]);
    expect(recovered.runs).toMatchObject([{ runId, terminalStatus: 'pending_approval', approvalToken: expect.stringMatching(/^cbk1\./) }]);

    const events = await cli.json<Event[]>(['log', runId]);
    expect(events.map((event) => [event.type, event.data.nodeId ?? null, event.data.attempt ?? null, event.data.interrupted ?? null])).toEqual([
      ['RunStarted', null, null, null],
      ['NodeStarted', 'version_bump', 1, null],
      ['NodeSucceeded', 'version_bump', 1, null],
      ['NodeStarted', 'changelog', 1, null],
      ['NodeFailed', 'changelog', 1, true],
      ['NodeStarted', 'changelog', 2, null],
      ['NodeSucceeded', 'changelog', 2, null],
      ['RunPaused', 'approval', null, null],
    ]);
    expect(await cli.json<{ ok: boolean }>(['verify', runId])).toMatchObject({ ok: true });
  });
});
