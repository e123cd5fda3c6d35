/**
 * The one place cantbook starts child processes: no shell, its own process
 * group, a clean environment, capped output, a kill that reaches
 * grandchildren, and (POSIX) a supervisor that kills the group when this
 * process dies, SIGKILL included (supervisor.ts explains how). Used by the
 * subprocess runner and the exec dispatcher.
 *
 * Internal to src/adapters (not exported from the package root).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import type { Socket } from 'node:net';
import { inheritedEnv } from './runEnv.js';
import type { NodeOutcome } from './types.js';
import { parseSupervisorReport, supervisorArgs, supervisorEnv, supervisorHeader } from './supervisor.js';

/** Ten minutes: how long a command or agent may run when nothing else is configured. */
export const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000;

/** How much of stdout and of stderr is kept, each: 1 MiB. */
export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;

/** Time between SIGTERM and SIGKILL. */
export const DEFAULT_KILL_GRACE_MS = 5000;

/** After SIGKILL the pipes close as soon as the kernel reaps the group; this only guards against a stuck pipe. */
const PIPE_CLOSE_FALLBACK_MS = 2000;

/** Options shared by everything that starts a child process. */
export interface ChildProcessOptions {
  /** Base directory relative working directories are resolved against (default: `process.cwd()` at call time). */
  cwd?: string;
  /** Names removed from the inherited environment, in addition to every `CANTBOOK_*` name. */
  redactEnv?: readonly string[];
  /** Bytes kept of stdout and of stderr, each (default 1 MiB); the head is kept. */
  maxOutputBytes?: number;
  /** Milliseconds between SIGTERM and SIGKILL when a child is stopped (default 5000). */
  killGraceMs?: number;
}

/** One child to run. */
export interface ChildSpec {
  command: string;
  args: readonly string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Written to the child's stdin, which is then closed; without it stdin is /dev/null. */
  stdin?: string;
  /** 0 or undefined: no timeout. */
  timeoutMs?: number;
  maxOutputBytes: number;
  killGraceMs: number;
  signal?: AbortSignal;
}

/** Captured text of one stream, cut at the byte cap. */
export interface CapturedText {
  text: string;
  /** Total bytes the child wrote, including those dropped. */
  bytes: number;
  truncated: boolean;
}

/** How a child run ended. */
export type ChildResult =
  | {
      kind: 'exited';
      /** Exit code, or null when a signal ended the child. */
      exitCode: number | null;
      exitSignal: NodeJS.Signals | null;
      /** Set when cantbook stopped the child. */
      stoppedBy: 'timeout' | 'abort' | null;
      stdout: CapturedText;
      stderr: CapturedText;
    }
  | { kind: 'spawn_error'; message: string };

/**
 * Builds a child's environment: `process.env` without every `CANTBOOK_*` name
 * and the redacted names ({@link inheritedEnv}), then `extra` on top (a node's
 * own env may set any name, because its value is written in the playbook, not
 * inherited; the per-attempt `CANTBOOK_RUN_ID`... variables come last).
 */
