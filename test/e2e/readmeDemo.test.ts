/**
 * The README's main command as a user runs it in a clone: `npm run demo` pauses
 * starter/release.cantbook at its gate and prints the token and the exact
 * approve command; that command, pasted into a shell, completes the run (log and
 * verify are checked on the same flow by approvalLifecycle.test.ts). The database goes to a temporary
 * file through CANTBOOK_DB, as in .ci/run, so the clone's ./.cantbook is untouched.
 * (`npm ci` itself is .ci/run's job: tests share one node_modules.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, createCliSession, repoRoot, runProcess } from '../helpers/cliSession.js';
import type { CliSession } from '../helpers/cliSession.js';

const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
let cli: CliSession;
let env: NodeJS.ProcessEnv;

beforeAll(() => {
  cli = createCliSession();
  env = cleanEnv({ CANTBOOK_DB: cli.path('demo.db') });
});
afterAll(() => cli.remove());

/** Runs a shell line from the repository root, as a user would paste it. */
function shell(line: string, extra: Record<string, string> = {}): ReturnType<typeof runProcess> {
  return runProcess('sh', ['-c', line], { cwd: repoRoot, env: { ...env, ...extra }, timeoutMs: 60_000 });
}

describe("the README's commands", () => {
  it('names npm run demo, the approve command and the log and verify follow-ups', () => {
    expect(readme).toContain('npm ci && npm run demo');
    expect(readme).toContain('npm run cantbook -- approve <token> --by you');
    expect(readme).toContain('npm run cantbook -- log <runId>');
    expect(readme).toContain('npm run cantbook -- verify');
  });

  it('npm run demo pauses at the gate; the printed approve command completes the run', async () => {
    const demo = await shell('npm run --silent demo');
    expect({ code: demo.code, stderr: demo.stderr }).toEqual({ code: 0, stderr: '' });
    expect(demo.stdout).toContain('✓ version_bump (attempt 1)\n✓ changelog (attempt 1)\n');
    const runId = /^⏸ run (\S+) is waiting for approval at 'approval'/m.exec(demo.stdout)?.[1] ?? '';
    const token = /^ {2}token: {3}(\S+)$/m.exec(demo.stdout)?.[1] ?? '';
    const approve = /^ {2}approve: (.+)$/m.exec(demo.stdout)?.[1] ?? '';
    // No `cantbook` is on PATH in a clone, so the command names the npm script that is.
    expect(approve).toBe(`npm run cantbook -- --db ${cli.path('demo.db')} approve ${token} --by "$USER"`);

    const approved = await shell(approve, { USER: 'you' });
    expect(approved.code).toBe(0);
    expect(approved.stdout).toContain(`✓ approved 'approval' of run ${runId} as you\n`);
    expect(approved.stdout).toContain('✓ publish (attempt 1)\n');
    expect(approved.stdout).toContain(`✔ run ${runId} completed\n`);
  });
});
