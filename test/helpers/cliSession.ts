/**
 * The real, compiled CLI (`node dist/cli/main.js`, built by test/e2e/globalSetup.ts)
 * run as child processes inside a temporary working directory of the test's own,
 * so the default database `./.cantbook/cantbook.db`, the config file and relative
 * paths behave as they do for a user. Every output is kept, so a test can check
 * that no secret ever reached one.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect } from 'vitest';

/** The repository this test suite belongs to. */
export const repoRoot = resolve(import.meta.dirname, '..', '..');
/** The built CLI (test/e2e/globalSetup.ts builds it). */
export const cliPath = join(repoRoot, 'dist', 'cli', 'main.js');
/** starter/demo-agent.mjs, the exec agent the starters run with. */
export const demoAgentPath = join(repoRoot, 'starter', 'demo-agent.mjs');
/** The demo agent as an `--agent` spec that works from any directory. */
export const demoAgent = `exec:${process.execPath} ${demoAgentPath}`;

/** How one CLI process ended. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Options of one CLI call. */
export interface CallOptions {
  /** Added to the child's environment (after CANTBOOK_*, DEMO_AGENT_* and npm_* are removed). */
  env?: Record<string, string>;
  /** Working directory relative to the session's directory (default: the session's directory). */
  cwd?: string;
}

/** A temporary directory and the CLI run inside it. */
export interface CliSession {
  /** The session's directory (real path). */
  readonly dir: string;
  /** Absolute path of a file in the session's directory. */
  path(...parts: string[]): string;
  /** Runs `cantbook <args>`. Never rejects for a non-zero exit. */
  run(args: readonly string[], options?: CallOptions): Promise<CliResult>;
  /** Starts `cantbook <args>` in the background (a long-running run, worker, ...); see {@link CliChild}. */
  start(args: readonly string[], options?: CallOptions): CliChild;
  /** Runs `cantbook <args> --json`, expects `code` (default 0) and an empty stderr, and parses stdout. */
  json<T>(args: readonly string[], options?: CallOptions & { code?: number }): Promise<T>;
  /** Every stdout and stderr this session has seen, for secret checks. */
  readonly transcript: string[];
  /** Removes the directory. */
  remove(): void;
}

/** The environment a CLI child gets: this one without settings that would change what the CLI does. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (name.startsWith('CANTBOOK_') || name.startsWith('DEMO_AGENT_') || name.startsWith('npm_')) continue;
    env[name] = value;
  }
  return { ...env, NO_COLOR: '1', ...extra };
}

/** Runs any program and resolves with how it ended (used for `sh`, `script` and `npm` too). */
export function runProcess(command: string, args: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      command,
      [...args],
      // The timeout only bounds a hang (it kills the child, and the test then fails on the exit code); nothing waits on it.
      { cwd: options.cwd, env: options.env, maxBuffer: 64 * 1024 * 1024, timeout: options.timeoutMs ?? 45_000, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number' && error.signal == null) return reject(error);
        resolvePromise({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
      },
    );
  });
}

/** A CLI process running in the background. */
export interface CliChild {
  readonly child: ChildProcess;
  readonly pid: number;
  /** What it printed so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves when it exited: its exit code, or the signal that killed it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
  /** Sends `signal` to this process only (not to its children). */
  kill(signal: NodeJS.Signals): void;
  /** Resolves once stdout contains `text` (or matches it); rejects when the process exits first. */
  printed(text: string | RegExp): Promise<void>;
}

/** Starts the CLI in the background; the session records its output when it exits. */
function startCli(args: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv }, transcript: string[]): CliChild {
  const child = spawn(process.execPath, [cliPath, ...args], { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiting = new Set<() => void>();
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    for (const check of waiting) check();
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolvePromise) =>
    child.once('close', (code, signal) => {
      transcript.push(stdout, stderr);
      for (const check of waiting) check();
      resolvePromise({ code, signal, stdout, stderr });
    }),
  );
  return {
    child,
    pid: child.pid as number,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    exited,
    kill(signal) {
      child.kill(signal);
    },
    printed(text) {
      return new Promise((resolvePromise, reject) => {
        const check = (): void => {
          if (typeof text === 'string' ? stdout.includes(text) : text.test(stdout)) {
            waiting.delete(check);
            resolvePromise();
          } else if (child.exitCode !== null || child.signalCode !== null) {
            waiting.delete(check);
            reject(new Error(`cantbook ${args.join(' ')} exited (${child.exitCode ?? child.signalCode}) before it printed ${String(text)}:\n${stdout}${stderr}`));
          }
        };
        waiting.add(check);
        check();
      });
    },
  };
}

/**
 * Polls `check` every 20 ms until it holds, for at most `timeoutMs`; rejects
 * naming `what` when it never does. For conditions another process brings
 * about (a file written, a process gone), where there is nothing to await.
 */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolvePromise) => setTimeout(resolvePromise, 20));
  }
}

/** Creates a session in a fresh temporary directory. */
export function createCliSession(prefix = 'cantbook-e2e-'): CliSession {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  const transcript: string[] = [];
  const run = async (args: readonly string[], options: CallOptions = {}): Promise<CliResult> => {
    const result = await runProcess(process.execPath, [cliPath, ...args], { cwd: resolve(dir, options.cwd ?? '.'), env: cleanEnv(options.env) });
    transcript.push(result.stdout, result.stderr);
    return result;
  };
  return {
    dir,
    path: (...parts) => join(dir, ...parts),
    run,
    start: (args, options = {}) => startCli(args, { cwd: resolve(dir, options.cwd ?? '.'), env: cleanEnv(options.env) }, transcript),
    async json<T>(args: readonly string[], options: CallOptions & { code?: number } = {}): Promise<T> {
      const result = await run([...args, '--json'], options);
      expect({ code: result.code, stderr: result.stderr }, `cantbook ${args.join(' ')} --json\n${result.stdout}`).toEqual({ code: options.code ?? 0, stderr: '' });
      return JSON.parse(result.stdout) as T;
    },
    transcript,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Asserts the shape of a failed command in human mode: the exit code, stderr
 * starting with `error[CODE]: `, nothing on stdout, and no stack trace.
 * Returns stderr.
 */
export function expectCodedError(result: CliResult, code: string, exitCode: number): string {
  expect({ code: result.code, stdout: result.stdout, firstLine: result.stderr.split('\n')[0] }).toEqual({
    code: exitCode,
    stdout: '',
    firstLine: expect.stringMatching(new RegExp(`^error\\[${code}\\]: \\S`)),
  });
  expectNoStackTrace(result.stderr);
  return result.stderr;
}

/** Asserts the shape of a failed command in JSON mode: `{"error": {code, message}}` on stdout, nothing on stderr. */
export function expectJsonError(result: CliResult, code: string, exitCode: number): { code: string; message: string } {
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: exitCode, stderr: '' });
  const body = JSON.parse(result.stdout) as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  expect(body.error.message).toEqual(expect.any(String));
  expectNoStackTrace(result.stdout);
  return body.error;
}

/** No `    at f (file:line)` frames, no Node internals. */
export function expectNoStackTrace(text: string): void {
  expect(text).not.toMatch(/^\s+at .+[:(]/m);
  expect(text).not.toMatch(/node:internal|\.ts:\d+:\d+|\.js:\d+:\d+/);
}
