/**
 * Commands for approval gates: `approve`, `reject`, `approvals`.
 */
import type { Command } from 'commander';
import { approveGate, E_PLAYBOOK_RESUME_BLOCKED, E_RUN_INTERRUPTED, getPendingApprovals, hasCode, MAX_APPROVER_LENGTH, MAX_REASON_LENGTH, rejectGate, resumePlaybook } from '../index.js';
import type { ApprovalRow, EventStore, PlaybookResult } from '../index.js';
import type { CliContext } from './cliContext.js';
import { describeError, withHint } from './cliErrors.js';
import type { BindAction } from './commandKit.js';
import { bounded, withExamples } from './commandKit.js';
import { gateDecider, gateKind, gateStatus, markGates } from './gateMarks.js';
import type { MarkedGate } from './gateMarks.js';
import { formatTable } from './output.js';
import { agentNeedOfRun } from './runAgent.js';
import { printResult, withAnchor } from './runResult.js';
import { withDriver } from './shutdown.js';

/**
 * Registers `approve`, `reject` and `approvals`. `approve` exits like `run`
 * (0 completed or paused again, 1 failed, 2 cap exceeded); `reject` exits 0
 * once the rejection is recorded (the run fails, as asked).
 */
export function registerGateCommands(program: Command, bind: BindAction): void {
  const approve = program
    .command('approve')
    .description('approve a pending gate with its token, then resume the run')
    .argument('<token>', 'the resume token printed when the run paused')
    .requiredOption('--by <who>', `who approves (recorded in the log; at most ${MAX_APPROVER_LENGTH} characters)`, bounded(MAX_APPROVER_LENGTH, { required: true }))
    .option('--reason <text>', `why (recorded in the log; at most ${MAX_REASON_LENGTH} characters)`, bounded(MAX_REASON_LENGTH))
    .option('--agent <spec>', 'agent dispatcher for the resumed nodes (default: the one the run remembers, else "agent" in cantbook.config.json)');
  withExamples(approve, ['cantbook approve cbk1.4b1d….Zq9… --by alice', 'cantbook approve cbk1.4b1d….Zq9… --by alice --reason "changelog reviewed" --json']);
  approve.action(
    bind(async (ctx, cmd) => {
      const token = cmd.processedArgs[0] as string;
      const opts = cmd.opts<{ by: string; reason?: string; agent?: string }>();
      return withDriver(ctx, opts.agent, async (store, host) => {
        // 1. Record the decision. The token, the gate's state and its expiry are checked here, before anything
        //    about agents, so an unknown, forged or already-decided token is reported as such.
        const decision = await approveGate({ store, token, approver: opts.by, ...(opts.reason === undefined ? {} : { reason: opts.reason }) });
        ctx.out.line(`✓ approved '${decision.nodeId}' of run ${decision.runId} as ${opts.by.trim()}`);
        // 2. Resume. Only now are nodes dispatched, so only now must an agent be configured; without one the
        //    approval stands and `resume` continues the run (RunResumed is not written before the agent resolves).
        let result: PlaybookResult;
        try {
          const dispatcher = ctx.dispatcher(opts.agent, await agentNeedOfRun(store, decision.runId));
          result = await resumePlaybook({ store, approvalToken: token, dispatcher, deterministicRunner: ctx.runner(), ...host });
        } catch (error) {
          if (isDrivenElsewhere(error)) {
            // Another driver (a worker, a run still going in another branch) holds the run: it resumes the gate itself.
            const owner = await drivenBy(store, decision.runId, error);
            ctx.out.data({ runId: decision.runId, approvalId: decision.approvalId, nodeId: decision.nodeId, status: 'approved', drivenBy: owner });
            ctx.out.line(`▶ run ${decision.runId} is being driven by ${owner === null ? 'another driver' : `'${owner}'`}; that driver resumes the gate`);
            return 0;
          }
          if (hasCode(error, E_RUN_INTERRUPTED)) throw error;
          throw withHint(error, afterApproval(ctx, decision.runId, error));
        }
        return printResult(ctx.out, await withAnchor(store, result), ctx.command);
      });
    }),
  );

  const reject = program
    .command('reject')
    .description('reject a pending gate with its token; the run fails at once')
    .argument('<token>', 'the resume token printed when the run paused')
    .requiredOption('--by <who>', `who rejects (recorded in the log; at most ${MAX_APPROVER_LENGTH} characters)`, bounded(MAX_APPROVER_LENGTH, { required: true }))
    .requiredOption('--reason <text>', `why (recorded in the log; at most ${MAX_REASON_LENGTH} characters)`, bounded(MAX_REASON_LENGTH, { required: true }));
  withExamples(reject, ['cantbook reject cbk1.4b1d….Zq9… --by alice --reason "changelog is incomplete"']);
  reject.action(
    bind(async (ctx, cmd) => {
      const token = cmd.processedArgs[0] as string;
      const opts = cmd.opts<{ by: string; reason: string }>();
      const { decision, parentRunId } = await ctx.withStore(async (store) => {
        const made = await rejectGate({ store, token, approver: opts.by, reason: opts.reason });
        const parent = made.result === undefined ? null : ((await store.getRun(made.runId))?.parentRunId ?? null);
        return { decision: made.result === undefined ? made : { ...made, result: await withAnchor(store, made.result) }, parentRunId: parent };
      });
      ctx.out.line(`✗ rejected '${decision.nodeId}' of run ${decision.runId} as ${opts.by.trim()}`);
      if (decision.result) printResult(ctx.out, decision.result, ctx.command);
      else ctx.out.data(decision);
      // A child run that ended this way wakes its parent (SPEC §12); without a worker, recover drives it on.
      if (parentRunId !== null) ctx.out.line(`  its parent run ${parentRunId} goes on with a worker, or: ${ctx.command('recover')}`);
      return 0;
    }),
  );

  const approvals = program
    .command('approvals')
    .description('list approval gates (tokens are never stored, so never shown)')
    .option('--pending', 'only gates waiting for a decision');
  withExamples(approvals, ['cantbook approvals --pending', 'cantbook approvals --json']);
  approvals.action(
    bind(async (ctx, cmd) => {
      const { pending = false } = cmd.opts<{ pending?: boolean }>();
      await ctx.withReadStore(async (store) => {
        if (pending) {
          const rows = await markGates(store, await getPendingApprovals(store));
          ctx.out.data(rows);
          printApprovals(ctx, rows.map((row) => ({ ...row, status: 'pending', approver: null })), 'no pending approvals');
        } else {
          const rows = await markGates(store, (await store.listApprovals()).map(publicApproval));
          ctx.out.data(rows);
          printApprovals(ctx, rows, 'no approvals');
        }
      });
      return 0;
    }),
  );
}

