/**
 * `cantbook worker`: a long-running process that claims runnable runs from the
 * store and drives them (SPEC §11), until SIGINT or SIGTERM.
 */
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import { createWorker } from '../index.js';
import type { DriveOutcome, PlaybookResult, Worker, WorkerStats } from '../index.js';
import type { CliContext } from './cliContext.js';
import { CliError, describeError } from './cliErrors.js';
import type { BindAction } from './commandKit.js';
import { withExamples } from './commandKit.js';
import { CONFIG_EXIT_CODE, CONFIG_FILE_NAME } from './configFile.js';
import { oneLine } from './output.js';
import { AGENT_HELP } from './runCommands.js';
import { withShutdown } from './shutdown.js';

/** How long in-flight attempts may go on after SIGINT/SIGTERM before they are aborted (default of --grace-ms). */
export const DEFAULT_GRACE_MS = 10_000;
/** How often the status line is redrawn on a terminal, besides every change. */
const STATUS_EVERY_MS = 1000;

/**
 * Registers `worker`. Exits 0 once stopped by SIGINT/SIGTERM (its leases
 * released); 64 for a bad option, 78 without an agent.
 */
export function registerWorker(program: Command, bind: BindAction): void {
  const command = program
    .command('worker')
    .description('claim runnable runs from the database and drive them until SIGINT/SIGTERM (started, approved, due, or whose driver died)')
    .option('--concurrency <n>', 'runs driven at once', positiveInteger('--concurrency'), 4)
    .option('--agent <spec>', AGENT_HELP)
    .option('--poll-ms <n>', 'longest idle sleep before looking for work again (it wakes earlier for a due time it knows of)', positiveInteger('--poll-ms'), 1000)
    .option('--grace-ms <n>', 'after SIGINT/SIGTERM, how long attempts in flight may go on before they are aborted', nonNegativeInteger('--grace-ms'), DEFAULT_GRACE_MS)
    .addHelpText(
      'after',
      '\nA worker drives a run while it holds the run\'s lease (CANTBOOK_LEASE_MS, default 30000), so any\n' +
        'number of workers, `cantbook run` and `cantbook recover` can share one database. It resumes\n' +
        'approved gates nobody resumed, fires due retry backoffs, expires due gates, and recovers runs\n' +
        'whose driver died once their lease expired. SIGINT or SIGTERM stops claiming, lets attempts in\n' +
        'flight finish for --grace-ms, aborts the rest (nothing false is recorded), releases every lease\n' +
        'and exits 0; a second signal aborts at once. Gates a worker opens print their token (the only copy).\n',
    );
  withExamples(command, [
    'cantbook worker',
    'cantbook worker --concurrency 8 --agent "exec:node my-agent.mjs"',
    'cantbook --db /var/lib/cantbook/cantbook.db worker --json',
    'cantbook --db postgres://cantbook@db.internal/cantbook worker --concurrency 16',
  ]);
  command.action(
    bind(async (ctx, cmd) => {
      const opts = cmd.opts<{ concurrency: number; agent?: string; pollMs: number; graceMs: number }>();
      const leaseMs = ctx.leaseMs();
      const dispatcher = workerDispatcher(ctx, opts.agent);
      let running: Worker | undefined;
      return withShutdown(
        ctx.out,
        (shutdown) =>
          ctx.withStore(async (store) => {
            const report = createReport(ctx);
            const worker = createWorker({
              store,
              dispatcher,
              deterministicRunner: ctx.runner(),
              concurrency: opts.concurrency,
              pollMs: opts.pollMs,
              ...(leaseMs === undefined ? {} : { leaseMs }),
              onEvents: () => report.refresh(),
              onDriven: (runId, outcome) => report.driven(runId, outcome),
              onError: (error, runId) => report.error(runId, error),
            });
            running = worker;
            report.started(worker, opts.concurrency);
            worker.start();
            await aborted(shutdown.signal);
            report.stopping(shutdown.received ?? 'SIGTERM', opts.graceMs);
            await worker.stop({ graceMs: opts.graceMs });
            report.stopped();
            return 0;
          }),
        // A second signal: abort what is still in flight now (still without recording anything false).
        { onAgain: () => void running?.stop({ graceMs: 0 }) },
      );
    }),
  );
}