export function childEnv(redact: readonly string[] | undefined, ...extra: (Record<string, string> | undefined)[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = inheritedEnv(process.env, redact);
  for (const layer of extra) if (layer) Object.assign(env, layer);
  return env;
}

/**
 * Runs one child to completion and resolves with what happened; never rejects.
 *
 * The child is spawned without a shell (arguments reach it literally) in a
 * new process group. When it times out or `signal` aborts, the whole group
 * gets SIGTERM, then SIGKILL after `killGraceMs`. When the command exits on
 * its own while other members of its group are still alive (a backgrounded
 * grandchild), they are stopped the same way. The promise settles only once
 * the group is gone or has been sent SIGKILL and the pipes have closed, so no
 * child outlives it.
 *
 * On POSIX the group is led by a supervisor (supervisor.ts) that SIGKILLs it
 * when this process dies, however it dies (SIGKILL included): every process
 * an attempt starts dies with its driver. Windows runs the command directly.
 */
export function runChild(spec: ChildSpec): Promise<ChildResult> {
  return new Promise((resolve) => {
    if (spec.signal?.aborted) {
      resolve({ kind: 'spawn_error', message: `cancelled before start: ${reasonOf(spec.signal)}` });
      return;
    }
    const cwdProblem = directoryProblem(spec.cwd);
    if (cwdProblem !== null) {
      resolve({ kind: 'spawn_error', message: cwdProblem });
      return;
    }

    const supervised = process.platform !== 'win32';
    const stdin = spec.stdin === undefined ? 'ignore' : 'pipe';
    let child: ChildProcess;
    try {
      child = supervised
        ? spawn(process.execPath, supervisorArgs(spec.command, spec.args), {
            cwd: spec.cwd,
            env: supervisorEnv(),
            shell: false,
            detached: true,
            stdio: [stdin, 'pipe', 'pipe', 'pipe'],
          })
        : spawn(spec.command, [...spec.args], { cwd: spec.cwd, env: spec.env, shell: false, windowsHide: true, stdio: [stdin, 'pipe', 'pipe'] });
    } catch (error) {
      // Node refuses some arguments before starting anything (a NUL byte in one).
      resolve({ kind: 'spawn_error', message: spawnMessage(spec.command, error as NodeJS.ErrnoException) });
      return;
    }
    // The supervisor's link (fd 3): the header goes out at once, reports come back.
    const link = supervised && child.pid !== undefined ? (child.stdio[3] as Socket) : null;

    const stdout = capture(spec.maxOutputBytes);
    const stderr = capture(spec.maxOutputBytes);
    child.stdout?.on('data', stdout.push);
    child.stderr?.on('data', stderr.push);
    let openPipes = 2;
    child.stdout?.on('close', onPipeClosed);
    child.stderr?.on('close', onPipeClosed);

    let settled = false;
    let stoppedBy: 'timeout' | 'abort' | null = null;
    let stopping = false;
    /** How the command ended: the supervisor's report, or the process's own exit when there is none. */
    let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    const timers: NodeJS.Timeout[] = [];

    const signalGroup = (sig: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        if (process.platform === 'win32') child.kill(sig);
        else process.kill(-child.pid, sig);
      } catch {
        // ESRCH: the group is already gone.
      }
    };
    const groupAlive = (): boolean => {
      if (child.pid === undefined) return false;
      if (process.platform === 'win32') return exit === null;
      try {
        process.kill(-child.pid, 0);
        return true;
      } catch (error) {
        return (error as NodeJS.ErrnoException).code === 'EPERM';
      }
    };

    const finish = (result: ChildResult): void => {
      if (settled) return;
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      spec.signal?.removeEventListener('abort', onAbort);
      // Closing the link tells a supervisor still alive to SIGKILL its group (itself included).
      link?.destroy();
      resolve(result);
    };
    const finishExited = (): void => {
      // Whatever is left of the group (the supervisor, a process that ignored SIGTERM or closed its pipes and lingers) dies now.
      if (groupAlive()) signalGroup('SIGKILL');
      finish({
        kind: 'exited',
        exitCode: exit?.code ?? null,
        exitSignal: exit?.signal ?? null,
        stoppedBy,
        stdout: stdout.result(),
        stderr: stderr.result(),
      });
    };
    /** Settles once the command's end is known and its output complete; says whether it did. */
    const finishIfDone = (): boolean => {
      if (settled) return true;
      if (exit === null || openPipes > 0) return false;
      finishExited();
      return true;
    };
    function onPipeClosed(): void {
      openPipes -= 1;
      finishIfDone();
    }

    const stop = (why: 'timeout' | 'abort' | null): void => {
      if (stoppedBy === null && exit === null) stoppedBy = why;
      if (stopping) return;
      stopping = true;
      signalGroup('SIGTERM');
      timers.push(
        setTimeout(() => {
          signalGroup('SIGKILL');
          timers.push(
            setTimeout(() => {
              // A pipe held open by something outside the group (rare): stop waiting for it.
              child.stdout?.destroy();
              child.stderr?.destroy();
              finishExited();
            }, PIPE_CLOSE_FALLBACK_MS),
          );
        }, spec.killGraceMs),
      );
    };
    function onAbort(): void {
      stop('abort');
    }
    const commandExited = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (settled || exit !== null) return;
      exit = { code, signal };
      if (finishIfDone()) return;
      // The command is gone but its pipes are open: something it left in its group is stopped rather than
      // orphaned. (Supervised, the group always holds the supervisor, which ignores SIGTERM.)
      if (supervised || groupAlive()) stop(null);
    };

    child.on('error', (error: NodeJS.ErrnoException) => {
      if (child.pid === undefined) {
        finish({ kind: 'spawn_error', message: spawnMessage(spec.command, error) });
      }
    });
    if (child.pid === undefined) return; // spawn failed; 'error' follows.

    if (link === null) {
      child.on('exit', commandExited);
    } else {
      // The supervisor's own end counts only when it left no report (it was killed), and only once every
      // report it wrote has been read: after both its exit and the link's close.
      let supervisorExit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
      let linkClosed = false;
      const supervisorGone = (): void => {
        if (supervisorExit !== null && linkClosed) commandExited(supervisorExit.code, supervisorExit.signal);
      };
      child.on('exit', (code, signal) => {
        supervisorExit = { code, signal };
        supervisorGone();
      });
      link.on('close', () => {
        linkClosed = true;
        supervisorGone();
      });
      link.on('error', () => {}); // EPIPE or ECONNRESET: the supervisor died, and its exit says how.
      link.setEncoding('utf8');
      let pending = '';
      link.on('data', (chunk: string) => {
        pending += chunk;
        for (let end = pending.indexOf('\n'); end !== -1; end = pending.indexOf('\n')) {
          const report = parseSupervisorReport(pending.slice(0, end));
          pending = pending.slice(end + 1);
          if (report?.kind === 'exit') commandExited(report.code, report.signal);
          else if (report?.kind === 'error') finish({ kind: 'spawn_error', message: spawnMessage(spec.command, report) });
        }
      });
      link.write(supervisorHeader(spec.env));
    }

    if (spec.timeoutMs !== undefined && spec.timeoutMs > 0) {
      timers.push(setTimeout(() => stop('timeout'), spec.timeoutMs));
    }
    spec.signal?.addEventListener('abort', onAbort, { once: true });

    if (child.stdin) {
      // A child that exits without reading its stdin makes this write fail with EPIPE; its exit code tells the story.
      child.stdin.on('error', () => {});
      child.stdin.end(spec.stdin);
    }
  });
}

