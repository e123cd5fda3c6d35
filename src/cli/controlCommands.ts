/**
 * Operators' hands on a run (SPEC §10): `cancel` and `retry` (redrive).
 */
import type { Command } from 'commander';
import { cancelRun, isRedrivable, MAX_APPROVER_LENGTH, MAX_REASON_LENGTH, retryRun } from '../index.js';
import { runNotFound } from './cliErrors.js';
import type { BindAction } from './commandKit.js';
import { bounded, withExamples } from './commandKit.js';
import { oneLine } from './output.js';
import { agentNeedOfRun } from './runAgent.js';
import { resolveRunId } from './runIds.js';
import { printResult, withAnchor } from './runResult.js';
import { CONTINUE_AGENT_HELP, resolvedOnUse } from './runCommands.js';
import { withDriver } from './shutdown.js';

/**
 * Registers `cancel` and `retry`. `cancel` exits 0 once the cancellation is
 * recorded (75 E_RUN_FINISHED for a run that already ended); `retry` exits
 * like `run` (0 completed or paused, 1 failed, 2 cap exceeded; 65
 * E_RUN_NOT_RETRYABLE, 75 E_RUN_ACTIVE).
 */
export function registerControlCommands(program: Command, bind: BindAction): void {
  const cancel = program
    .command('cancel')
    .description('cancel a run that has not ended: its pending gates are cancelled and whoever drives it stops its attempts')
    .argument('<runId>', 'the run to cancel')
    .requiredOption('--reason <text>', `why (recorded in the log; at most ${MAX_REASON_LENGTH} characters)`, bounded(MAX_REASON_LENGTH, { required: true }))
    .option('--by <who>', `who cancels (recorded in the log; at most ${MAX_APPROVER_LENGTH} characters)`, bounded(MAX_APPROVER_LENGTH, { required: true }))
    .addHelpText(
      'after',
      '\nWorks from any process: a run driven elsewhere (`cantbook run`, a worker) stops within one lease\n' +
        'renewal (a third of CANTBOOK_LEASE_MS, default 10 s); its node\'s processes are killed first.\n' +
        'A run that already ended is refused with E_RUN_FINISHED (exit 75).\n',
    );
  withExamples(cancel, ['cantbook cancel 7f1c2a9e-… --reason "superseded by 1.2.1" --by alice', 'cantbook cancel 7f1c2a9e-… --reason "wrong inputs" --json']);
  cancel.action(
    bind(async (ctx, cmd) => {
      const opts = cmd.opts<{ reason: string; by?: string }>();
      const by = opts.by?.trim();
      const { result, driver, runId } = await ctx.withStore(async (store) => {
        const runId = await resolveRunId(store, cmd.processedArgs[0] as string);
        // Read before cancelling: the driver releases its lease once it stopped.
        const lease = await store.getLease(runId);
        const live = lease !== null && Date.parse(lease.expiresAt) > Date.now() ? lease.owner : undefined;
        const cancelled = await cancelRun({ store, runId, reason: opts.reason.trim(), ...(by === undefined ? {} : { by }) });
        return { result: await withAnchor(store, cancelled), driver: live, runId };
      });
      ctx.out.line(`✓ cancelled run ${runId}${by === undefined ? '' : ` as ${by}`}: ${oneLine(opts.reason, 200)}`);
      if (driver !== undefined) ctx.out.line(`  '${driver}' drives it: it stops the run's attempts at its next lease renewal`);
      printResult(ctx.out, result, ctx.command);
      return 0;
    }),
  );

  const retry = program
    .command('retry')
    .description('redrive a failed run from the node it failed at (fresh attempts there; earlier successes are kept)')
    .argument('<runId>', 'the run to retry')
    .option('--by <who>', `who retries (recorded in the log; at most ${MAX_APPROVER_LENGTH} characters)`, bounded(MAX_APPROVER_LENGTH, { required: true }))
    .option('--reason <text>', `why (recorded in the log; at most ${MAX_REASON_LENGTH} characters)`, bounded(MAX_REASON_LENGTH))
    .option('--agent <spec>', CONTINUE_AGENT_HELP)
    .addHelpText(
      'after',
      '\nA run that failed or exceeded an iteration cap can be retried; one that completed, was\n' +
        'cancelled, or failed because a human rejected its gate is E_RUN_NOT_RETRYABLE (exit 65).\n' +
        'The run\'s log keeps everything: RunRetried{fromNode, by, reason} starts the redrive.\n',
    );
  withExamples(retry, ['cantbook retry 7f1c2a9e-…', 'cantbook retry 7f1c2a9e-… --by alice --reason "flaky network" --json']);
  retry.action(
    bind(async (ctx, cmd) => {
      const opts = cmd.opts<{ by?: string; reason?: string; agent?: string }>();
      return withDriver(ctx, opts.agent, async (store, host) => {
        const runId = await resolveRunId(store, cmd.processedArgs[0] as string);
        const row = await store.getRun(runId);
        if (row === null) throw runNotFound(runId);
        const need = await agentNeedOfRun(store, runId);
        // retryRun refuses a run that cannot be retried before it dispatches anything: only a retryable one needs an agent now.
        const dispatcher = row.status === 'failed' && isRedrivable(row.error) ? ctx.dispatcher(opts.agent, need) : resolvedOnUse(() => ctx.dispatcher(opts.agent, need));
        const result = await retryRun({
          store,
          runId,
          dispatcher,
          deterministicRunner: ctx.runner(),
          ...host,
          ...(opts.by === undefined ? {} : { by: opts.by.trim() }),
          ...(opts.reason === undefined ? {} : { reason: opts.reason }),
        });
        return printResult(ctx.out, await withAnchor(store, result), ctx.command);
      });
    }),
  );
}
