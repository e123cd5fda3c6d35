/**
 * The real, compiled CLI (`node dist/cli/main.js`) as a child process: one-shot
 * commands, and the long-running `cantbook ui`. Built once by test/e2e/globalSetup.ts.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const repoRoot = join(import.meta.dirname, '..', '..');
export const cliPath = join(repoRoot, 'dist', 'cli', 'main.js');
/** The demo agent every starter runs with. */
export const DEMO_AGENT = 'exec:node starter/demo-agent.mjs';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment the CLI runs in: this one without CANTBOOK_* settings (so --db and the per-database secret apply), plus `extra`. */
function cliEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('CANTBOOK_') && !name.startsWith('DEMO_AGENT_')) env[name] = value;
  return { ...env, NO_COLOR: '1', ...extra };
}

/** Runs `cantbook <args>` from the repository root and resolves when it exits. */
export function runCantbook(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [cliPath, ...args], { cwd: repoRoot, env: cliEnv(env), maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(error);
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

/** Runs a `--json` command and parses its stdout; throws with stderr when it does not exit 0. */
export async function runCantbookJson<T>(args: readonly string[], env: Record<string, string> = {}): Promise<T> {
  const result = await runCantbook([...args, '--json'], env);
  if (result.code !== 0) throw new Error(`cantbook ${args.join(' ')} exited ${result.code}:\n${result.stdout}${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

/** What `cantbook ui --json` prints once it listens. */
export interface ViewerInfo {
  url: string;
  openUrl: string;
  host: string;
  port: number;
  db: string;
}

/** A `cantbook ui` process this test started. */
export interface ViewerProcess {
  info: ViewerInfo;
  child: ChildProcess;
  /** Sends SIGTERM (or the signal given) to this process (only it) and resolves with its exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `cantbook --db <db> ui --port 0 --json [...args]` and resolves with the
 * URL it printed once it listens. Rejects when it exits first.
 */
export function startViewerProcess(db: string, args: readonly string[] = []): Promise<ViewerProcess> {
  const child = spawn(process.execPath, [cliPath, '--db', db, 'ui', '--port', '0', '--json', ...args], { cwd: repoRoot, env: cliEnv({}), stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      // --json prints one document once the server listens; it is complete when it parses.
      try {
        resolve({ info: JSON.parse(stdout) as ViewerInfo, child, stop });
      } catch {
        // not complete yet
      }
    });
    void exited.then((code) => reject(new Error(`cantbook ui exited (${code}) before it listened:\n${stdout}${stderr}`)));
  });
}
