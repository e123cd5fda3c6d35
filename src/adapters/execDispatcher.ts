import { resolve } from 'node:path';
import { CantbookError, E_ADAPTER_INVALID } from '../errors.js';
import { parseAgentAnswerText, toDispatchPayload } from './agentProtocol.js';
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
import { splitCommandLine } from './commandLine.js';
import { cantbookRunEnv } from './runEnv.js';
import type { AgentDispatcher, DispatchRequest, NodeOutcome } from './types.js';

/** An agent command given as a program and its arguments (no splitting, no shell). */
export interface ExecCommand {
  command: string;
  args?: readonly string[];
}

/** Options of {@link createExecDispatcher}. */
export interface ExecDispatcherOptions extends ChildProcessOptions {
  /** Milliseconds one dispatch may take (default 10 minutes; 0 = no timeout). */
  timeoutMs?: number;
  /** Extra environment for the agent, applied after redaction. */
  env?: Record<string, string>;
}

/**
 * An {@link AgentDispatcher} that runs a command once per dispatch: the
 * request (every field but `signal`) is written as JSON to its stdin, and its
 * stdout must be exactly one JSON answer
 * `{"status": "success", "output"?: {...}}` or `{"status": "failure", "error"?: "..."}`
 * (log to stderr, not stdout).
 *
 * `command` is either `{command, args}` or a command line split by
 * {@link splitCommandLine} (quotes honoured, no shell). It runs in
 * `options.cwd` (default `process.cwd()`), with the same environment rules,
 * output caps and process-group kill as {@link createSubprocessRunner}, plus
 * `CANTBOOK_RUN_ID`, `CANTBOOK_NODE_ID`, `CANTBOOK_ATTEMPT` and
 * `CANTBOOK_IDEMPOTENCY_KEY`.
 *
 * `dispatch` never throws: a non-zero exit (using the answer's `error` when
 * stdout holds a valid failure answer, else the tail of stderr), a signal, a
 * timeout, an abort, a command that cannot start, or an answer that is not
 * valid protocol JSON all become `{status: 'failure', error}`.
 *
 * Creating it throws CantbookError `E_ADAPTER_INVALID` for a command line
 * that cannot be split or an empty command.
 *
 * @example
 * const dispatcher = createExecDispatcher('node starter/demo-agent.mjs', { cwd: projectRoot });
 */
export function createExecDispatcher(command: string | ExecCommand, options: ExecDispatcherOptions = {}): AgentDispatcher {
  const [program, ...args] = typeof command === 'string' ? splitCommandLine(command) : [command.command, ...(command.args ?? [])];
  if (program === undefined || program.trim() === '') {
    throw new CantbookError(E_ADAPTER_INVALID, 'the exec agent has no command', {});
  }
  const name = `agent command '${program}'`;
  return {
    async dispatch(request: DispatchRequest): Promise<NodeOutcome> {
      const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      const maxOutputBytes = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
      let stdin: string;
      try {
        stdin = `${JSON.stringify(toDispatchPayload(request))}\n`;
      } catch (error) {
        return { status: 'failure', error: `the request for node '${request.nodeId}' cannot be written as JSON: ${(error as Error).message}` };
      }
      const result = await runChild({
        command: program,
        args,
        cwd: resolve(options.cwd ?? process.cwd()),
        env: childEnv(options.redactEnv, options.env, cantbookRunEnv(request)),
        stdin,
        timeoutMs,
        maxOutputBytes,
        killGraceMs: options.killGraceMs ?? DEFAULT_KILL_GRACE_MS,
        ...(request.signal === undefined ? {} : { signal: request.signal }),
      });
      if (result.kind === 'spawn_error') return { status: 'failure', error: result.message.replace(/^command /, 'agent command ') };
      // The agent's stderr is the attempt's log (SPEC §7), whatever it answered.
      return withLog(answerOf(result, name, { timeoutMs, maxOutputBytes }, request.signal), result.stderr);
    },
  };
}

/** What an agent process that ran answered, as an outcome (see createExecDispatcher). */
function answerOf(result: Extract<ChildResult, { kind: 'exited' }>, name: string, limits: { timeoutMs: number; maxOutputBytes: number }, signal: AbortSignal | undefined): NodeOutcome {
  const { timeoutMs, maxOutputBytes } = limits;
  const stderr = result.stderr.text.trim() === '' ? '' : `: ${tail(result.stderr.text)}`;
  if (result.stoppedBy === 'timeout') return { status: 'failure', error: `${name} timed out after ${timeoutMs} ms${stderr}` };
  if (result.stoppedBy === 'abort') return { status: 'failure', error: `${name} was cancelled${signal ? `: ${reasonOf(signal)}` : ''}` };
  if (result.exitCode === null) return { status: 'failure', error: `${name} was killed by signal ${result.exitSignal ?? 'unknown'}${stderr}` };
  const answer = result.stdout.truncated
    ? { ok: false as const, problem: `it wrote ${result.stdout.bytes} bytes to stdout, more than the ${maxOutputBytes}-byte limit` }
    : parseAgentAnswerText(result.stdout.text);
  if (result.exitCode !== 0) {
    const reported = answer.ok && answer.outcome.status === 'failure' && answer.outcome.error !== undefined ? `: ${answer.outcome.error}` : stderr || ' (no stderr)';
    return { status: 'failure', error: `${name} exited with code ${result.exitCode}${reported}` };
  }
  if (!answer.ok) return { status: 'failure', error: `${name} gave an invalid answer: ${answer.problem}${stderr === '' ? '' : ` (stderr${stderr})`}` };
  return answer.outcome;
}