/** The worker's dispatcher: `--agent`, else the config file's agent; a worker without one is refused (78). */
function workerDispatcher(ctx: CliContext, agent: string | undefined): ReturnType<CliContext['dispatcher']> {
  if ((agent === undefined || agent.trim() === '') && ctx.config()?.agent === undefined) {
    throw new CliError(
      'E_ADAPTER_INVALID',
      CONFIG_EXIT_CODE,
      `a worker needs an agent for the agentic nodes of the runs it claims: pass --agent <spec> (exec:<command> | module:<path> | http:<url>) ` +
        `or put {"agent": "exec:node starter/demo-agent.mjs"} in ${CONFIG_FILE_NAME} in ${ctx.cwd}`,
    );
  }
  return ctx.dispatcher(agent, null);
}

/** Resolves when `signal` aborts. */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** What the worker prints: human lines (with a live status line on a terminal), or JSON lines with --json. */
interface Report {
  started(worker: Worker, concurrency: number): void;
  /** The stats changed (a batch of events): redraw the status line soon. */
  refresh(): void;
  driven(runId: string, outcome: DriveOutcome): void;
  error(runId: string, error: unknown): void;
  stopping(signal: string, graceMs: number): void;
  stopped(): void;
}

/**
 * Off a terminal: one line per run driven (`✔ run <id> completed`, ...), and
 * errors as `error[CODE]: run <id>: message` on stderr. On a terminal the same
 * lines scroll above a status line rewritten in place (on every change, and
 * every second). With --json: one JSON object per line on stdout (`{"type":
 * "started" | "driven" | "waiting" | "error" | "stopped", ...}`), errors
 * included, since a worker never ends with one document.
 */
function createReport(ctx: CliContext): Report {
  const { out } = ctx;
  const tty = out.tty && !out.json;
  let worker: Worker | undefined;
  let shown = false;
  let scheduled: NodeJS.Immediate | undefined;
  let ticker: NodeJS.Timeout | undefined;
  const record = (value: Record<string, unknown>): void => {
    out.stdout.write(`${JSON.stringify(value)}\n`);
  };
  const clear = (): void => {
    if (shown) out.stdout.write('\r\x1b[2K');
    shown = false;
  };
  const draw = (): void => {
    if (!tty || worker === undefined) return;
    const width = Math.max(20, (out.stdout.columns ?? 80) - 1);
    clear();
    out.stdout.write(oneLine(`⟳ ${statsText(worker.stats)}`, width));
    shown = true;
  };
  // Stats change just after the callbacks that announce it (a drive is counted out once its promise settled):
  // redraw once the current turn of the event loop is over, once however many changes it had.
  const refresh = (): void => {
    if (!tty || scheduled !== undefined) return;
    scheduled = setImmediate(() => {
      scheduled = undefined;
      draw();
    });
  };
  /** A line above the status line (stdout), or a note below it (stderr). */
  const say = (text: string, stream: 'stdout' | 'stderr' = 'stdout'): void => {
    clear();
    if (stream === 'stdout') out.line(text);
    else out.note(text);
    draw();
    refresh();
  };
  return {
    started(started, concurrency) {
      worker = started;
      if (out.json) return record({ type: 'started', workerId: started.id, concurrency, db: ctx.database().label });
      out.line(`worker ${started.id} · concurrency ${concurrency} · ${ctx.database().label}`);
      out.line('  Ctrl-C (SIGINT) or SIGTERM stops it.');
      draw();
      if (tty) {
        ticker = setInterval(draw, STATUS_EVERY_MS);
        ticker.unref();
      }
    },
    refresh,
    driven(runId, outcome) {
      if (out.json) {
        record(outcome.kind === 'result' ? { type: 'driven', runId, result: outcome.result } : { type: 'waiting', runId, dueAt: outcome.dueAt });
        return;
      }
      if (outcome.kind === 'waiting') {
        say(outcome.dueAt === null ? `⏲ run ${runId} waits for its child runs (handed back; the last of each wakes it)` : `⏲ run ${runId} waits until ${outcome.dueAt} (handed back; a worker takes it then)`);
      }
      else for (const line of outcomeLines(outcome.result, ctx)) say(line);
    },
    error(runId, error) {
      const reported = describeError(error);
      if (out.json) {
        record({ type: 'error', runId: runId === '' ? null : runId, error: { code: reported.code, message: reported.message } });
        return;
      }
      say(`error[${reported.code}]: ${runId === '' ? '' : `run ${runId}: `}${reported.message}`, 'stderr');
    },
    stopping(signal, graceMs) {
      if (out.json || worker === undefined) return;
      const { active } = worker.stats;
      const inFlight = active === 0 ? 'nothing is in flight' : `the attempts of ${active} run${active === 1 ? '' : 's'} in flight get up to ${graceMs} ms to finish`;
      say(`${signal}: stopping; no new runs are claimed, ${inFlight}`);
    },
    stopped() {
      if (ticker !== undefined) clearInterval(ticker);
      if (scheduled !== undefined) clearImmediate(scheduled);
      if (worker === undefined) return;
      if (out.json) return record({ type: 'stopped', workerId: worker.id, stats: { ...worker.stats } });
      clear();
      out.line(`worker ${worker.id} stopped · ${statsText(worker.stats)}`);
    },
  };
}

