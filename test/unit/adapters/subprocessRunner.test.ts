/** createSubprocessRunner against real child processes: no shell, env, cwd, output rules, caps, timeouts and kills. */
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSubprocessRunner } from '../../../src/adapters/subprocessRunner.js';
import type { NodeOutcome } from '../../../src/adapters/types.js';
import { commandRequest, isAlive, nodeScript, waitUntil } from './helpers.js';

const tree = join(import.meta.dirname, 'fixtures', 'processTree.mjs');
let dir: string;
const spawned: number[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cantbook-runner-'));
});
afterEach(() => {
  // Belt and braces: a failing assertion must not leave the test's processes behind.
  for (const pid of spawned.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function failure(outcome: NodeOutcome): string {
  expect(outcome.status).toBe('failure');
  return outcome.status === 'failure' ? (outcome.error ?? '') : '';
}

function pidsFrom(file: string): { child: number; grandchild: number } {
  const pids = JSON.parse(readFileSync(file, 'utf8')) as { child: number; grandchild: number };
  spawned.push(pids.child, pids.grandchild);
  return pids;
}

describe('createSubprocessRunner', () => {
  const runner = createSubprocessRunner({ killGraceMs: 300 });

  describe('output', () => {
    it('uses stdout as the output when it is a JSON object', async () => {
      const outcome = await runner.run(nodeScript(`console.log(JSON.stringify({ lint: 'ok', count: 2 }))`));
      expect(outcome).toEqual({ status: 'success', output: { lint: 'ok', count: 2 }, exitCode: 0 });
    });

    it('wraps text stdout as {[nodeId]: {exitCode, stdout}}, trailing whitespace removed', async () => {
      const outcome = await runner.run(nodeScript(`console.log('hello\\nworld')`, [], { nodeId: 'greet' }));
      expect(outcome).toEqual({ status: 'success', output: { greet: { exitCode: 0, stdout: 'hello\nworld' } }, exitCode: 0 });
    });

    it('adds stderr to the text shape only when there is some, and returns it as the attempt log', async () => {
      const outcome = await runner.run(nodeScript(`process.stdout.write('out'); process.stderr.write('warning: x\\n')`));
      expect(outcome).toEqual({ status: 'success', output: { n1: { exitCode: 0, stdout: 'out', stderr: 'warning: x' } }, exitCode: 0, log: 'warning: x\n' });
    });

    it('treats a JSON array, a JSON string and an empty stdout as text', async () => {
      expect(await runner.run(nodeScript(`console.log('[1,2]')`))).toEqual({ status: 'success', output: { n1: { exitCode: 0, stdout: '[1,2]' } }, exitCode: 0 });
      expect(await runner.run(nodeScript(`console.log('"s"')`))).toEqual({ status: 'success', output: { n1: { exitCode: 0, stdout: '"s"' } }, exitCode: 0 });
      expect(await runner.run(nodeScript(``))).toEqual({ status: 'success', output: { n1: { exitCode: 0, stdout: '' } }, exitCode: 0 });
    });

    it('keeps the head of a huge stdout and marks the cut; a cut JSON object is not parsed', async () => {
      const capped = createSubprocessRunner({ maxOutputBytes: 1000 });
      const outcome = await capped.run(nodeScript(`process.stdout.write('{"a":"' + 'y'.repeat(3 * 1024 * 1024) + '"}')`));
      expect(outcome.status).toBe('success');
      const text = (outcome.status === 'success' ? (outcome.output?.n1 as { stdout: string }) : { stdout: '' }).stdout;
      expect(text.startsWith('{"a":"yyy')).toBe(true);
      expect(text).toContain(`[truncated: ${3 * 1024 * 1024 + 8 - 1000} more bytes]`);
      expect(text.length).toBeLessThan(1100);
    });

    it('caps stderr too, so an error message stays small', async () => {
      const capped = createSubprocessRunner({ maxOutputBytes: 500 });
      const error = failure(await capped.run(nodeScript(`process.stderr.write('e'.repeat(100000)); process.exit(1)`)));
      expect(error).toContain('truncated');
      expect(error.length).toBeLessThan(2200);
    });
  });

  describe('no shell', () => {
    it('passes arguments with spaces, quotes, ; $() backticks, globs and newlines literally', async () => {
      const args = ['a b', '"double"', "'single'", 'x; rm -rf /', '$(whoami)', '`id`', '$HOME', '*', 'line1\nline2', '', '&& echo hi', '\\n'];
      // With `node -e`, process.argv is [execPath, ...args]: the script is not in argv.
      const outcome = await runner.run(nodeScript(`process.stdout.write(JSON.stringify({ argv: process.argv.slice(1) }))`, args));
      expect(outcome).toEqual({ status: 'success', output: { argv: args }, exitCode: 0 });
    });
  });

  describe('environment and working directory', () => {
    const envScript = `process.stdout.write(JSON.stringify({ env: Object.fromEntries(['CANTBOOK_SECRET', 'MY_TOKEN', 'KEEP_ME', 'NODE_VAR', 'CANTBOOK_RUN_ID', 'CANTBOOK_NODE_ID', 'CANTBOOK_ATTEMPT', 'CANTBOOK_IDEMPOTENCY_KEY'].map((k) => [k, process.env[k] ?? null])) }))`;
    const saved = { ...process.env };
    afterEach(() => {
      for (const name of ['CANTBOOK_SECRET', 'MY_TOKEN', 'KEEP_ME']) {
        if (saved[name] === undefined) delete process.env[name];
        else process.env[name] = saved[name];
      }
    });

    it('hides CANTBOOK_SECRET and redactEnv names, keeps the rest, adds the node env and the run variables', async () => {
      process.env.CANTBOOK_SECRET = 'top-secret';
      process.env.MY_TOKEN = 'token-value';
      process.env.KEEP_ME = 'kept';
      const redacting = createSubprocessRunner({ redactEnv: ['MY_TOKEN'] });
      const outcome = await redacting.run(
        nodeScript(envScript, [], { runId: 'r-9', nodeId: 'lint', iteration: 4, idempotencyKey: 'r-9:lint:4', env: { NODE_VAR: 'from-node' } }),
      );
      expect(outcome).toEqual({
        status: 'success',
        output: {
          env: {
            CANTBOOK_SECRET: null,
            MY_TOKEN: null,
            KEEP_ME: 'kept',
            NODE_VAR: 'from-node',
            CANTBOOK_RUN_ID: 'r-9',
            CANTBOOK_NODE_ID: 'lint',
            CANTBOOK_ATTEMPT: '4',
            CANTBOOK_IDEMPOTENCY_KEY: 'r-9:lint:4',
          },
        },
        exitCode: 0,
      });
    });

    it('does not let a node override the run variables', async () => {
      const outcome = await runner.run(nodeScript(envScript, [], { env: { CANTBOOK_RUN_ID: 'forged' } }));
      expect(outcome.status === 'success' && (outcome.output?.env as Record<string, unknown>).CANTBOOK_RUN_ID).toBe('run-1');
    });

    it('resolves the node cwd against options.cwd, and defaults to options.cwd', async () => {
      mkdirSync(join(dir, 'sub'), { recursive: true });
      const based = createSubprocessRunner({ cwd: dir });
      const script = `process.stdout.write(JSON.stringify({ cwd: process.cwd() }))`;
      expect(await based.run(nodeScript(script, [], { cwd: 'sub' }))).toEqual({ status: 'success', output: { cwd: realpathSync(join(dir, 'sub')) }, exitCode: 0 });
      expect(await based.run(nodeScript(script))).toEqual({ status: 'success', output: { cwd: realpathSync(dir) }, exitCode: 0 });
    });

    it('fails clearly when the working directory does not exist', async () => {
      const error = failure(await runner.run(nodeScript('', [], { cwd: join(dir, 'missing') })));
      expect(error).toBe(`working directory '${join(dir, 'missing')}' does not exist`);
    });
  });

  describe('failures', () => {
    it('a non-zero exit is a failure naming the command, the code and the stderr tail', async () => {
      const error = failure(await runner.run(nodeScript(`process.stderr.write('compile error in a.ts\\n'); process.exit(3)`)));
      expect(error).toBe(`command '${process.execPath}' exited with code 3: compile error in a.ts`);
    });

    it('says so when a failing command wrote no stderr', async () => {
      expect(failure(await runner.run(nodeScript(`process.exit(1)`)))).toBe(`command '${process.execPath}' exited with code 1 (no stderr)`);
    });

    it('a command that does not exist is a failure, not an exception', async () => {
      const error = failure(await runner.run(commandRequest('cantbook-no-such-command-xyz', ['--help'])));
      expect(error).toBe(`command 'cantbook-no-such-command-xyz' was not found (is it installed and on PATH?)`);
    });

    it('a child killed by a signal is a failure naming the signal', async () => {
      const error = failure(await runner.run(nodeScript(`process.kill(process.pid, 'SIGSEGV')`)));
      expect(error).toContain('was killed by signal SIGSEGV');
    });
  });

  describe('timeouts and kills', () => {
    it('kills the child and its grandchild when timeout_ms passes', async () => {
      const pidFile = join(dir, 'timeout.json');
      const started = Date.now();
      const outcome = await runner.run(commandRequest(process.execPath, [tree, pidFile, 'hang'], { timeout_ms: 1500 }));
      expect(failure(outcome)).toBe(`command '${process.execPath}' timed out after 1500 ms`);
      expect(Date.now() - started).toBeLessThan(10_000);
      const { child, grandchild } = pidsFrom(pidFile);
      expect(await waitUntil(() => !isAlive(child) && !isAlive(grandchild))).toBe(true);
    });

    it('SIGKILLs a group that ignores SIGTERM after the grace period', async () => {
      const pidFile = join(dir, 'stubborn.json');
      const outcome = await runner.run(commandRequest(process.execPath, [tree, pidFile, 'hang-stubborn'], { timeout_ms: 1500 }));
      expect(failure(outcome)).toContain('timed out after 1500 ms');
      const { child, grandchild } = pidsFrom(pidFile);
      expect(await waitUntil(() => !isAlive(child) && !isAlive(grandchild))).toBe(true);
    });

    it('uses defaultTimeoutMs when the node sets none', async () => {
      const short = createSubprocessRunner({ defaultTimeoutMs: 300, killGraceMs: 100 });
      expect(failure(await short.run(nodeScript(`setInterval(() => {}, 1000)`)))).toContain('timed out after 300 ms');
    });

    it('stops the process group when request.signal aborts', async () => {
      const pidFile = join(dir, 'abort.json');
      const controller = new AbortController();
      const running = runner.run(commandRequest(process.execPath, [tree, pidFile, 'hang'], { signal: controller.signal }));
      expect(await waitUntil(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8') !== '')).toBe(true);
      const { child, grandchild } = pidsFrom(pidFile);
      expect(isAlive(child) && isAlive(grandchild)).toBe(true);
      controller.abort(new Error('host shutting down'));
      expect(failure(await running)).toBe(`command '${process.execPath}' was cancelled: host shutting down`);
      expect(await waitUntil(() => !isAlive(child) && !isAlive(grandchild))).toBe(true);
    });

    it('does not start a command whose signal is already aborted', async () => {
      const controller = new AbortController();
      controller.abort();
      expect(failure(await runner.run(nodeScript(`console.log('ran')`, [], { signal: controller.signal })))).toContain('cancelled before start');
    });

    it('stops what a successful command left running in its process group', async () => {
      const pidFile = join(dir, 'leftover.json');
      const outcome = await runner.run(commandRequest(process.execPath, [tree, pidFile, 'exit']));
      expect(outcome).toEqual({ status: 'success', output: { started: true }, exitCode: 0 });
      const { grandchild } = pidsFrom(pidFile);
      expect(await waitUntil(() => !isAlive(grandchild))).toBe(true);
    });
  });
});