/** The last `maxChars` characters of `text`, trimmed, with a marker when cut. */
export function tail(text: string, maxChars = 2000): string {
  const trimmed = text.trim();
  return trimmed.length > maxChars ? `…${trimmed.slice(-maxChars)}` : trimmed;
}

/**
 * The outcome with what the process wrote to stderr as its `log` (SPEC §7),
 * when it wrote anything; a capture cut at its limit ends by saying so.
 */
export function withLog(outcome: NodeOutcome, stderr: CapturedText): NodeOutcome {
  return stderr.text === '' ? outcome : { ...outcome, log: stderr.text };
}

/** A readable reason from an aborted signal. */
export function reasonOf(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason.message || reason.name;
  return reason === undefined ? 'aborted' : String(reason);
}

function capture(maxBytes: number): { push: (chunk: Buffer) => void; result: () => CapturedText } {
  const chunks: Buffer[] = [];
  let kept = 0;
  let bytes = 0;
  return {
    push(chunk: Buffer) {
      bytes += chunk.length;
      if (kept >= maxBytes) return;
      const part = chunk.length > maxBytes - kept ? chunk.subarray(0, maxBytes - kept) : chunk;
      chunks.push(part);
      kept += part.length;
    },
    result() {
      const truncated = bytes > kept;
      const text = Buffer.concat(chunks).toString('utf8');
      return { text: truncated ? `${text}\n… [truncated: ${bytes - kept} more bytes]` : text, bytes, truncated };
    },
  };
}

function directoryProblem(cwd: string): string | null {
  try {
    if (!statSync(cwd).isDirectory()) return `working directory '${cwd}' is not a directory`;
    return null;
  } catch {
    return `working directory '${cwd}' does not exist`;
  }
}

function spawnMessage(command: string, error: { code?: string | undefined; message: string }): string {
  switch (error.code) {
    case 'ENOENT':
      return `command '${command}' was not found (is it installed and on PATH?)`;
    case 'EACCES':
      return `command '${command}' is not executable (permission denied)`;
    default:
      return `command '${command}' could not be started: ${error.message}`;
  }
}
