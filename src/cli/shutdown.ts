/**
 * Host shutdown for the commands that drive runs (SPEC §11). The first SIGINT
 * or SIGTERM aborts the command's AbortSignal, which the command passes to the
 * library as `HostOptions.signal`: the driver aborts its attempts, waits until
 * their processes are dead, records nothing about them, releases the run's
 * lease and throws E_RUN_INTERRUPTED. The command then prints one line saying
 * how to finish the run and exits 130 (SIGINT) or 143 (SIGTERM). A second
 * signal exits at once (the children still die: their supervisor kills them
 * when this process goes).
 */
import { CantbookError, E_RUN_INTERRUPTED, hasCode } from '../index.js';
import type { EventStore, RunEvent } from '../index.js';
import type { CliContext } from './cliContext.js';
import { CliError, reportError } from './cliErrors.js';
import type { Output } from './output.js';
import { shellQuote } from './output.js';
import { withProgress } from './progress.js';
import type { Progress } from './progress.js';
import type { CommandLine } from './runResult.js';

/** Exit codes of the signals a driving command stops on (128 + the signal's number). */
export const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;

/** A signal that asks a command to stop. */
export type ShutdownSignal = keyof typeof SIGNAL_EXIT_CODES;

const SIGNALS = Object.keys(SIGNAL_EXIT_CODES) as ShutdownSignal[];

/** What a command sees of its shutdown. */
export interface Shutdown {
  /** Aborted on the first SIGINT or SIGTERM: pass as HostOptions.signal. */
  readonly signal: AbortSignal;
  /** The first signal received, or undefined while none came. */
  readonly received: ShutdownSignal | undefined;
}

export interface ShutdownOptions {
  /** Called on the first signal, once `signal` is aborted. */
  onSignal?: (signal: ShutdownSignal) => void;
  /**
   * Called on every later signal. Default: print one line and exit at once
   * with the signal's exit code.
   */
  onAgain?: (signal: ShutdownSignal) => void;
}

/**
 * Runs `work` with SIGINT and SIGTERM turned into an aborted signal, and
 * removes its listeners when `work` ends, however it ends. While they are
 * installed, src/cli/main.ts leaves these signals to them.
 */
export async function withShutdown<T>(out: Output, work: (shutdown: Shutdown) => Promise<T>, options: ShutdownOptions = {}): Promise<T> {
  const controller = new AbortController();
  let received: ShutdownSignal | undefined;
  const listeners = SIGNALS.map((name) => {
    const listener = (): void => {
      if (received === undefined) {
        received = name;
        controller.abort(new CantbookError(E_RUN_INTERRUPTED, `interrupted by ${name}`));
        options.onSignal?.(name);
        return;
      }
      if (options.onAgain !== undefined) {
        options.onAgain(name);
        return;
      }
      out.note(`${name} again: exiting at once (the node's processes die with this one; the run keeps its lease until it expires, then it is recoverable)`, { always: true });
      process.exit(SIGNAL_EXIT_CODES[name]);
    };
    process.on(name, listener);
    return [name, listener] as const;
  });
  try {
    return await work({
      signal: controller.signal,
      get received() {
        return received;
      },
    });
  } finally {
    for (const [name, listener] of listeners) process.off(name, listener);
  }
}

/** How to finish an interrupted run, for {@link reportInterrupted}. */
export interface FinishHint {
  /** The command line builder of the invocation (repeats --db). */
  command: CommandLine;
  /** The `--agent` the interrupted command was given, repeated in the printed command. */
  agent?: string | undefined;
}

/**
 * When `error` is the driver's E_RUN_INTERRUPTED after `shutdown` received a
 * signal: prints one line, `error[E_RUN_INTERRUPTED]: run <id> was interrupted
 * ... finish it with: cantbook recover`, and returns the signal's exit code
 * (130 or 143). For anything else returns undefined (the caller rethrows).
 * `store` is asked whether the run was recorded at all (a signal before the
 * first commit leaves nothing to recover).
 */
export async function reportInterrupted(out: Output, shutdown: Shutdown, error: unknown, store: EventStore, hint: FinishHint): Promise<number | undefined> {
  const signal = shutdown.received;
  if (signal === undefined || !hasCode(error, E_RUN_INTERRUPTED)) return undefined;
  const runId = (error as CantbookError).details?.runId;
  const exitCode = SIGNAL_EXIT_CODES[signal];
  let recorded = true;
  if (typeof runId === 'string') {
    try {
      recorded = (await store.getRun(runId)) !== null;
    } catch {
      recorded = true; // say how to recover: harmless when there is nothing to
    }
  }
  const which = typeof runId === 'string' ? `run ${runId}` : 'the run';
  const agent = hint.agent === undefined || hint.agent.trim() === '' ? [] : ['--agent', shellQuote(hint.agent)];
  const message = recorded
    ? `${which} was interrupted (${signal}): its node's processes (if any) were stopped and nothing about them was recorded; ` +
      `the run is recoverable: finish it with: ${hint.command('recover', ...agent)} (or leave it to a running cantbook worker)`
    : `interrupted (${signal}) before ${which} was recorded: nothing was written, nothing to recover`;
  reportError(out, new CliError(E_RUN_INTERRUPTED, exitCode, message));
  return exitCode;
}

/** The HostOptions every driving command passes: shutdown, lease length, progress. */
export interface DriverOptions {
  signal: AbortSignal;
  leaseMs?: number;
  onEvents: (events: readonly RunEvent[]) => void;
}

/**
 * The frame of a command that drives runs (`run`, `resume`, `recover`,
 * `retry`, `approve`): reads CANTBOOK_LEASE_MS (E_USAGE when bad, before
 * anything is opened), listens for SIGINT/SIGTERM, shows progress, opens the
 * store, and runs `work` with the host options to pass to the library. When
 * `work` throws the driver's E_RUN_INTERRUPTED after a signal, the
 * interruption is reported ({@link reportInterrupted}) and its exit code
 * returned; anything else is rethrown.
 */
export async function withDriver(
  ctx: CliContext,
  agent: string | undefined,
  work: (store: EventStore, host: DriverOptions, progress: Progress) => Promise<number>,
): Promise<number> {
  const leaseMs = ctx.leaseMs();
  return withShutdown(ctx.out, (shutdown) =>
    withProgress(ctx.out, (progress) =>
      ctx.withStore(async (store) => {
        const host: DriverOptions = { signal: shutdown.signal, onEvents: progress.onEvents, ...(leaseMs === undefined ? {} : { leaseMs }) };
        try {
          return await work(store, host, progress);
        } catch (error) {
          progress.stop();
          const code = await reportInterrupted(ctx.out, shutdown, error, store, { command: ctx.command, agent });
          if (code !== undefined) return code;
          throw error;
        }
      }),
    ),
  );
}