function statsText(stats: WorkerStats): string {
  return `active ${stats.active} · claimed ${stats.claimed} · settled ${stats.settled} · handed back ${stats.handedBack} · stopped ${stats.stopped}`;
}

/**
 * One line for a run a worker drove to a resting point; for a gate it opened,
 * also its token and the commands to decide it (printed once, here: nobody
 * else ever sees the token).
 */
function outcomeLines(result: PlaybookResult, ctx: CliContext): string[] {
  const id = result.runId;
  switch (result.terminalStatus) {
    case 'completed':
      return [`✔ run ${id} completed`];
    case 'pending_approval': {
      const gates = result.approvals ?? [];
      const lines = [`⏸ run ${id} is waiting for approval at ${gates.length === 0 ? `'${result.pausedNodeId ?? '?'}'` : gates.map((gate) => `'${gate.nodeId}'`).join(', ')}`];
      for (const gate of gates) {
        if (gate.token === undefined) continue;
        lines.push(`  ${gate.nodeId}: approve: ${ctx.command('approve', gate.token, '--by', '"$USER"')}`);
        lines.push(`  ${gate.nodeId}: reject:  ${ctx.command('reject', gate.token, '--by', '"$USER"', '--reason', '"<why>"')}`);
      }
      return lines;
    }
    case 'failed':
    case 'cancelled':
    case 'exceeded_iteration_cap': {
      const error = result.error;
      const verb = result.terminalStatus === 'exceeded_iteration_cap' ? 'exceeded its iteration cap' : result.terminalStatus;
      const where = error?.nodeId === undefined ? '' : ` at '${error.nodeId}'`;
      return [`✗ run ${id} ${verb}${where}${error ? ` (${error.cause}): ${oneLine(error.message, 300)}` : ''}`];
    }
  }
}

/** A commander parser for a whole number >= 1 (E_USAGE otherwise). */
function positiveInteger(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value.trim());
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`${flag} must be a positive integer`);
    return n;
  };
}

/** A commander parser for a whole number >= 0 (E_USAGE otherwise). */
function nonNegativeInteger(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value.trim());
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`${flag} must be a whole number of milliseconds`);
    return n;
  };
}
