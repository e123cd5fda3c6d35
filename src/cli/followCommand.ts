/**
 * `cantbook log <runId> --follow` and `cantbook watch <runId>` (SPEC §7):
 * a run's events as they are appended, until the run ends or waits for a
 * human. Read-only: it polls the log (the source of truth), never a driver.
 * With `--json`, one event per line (NDJSON), since a stream has no single
 * document to print at its end.
 */
import type { Command } from 'commander';
import type { RunEvent, RunRow } from '../index.js';
import type { CliContext } from './cliContext.js';
import { mapNodeIdsOfLog } from './childRuns.js';
import { runNotFound } from './cliErrors.js';
import type { BindAction } from './commandKit.js';
import { withExamples } from './commandKit.js';
import { resolveRunId } from './runIds.js';
import { summarize } from './queryCommands.js';

/** How often the log is read again while the run moves. */
const FOLLOW_POLL_MS = 200;

/** Registers `watch <runId>`: `log --follow` that ends with the run's status. */
export function registerWatch(program: Command, bind: BindAction): void {
  const watch = program
    .command('watch')
    .description("follow a run's events live until it ends or waits for a human (same as log --follow)")
    .argument('<runId>', 'the run');
  withExamples(watch, ['cantbook watch 7f1c2a9e-…', 'cantbook watch 7f1c2a9e-… --json | jq -c .type']);
  watch.action(bind(async (ctx, cmd) => followLog(ctx, cmd.processedArgs[0] as string)));
}

/**
 * Prints the run's events from the first, then every event appended after,
 * until the run has ended (completed, failed, cancelled) or is paused, and
 * nothing more was appended. Exit code 0; E_RUN_NOT_FOUND for a run that
 * does not exist.
 */
export async function followLog(ctx: CliContext, given: string): Promise<number> {
  return ctx.withReadStore(async (store) => {
    const runId = await resolveRunId(store, given);
    let seq = 0;
    let maps: ReadonlySet<string> | null = null;
    for (;;) {
      const events = await store.readRun(runId, seq);
      if (seq === 0 && events.length === 0) throw runNotFound(runId);
      if (seq === 0) maps = mapNodeIdsOfLog(events);
      for (const event of events) printEvent(ctx, event, maps);
      seq = events.at(-1)?.seq ?? seq;
      const row = await store.getRun(runId);
      if (row !== null && settles(row) && row.version === seq) {
        ctx.out.line(statusLine(row));
        return 0;
      }
      await new Promise((resolve) => setTimeout(resolve, FOLLOW_POLL_MS));
    }
  });
}

/** A run stops moving on its own once it ended or waits only for humans. */
function settles(row: RunRow): boolean {
  return row.status !== 'running';
}

function statusLine(row: RunRow): string {
  if (row.status === 'paused') return `⏸ run ${row.runId} is waiting for a human at '${row.currentNode ?? '?'}'`;
  const mark = row.status === 'completed' ? '✔' : '✗';
  return `${mark} run ${row.runId} ${row.status}${row.errorContext === null ? '' : `: ${row.errorContext}`}`;
}

function printEvent(ctx: CliContext, event: RunEvent, maps: ReadonlySet<string> | null): void {
  if (ctx.out.json) {
    ctx.out.stdout.write(`${JSON.stringify(event)}\n`);
    return;
  }
  ctx.out.line(`${String(event.seq).padStart(4)}  ${event.at}  ${event.type.padEnd(18)}  ${summarize(event, maps)}`);
}
