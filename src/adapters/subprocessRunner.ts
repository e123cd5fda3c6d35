import { resolve } from 'node:path';
import {
  childEnv,
  DEFAULT_KILL_GRACE_MS,
  DEFAULT_MAX_OUTPUT_BYTES,
  DEFAULT_TIMEOUT_MS,
  reasonOf,
  runChild,
  tail,
  withLog,
} from './childProcess.js';
import type { ChildProcessOptions, ChildResult } from './childProcess.js';
import { cantbookRunEnv } from './runEnv.js';
import type { DeterministicRunner, NodeOutcome, RunCommandRequest } from './types.js';

/** Options of {@link createSubprocessRunner}. */
export interface SubprocessRunnerOptions extends ChildProcessOptions {
  /**
   * Timeout for nodes without `timeout_ms`, in milliseconds (default 10 minutes).
   * 0 means no timeout, here and in a node's `timeout_ms`.
   */
  defaultTimeoutMs?: number;
}

/**
 * A {@link DeterministicRunner} that runs each deterministic node as a real
 * child process.
 *
 * - No shell: `spawn(command, args)`, so spaces, quotes, `;`, `$()` and
 *   newlines in arguments reach the child literally. stdin is /dev/null.
 * - Working directory: the node's `cwd` resolved against `options.cwd`
 *   (default `process.cwd()`).
 * - Environment: the host's environment without any `CANTBOOK_*` name and the
 *   names in `options.redactEnv`, then the node's `env`, then
 *   `CANTBOOK_RUN_ID`, `CANTBOOK_NODE_ID`, `CANTBOOK_ATTEMPT` and
 *   `CANTBOOK_IDEMPOTENCY_KEY`.
 * - Timeout: the node's `timeout_ms`, else `options.defaultTimeoutMs`
 *   (10 minutes). On timeout or when `request.signal` aborts, the child's
 *   whole process group gets SIGTERM, then SIGKILL after `killGraceMs`;
 *   grandchildren die too, and nothing the command started outlives it.
 * - stdout and stderr are captured up to `maxOutputBytes` each (1 MiB); the
 *   head is kept and a `… [truncated: N more bytes]` line marks the cut.
 *
 * Outcome: exit code 0 is a success. If stdout (trimmed) is a JSON object,
 * that object is the output (shallow-merged into the run context); otherwise
 * the output is `{ [nodeId]: { exitCode: 0, stdout, stderr? } }` with
 * trailing whitespace removed and `stderr` only when non-empty. Anything
 * else (non-zero exit, a signal, timeout, abort, a command that cannot be
 * started) is `{status: 'failure', error}` with a message naming the command
 * and the tail of stderr. `run` never throws.
 *
 * Delivery is at-least-once: after a crash the same node may run again, so a
 * command with side effects should use `CANTBOOK_IDEMPOTENCY_KEY`.
 *
 * @example
 * const result = await executePlaybook({ store, playbook, initialContext: {},
 *   dispatcher, deterministicRunner: createSubprocessRunner({ cwd: repoRoot }) });
 */
export function createSubprocessRunner(options: SubprocessRunnerOptions = {}): DeterministicRunner {
  return {
    async run(request: RunCommandRequest): Promise<NodeOutcome> {
      const timeoutMs = request.timeout_ms ?? options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
      const base = options.cwd ?? process.cwd();
      const result = await runChild({
        command: request.command,
        args: request.args,
        cwd: request.cwd === undefined ? resolve(base) : resolve(base, request.cwd),
        env: childEnv(options.redactEnv, request.env, cantbookRunEnv(request)),
        timeoutMs,
        maxOutputBytes: options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
        killGraceMs: options.killGraceMs ?? DEFAULT_KILL_GRACE_MS,
        ...(request.signal === undefined ? {} : { signal: request.signal }),
      });
      const name = `command '${request.command}'`;
      if (result.kind === 'spawn_error') return { status: 'failure', error: result.message };
      // What it wrote to stderr is also the attempt's log (SPEC §7).
      return withLog(outcomeOfCommand(result, request, name, timeoutMs), result.stderr);
    },
  };
}

/** How a command that ran ended, as an outcome (see createSubprocessRunner). */
function outcomeOfCommand(result: Extract<ChildResult, { kind: 'exited' }>, request: RunCommandRequest, name: string, timeoutMs: number): NodeOutcome {
  const stderr = result.stderr.text;
  const detail = stderr.trim() === '' ? '' : `: ${tail(stderr)}`;
  if (result.stoppedBy === 'timeout') return { status: 'failure', error: `${name} timed out after ${timeoutMs} ms${detail}` };
  if (result.stoppedBy === 'abort') {
    return { status: 'failure', error: `${name} was cancelled${request.signal ? `: ${reasonOf(request.signal)}` : ''}` };
  }
  if (result.exitCode === null) return { status: 'failure', error: `${name} was killed by signal ${result.exitSignal ?? 'unknown'}${detail}` };
  // The exit code the node ensures counts as success; the contract check (SPEC §13) compares it.
  if (result.exitCode !== 0 && result.exitCode !== request.expectedExitCode) return { status: 'failure', error: `${name} exited with code ${result.exitCode}${detail || ' (no stderr)'}` };
  return { status: 'success', output: successOutput(request.nodeId, result.stdout.text, stderr, result.stdout.truncated, result.exitCode), exitCode: result.exitCode };
}

/** The output rule of a successful command (see createSubprocessRunner). */
function successOutput(nodeId: string, stdout: string, stderr: string, truncated: boolean, exitCode: number): Record<string, unknown> {
  const trimmed = stdout.trim();
  if (!truncated && trimmed.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(trimmed);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
    } catch {
      // Not JSON after all: fall through to the text shape.
    }
  }
  const text: Record<string, unknown> = { exitCode, stdout: stdout.trimEnd() };
  if (stderr.trim() !== '') text.stderr = stderr.trimEnd();
  return { [nodeId]: text };
}
