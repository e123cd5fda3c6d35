/**
 * `cantbook inspect <runId> [--ws <url>]`: a stored run replayed as the XState
 * inspection protocol, from its log alone (no node runs, nothing is written).
 */
import type { Command } from 'commander';
import { replayInspection, replayRun } from '../index.js';
import type { BindAction } from './commandKit.js';
import { resolveRunId } from './runIds.js';
import { withExamples } from './commandKit.js';
import { parseInspectorUrl, sendInspectionRecords } from './inspectionSocket.js';

/**
 * Registers `inspect`. Without `--ws` it prints one inspection record per line
 * (JSON lines; with `--json`, one document `{runId, sessionId, records}`).
 * With `--ws <url>` it sends the records to that WebSocket inspector and prints
 * how many (`{runId, sessionId, url, sent}` with `--json`).
 * Exit 0, 64 bad URL, 67 unknown run, 69 inspector unreachable, 76 corrupt log.
 */
export function registerInspect(program: Command, bind: BindAction): void {
  const command = program
    .command('inspect')
    .description("replay a run's log as XState inspection events (@xstate.actor, @xstate.event, @xstate.snapshot)")
    .argument('<runId>', 'the run')
    .option('--ws <url>', 'send the records to a WebSocket inspector (e.g. the @statelyai/inspect server) instead of printing them')
    .option('--session-id <id>', 'the actor session id in the records (default: the run id)');
  withExamples(command, [
    'cantbook inspect 7f1c2a9e-… > run.ndjson',
    'cantbook inspect 7f1c2a9e-… --ws ws://127.0.0.1:8080',
    'cantbook inspect 7f1c2a9e-… --json',
  ]);
  command.action(
    bind(async (ctx, cmd) => {
      const opts = cmd.opts<{ ws?: string; sessionId?: string }>();
      const url = opts.ws === undefined ? undefined : parseInspectorUrl(opts.ws);
      const { records, runId } = await ctx.withReadStore(async (store) => {
        const runId = await resolveRunId(store, cmd.processedArgs[0] as string);
        const replay = await replayRun(store, runId);
        return { records: replayInspection(replay.machine, replay.events, { sessionId: opts.sessionId ?? runId }), runId };
      });
      const sessionId = opts.sessionId ?? runId;
      if (url === undefined) {
        ctx.out.data({ runId, sessionId, records });
        if (!ctx.out.json) ctx.out.stdout.write(records.map((record) => `${JSON.stringify(record)}\n`).join(''));
        return 0;
      }
      const sent = await sendInspectionRecords(url, records);
      ctx.out.data({ runId, sessionId, url, sent });
      ctx.out.line(`✓ sent ${sent} inspection records of run ${runId} to ${url} (session ${sessionId})`);
      return 0;
    }),
  );
}