/** An approval row as the CLI shows it: without the token hash. */
export function publicApproval(row: ApprovalRow): Omit<ApprovalRow, 'tokenHash'> {
  const { tokenHash: _tokenHash, ...rest } = row;
  return rest;
}

function printApprovals(
  ctx: CliContext,
  rows: readonly MarkedGate<{ approvalId: string; runId: string; nodeId: string; status: string; requestedAt: string; expiresAt: string | null; approver: string | null }>[],
  empty: string,
): void {
  if (rows.length === 0) {
    ctx.out.line(empty);
    return;
  }
  ctx.out.line(
    formatTable(
      ['APPROVAL', 'RUN', 'NODE', 'KIND', 'STATUS', 'REQUESTED', 'EXPIRES', 'BY'],
      rows.map((row) => [row.approvalId, row.runId, row.nodeId, gateKind(row), gateStatus(row), row.requestedAt, row.expiresAt ?? '-', gateDecider(row)]),
    ),
  );
}

/** What to do when the run could not be resumed after its approval was recorded. */
function afterApproval(ctx: CliContext, runId: string, error: unknown): string {
  const { code } = describeError(error);
  // Someone else resumed it between our decision and our resume: nothing is left to do here.
  if (code === 'E_PLAYBOOK_RESUME_BLOCKED') return `the approval is recorded; see the run with: ${ctx.command('show', runId)}`;
  // A placeholder that pastes safely: the shell puts the spec in, once the operator has set it.
  if (code === 'E_ADAPTER_INVALID') return `the approval is recorded; set CANTBOOK_AGENT to the agent's spec, then continue the run with: ${ctx.command('resume', runId, '--agent', '"$CANTBOOK_AGENT"')}`;
  return `the approval is recorded; continue the run with: ${ctx.command('resume', runId)}`;
}

/** The resume after a decision was refused because another driver holds the run's lease (it resumes the gate). */
function isDrivenElsewhere(error: unknown): boolean {
  return hasCode(error, E_PLAYBOOK_RESUME_BLOCKED) && (error as { details?: { reason?: unknown } }).details?.reason === 'driven';
}

/** Who drives the run: the refusal's cause names the lease's owner; else the store's lease. */
async function drivenBy(store: EventStore, runId: string, error: unknown): Promise<string | null> {
  const owner = (error as { cause?: { details?: { owner?: unknown } } }).cause?.details?.owner;
  if (typeof owner === 'string') return owner;
  try {
    return (await store.getLease(runId))?.owner ?? null;
  } catch {
    return null;
  }
}
