/**
 * Commands that drive runs: `run`, `resume`, `recover`. Each holds the run's
 * lease while it drives (length from CANTBOOK_LEASE_MS) and stops cleanly on
 * SIGINT/SIGTERM (src/cli/shutdown.ts).
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { checkInputs, createFileResolver, E_RUN_ACTIVE, E_RUN_INTERRUPTED, executePlaybook, hasCode, listRuns, parsePlaybook, pinPlaybookTree, recoverRun, resumeRun, sweepExpiredApprovals } from '../index.js';
import type { AgentDispatcher, PlaybookResult } from '../index.js';
import type { CliContext } from './cliContext.js';
import { describeError } from './cliErrors.js';
import type { BindAction } from './commandKit.js';
import { collect, withExamples } from './commandKit.js';
import { readInputs, readPlaybookFile } from './playbookFile.js';
import { agentNeedOfRun, agentNeedOfTree, settingsFor } from './runAgent.js';
import type { AgentNeed } from './runAgent.js';
import { printResult, withAnchor } from './runResult.js';
import { resolveRunId } from './runIds.js';
import { withDriver } from './shutdown.js';

/** The --agent option's help, shared by every command that dispatches. */
export const AGENT_HELP = 'agent dispatcher: exec:<command> | module:<path> | http:<url> (default: "agent" in cantbook.config.json)';
/** `--agent` of the commands that continue a run (SPEC §7: the run remembers the one it was started with). */
export const CONTINUE_AGENT_HELP = 'agent dispatcher: exec:<command> | module:<path> | http:<url> (default: the one the run remembers, else "agent" in cantbook.config.json)';

/**
 * Registers `run`, `resume` and `recover`. `run` and `resume` exit 0 when the
 * run completed or paused at a gate, 1 when it failed, 2 when a node exceeded
 * its iteration cap; every driving command exits 130 (SIGINT) or 143
 * (SIGTERM) when stopped by a signal, the run left recoverable.
 */
export function registerRunCommands(program: Command, bind: BindAction): void {
  const run = program
    .command('run')
    .description('start a run of a playbook and drive it until it completes, fails or pauses at an approval gate')
    .argument('<file>', 'the .cantbook playbook')
    .option('--input <key=value>', 'set an input (repeatable; values are strings)', collect, [])
    .option('--inputs <file.json>', 'read inputs from a JSON object (--input wins)')
    .option('--agent <spec>', AGENT_HELP)
    .option('--epic <id>', 'epic id recorded with the run')
    .option('--session <id>', 'session id recorded with the run');
  withExamples(run, [
    'cantbook run starter/release.cantbook --input targetVersion=1.2.0',
    'cantbook run starter/ivtr.cantbook --inputs task.json --agent "exec:node my-agent.mjs"',
    'cantbook run starter/ci-gate.cantbook --input mode=full --json',
  ]);
  run.action(
    bind(async (ctx, cmd) => {
      const file = cmd.processedArgs[0] as string;
      const opts = cmd.opts<{ input: string[]; inputs?: string; agent?: string; epic?: string; session?: string }>();
      const playbook = readPlaybookFile(ctx.cwd, file);
      const initialContext = readInputs(ctx.cwd, opts.inputs, opts.input);
      // The command line is checked before the environment: a missing input is reported even when no agent is set.
      checkInputs(playbook.definition, initialContext);
      // Child playbooks resolve relative to the file that names them (SPEC §12); a missing one or a cycle is refused here.
      const resolvePlaybook = createFileResolver({ cwd: ctx.cwd });
      const playbookId = resolve(ctx.cwd, file);
      const pinned = await pinPlaybookTree({ definition: playbook.definition, id: playbookId }, resolvePlaybook);
      const tree = [playbook.definition, ...Object.values(pinned?.texts ?? {}).map((text) => parsePlaybook(text.source, { pinned: true }).definition)];
      const dispatcher = ctx.dispatcher(opts.agent, agentNeedOfTree(tree));
      // The run remembers the agent it was started with, so the commands it prints need no --agent (ADR 0010).
      const { settings, refused } = settingsFor(opts.agent);
      if (refused !== undefined) ctx.out.note(`note: the run does not remember its agent, because ${refused} (a credential is never stored): give --agent again to approve, resume, retry or recover it`);
      return withDriver(ctx, opts.agent, async (store, host) => {
        const result = await executePlaybook({
          store,
          playbook: playbook.definition,
          source: playbook.source,
          playbookHash: playbook.sourceHash,
          resolvePlaybook,
          playbookId,
          initialContext,
          dispatcher,
          deterministicRunner: ctx.runner(),
          ...host,
          ...(settings === undefined ? {} : { runSettings: settings }),
          ...(opts.epic === undefined ? {} : { epicId: opts.epic }),
          ...(opts.session === undefined ? {} : { sessionId: opts.session }),
        });
        return printResult(ctx.out, await withAnchor(store, result), ctx.command);
      });
    }),
  );

  const resume = program
    .command('resume')
    .description("continue a run whose approval gate was approved (exactly once; `approve` already does this)")
    .argument('<runId>', 'the run to resume')
    .option('--agent <spec>', CONTINUE_AGENT_HELP);
  withExamples(resume, ['cantbook resume 7f1c2a9e-…', 'cantbook resume 7f1c2a9e-… --json']);
  resume.action(
    bind(async (ctx, cmd) => {
      const opts = cmd.opts<{ agent?: string }>();
      return withDriver(ctx, opts.agent, async (store, host) => {
        const runId = await resolveRunId(store, cmd.processedArgs[0] as string);
        const need = await agentNeedOfRun(store, runId);
        // A run that cannot resume (gate pending, rejected or already resumed) is refused by resumeRun before it
        // dispatches anything, so the agent is resolved up front only when the gate is approved and not yet resumed.
        const gate = (await store.listApprovals({ runId })).at(-1);
        const resumable = gate?.status === 'approved' && !gate.resumed;
        const dispatcher = resumable ? ctx.dispatcher(opts.agent, need) : resolvedOnUse(() => ctx.dispatcher(opts.agent, need));
        const result = await resumeRun({ store, runId, dispatcher, deterministicRunner: ctx.runner(), ...host });
        return printResult(ctx.out, await withAnchor(store, result), ctx.command);
      });
    }),
  );

  const recover = program
    .command('recover')
    .description('expire overdue approval gates, then finish every run left "running" whose driver is gone (its lease expired)')
    .option('--agent <spec>', CONTINUE_AGENT_HELP)
    .option('--force', 'also take over runs whose lease is still live (their driver stops at its next renewal or write)')
    .addHelpText(
      'after',
      '\nWho drives a run is decided by its lease, not by process ids: every driver (run, resume,\n' +
        'retry, approve, a worker) holds the run\'s lease and renews it while it works. A run whose\n' +
        'lease is live is skipped (E_RUN_ACTIVE, naming the owner and the expiry), so recover is safe to\n' +
        'run from cron on any host while other cantbook processes work. A run whose driver died\n' +
        '(kill -9, a lost machine) is recovered once its lease expired (CANTBOOK_LEASE_MS, default\n' +
        '30000); --force takes a live run over at once. The attempt that was in flight is recorded as\n' +
        'interrupted and dispatched again (delivery is at-least-once; agents get runId:nodeId:attempt\n' +
        'as an idempotency key). A running `cantbook worker` does all of this on its own.\n',
    );
  withExamples(recover, ['cantbook recover', 'cantbook recover --db /var/lib/cantbook/cantbook.db --json', 'cantbook recover --force --agent "exec:node my-agent.mjs"']);
  recover.action(
    bind(async (ctx, cmd) => {
      const opts = cmd.opts<{ agent?: string; force?: boolean }>();
      return withDriver(ctx, opts.agent, async (store, host, progress) => {
        const expired = await sweepExpiredApprovals({ store });
        for (const approvalId of expired) ctx.out.line(`⌛ approval ${approvalId} expired; its run failed (approval_expired)`);
        const outcomes: (PlaybookResult | { runId: string; error: { code: string; message: string } } | { runId: string; skipped: { code: string; message: string } })[] = [];
        let exitCode = 0;
        const all = await listRuns(store, { status: 'running' });
        // A child run whose parent is recovered too is driven by its parent's recovery (SPEC §12).
        const parents = new Set(all.map((row) => row.runId));
        const running = all.filter((row) => row.parentRunId === null || !parents.has(row.parentRunId));
        if (running.length === 0) ctx.out.line('no interrupted runs');
        for (const row of running) {
          ctx.out.line(`↻ recovering run ${row.runId} · playbook ${row.playbookName}`);
          try {
            const need = await agentNeedOfRun(store, row.runId);
            const result = await withAnchor(store, await recoverRun({ store, runId: row.runId, ...hostOptions(ctx, opts.agent, need), ...host, force: opts.force === true }));
            progress.stop();
            outcomes.push(result);
            // In JSON mode the results go out once, together, below: stdout holds one document.
            if (!ctx.out.json) printResult(ctx.out, result, ctx.command);
          } catch (error) {
            progress.stop();
            // A signal stops the whole command (withDriver reports it): the other runs are left for later.
            if (host.signal.aborted && hasCode(error, E_RUN_INTERRUPTED)) throw error;
            const reported = describeError(error);
            if (hasCode(error, E_RUN_ACTIVE)) {
              // Not a failure: the run is alive and well in another process.
              outcomes.push({ runId: row.runId, skipped: { code: reported.code, message: reported.message } });
              ctx.out.line(`↷ skipped run ${row.runId}: ${reported.message}`);
              continue;
            }
            if (exitCode === 0) exitCode = reported.exitCode;
            outcomes.push({ runId: row.runId, error: { code: reported.code, message: reported.message } });
            ctx.out.note(`error[${reported.code}]: run ${row.runId}: ${reported.message}`);
          }
        }
        ctx.out.data({ expired, runs: outcomes });
        return exitCode;
      });
    }),
  );
}

/** Dispatcher and runner for continuing a stored run. */
function hostOptions(ctx: CliContext, agent: string | undefined, need: AgentNeed | null) {
  return { dispatcher: ctx.dispatcher(agent, need), deterministicRunner: ctx.runner() };
}

/** A dispatcher resolved on its first dispatch (for a resume that is expected to be refused before any). */
export function resolvedOnUse(resolve: () => AgentDispatcher): AgentDispatcher {
  let dispatcher: AgentDispatcher | undefined;
  return {
    dispatch(request) {
      dispatcher ??= resolve();
      return dispatcher.dispatch(request);
    },
  };
}
