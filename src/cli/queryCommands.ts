/**
 * Read-only commands over the projections and the log: `runs`, `show`, `log`.
 */
import { Option } from 'commander';
import type { Command } from 'commander';
import { getRun, listRuns, readRunEvents } from '../index.js';
import type { RunEvent, RunStatus } from '../index.js';
import { runNotFound } from './cliErrors.js';
import type { BindAction } from './commandKit.js';
import { withExamples } from './commandKit.js';
import { publicApproval } from './gateCommands.js';
import { markGates } from './gateMarks.js';
import type { MarkedGate } from './gateMarks.js';
import { formatFields, formatTable, oneLine } from './output.js';

const RUN_STATUSES: readonly RunStatus[] = ['running', 'paused', 'completed', 'failed', 'cancelled'];

/** Registers `runs`, `show` and `log`. All exit 0, or 67 for an unknown run. */
export function registerQueryCommands(program: Command, bind: BindAction): void {
  const runs = program
    .command('runs')
    .description('list runs, oldest first')
    .addOption(new Option('--status <status>', 'only runs with this status').choices(RUN_STATUSES));
  withExamples(runs, ['cantbook runs', 'cantbook runs --status paused', 'cantbook runs --status failed --json']);
  runs.action(
    bind(async (ctx, cmd) => {
      const { status } = cmd.opts<{ status?: RunStatus }>();
      const rows = await ctx.withReadStore((store) => listRuns(store, status === undefined ? {} : { status }));
      ctx.out.data(rows);
      if (rows.length === 0) ctx.out.line(status === undefined ? 'no runs' : `no ${status} runs`);
      else {
        ctx.out.line(
          formatTable(
            ['RUN', 'PLAYBOOK', 'STATUS', 'NODE', 'STARTED', 'UPDATED'],
            rows.map((row) => [row.runId, row.playbookName, row.status, row.currentNode ?? '-', row.startedAt, row.updatedAt]),
          ),
        );
      }
      return 0;
    }),
  );

  const show = program.command('show').description("a run's summary: status, current node, attempts, error, approvals").argument('<runId>', 'the run');
  withExamples(show, ['cantbook show 7f1c2a9e-…', 'cantbook show 7f1c2a9e-… --json']);
  show.action(
    bind(async (ctx, cmd) => {
      const runId = cmd.processedArgs[0] as string;
      const { row, approvals } = await ctx.withReadStore(async (store) => {
        const found = await getRun(store, runId);
        if (found === null) throw runNotFound(runId);
        // Escalations and auto-passes are marked in the log, not in the approvals row.
        return { row: found, approvals: await markGates(store, (await store.listApprovals({ runId })).map(publicApproval)) };
      });
      ctx.out.data({ ...row, approvals });
      const attempts = Object.entries(row.iterationCounts).map(([node, count]) => `${node} ${count}`).join(' · ');
      const error = row.error;
      const active = row.activeNodes.map((node) => `${node.nodeId} (${node.phase})`).join(' · ');
      const fields: [string, string][] = [
        ['run', row.runId],
        ['playbook', `${row.playbookName} (sha256 ${row.playbookHash.slice(0, 12)})`],
        ['status', row.status],
        ['node', row.currentNode ?? '-'],
        ['active', active === '' ? '-' : active],
        ['attempts', attempts === '' ? '-' : attempts],
        ['error', error === null ? '-' : `${error.cause}${error.nodeId === undefined ? '' : ` at '${error.nodeId}'`}: ${oneLine(error.message, 400)}`],
        ['started', row.startedAt],
        ['updated', row.updatedAt],
        ['completed', row.completedAt ?? '-'],
        ['events', String(row.version)],
      ];
      if (row.epicId !== null) fields.push(['epic', row.epicId]);
      if (row.sessionId !== null) fields.push(['session', row.sessionId]);
      for (const gate of approvals) {
        fields.push([gate.escalation === undefined ? 'approval' : 'escalation', `${gate.nodeId} · ${gateSummary(gate)} · id ${gate.approvalId}${gate.expiresAt === null ? '' : ` · expires ${gate.expiresAt}`}`]);
        fields.push(['', oneLine(gate.prompt, 300)]);
        if (gate.status === 'pending') fields.push(['', `decide with: ${ctx.command('approve', '<token>', '--by', '"$USER"')} (the token was printed by run)`]);
        if (gate.status === 'approved' && !gate.resumed) fields.push(['', `continue with: ${ctx.command('resume', row.runId)}`]);
      }
      ctx.out.line(formatFields(fields));
      return 0;
    }),
  );

  const log = program.command('log').description("a run's events in order (the source of truth)").argument('<runId>', 'the run');
  withExamples(log, ['cantbook log 7f1c2a9e-…', 'cantbook log 7f1c2a9e-… --json | jq ".[].type"']);
  log.action(
    bind(async (ctx, cmd) => {
      const runId = cmd.processedArgs[0] as string;
      const events = await ctx.withReadStore((store) => readRunEvents(store, runId));
      if (events.length === 0) throw runNotFound(runId);
      ctx.out.data(events);
      ctx.out.line(formatTable(['SEQ', 'AT', 'TYPE', 'DETAILS'], events.map((event) => [String(event.seq), event.at, event.type, summarize(event)])));
      return 0;
    }),
  );
}

/**
 * What `show` says of a gate after its node id: for an escalation what opened
 * it, then its status and who decided (`auto-passed by policy (rule …)` when
 * its policy passed it). Pure.
 */
function gateSummary(gate: MarkedGate<{ status: string; approver: string | null; reason: string | null }>): string {
  const opened = gate.escalation === undefined ? '' : `${gate.escalation.on}${gate.escalation.checkpoint === undefined ? '' : ` at ${gate.escalation.checkpoint}`} · `;
  if (gate.auto === true) return `${opened}auto-passed by policy (rule ${gate.rule ?? 'none'})`;
  const decided = gate.approver === null ? '' : ` by ${gate.approver}${gate.reason ? ` (${oneLine(gate.reason, 120)})` : ''}`;
  return `${opened}${gate.status}${decided}`;
}

/** One line about an event's data, for `log`. Pure. */
export function summarize(event: RunEvent): string {
  switch (event.type) {
    case 'RunStarted':
      return oneLine(`${event.data.playbookName} sha256 ${event.data.sourceHash.slice(0, 12)} context ${JSON.stringify(event.data.context)}`, 120);
    case 'NodeStarted':
      return `${event.data.nodeId} attempt ${event.data.attempt}`;
    case 'NodeSucceeded':
      return oneLine(`${event.data.nodeId} attempt ${event.data.attempt} output ${JSON.stringify(event.data.output)}`, 120);
    case 'NodeFailed':
      return oneLine(`${event.data.nodeId} attempt ${event.data.attempt}${failureFlags(event.data)}: ${event.data.error}`, 120);
    case 'NodeEscalated':
      return oneLine(`${event.data.from} -> ${event.data.to}: ${event.data.error}`, 120);
    case 'RunPaused':
      return `${event.data.nodeId} ${event.data.escalation === undefined ? 'approval' : `escalation (${event.data.escalation.on})`} ${event.data.approvalId}${event.data.expiresAt === undefined ? '' : ` expires ${event.data.expiresAt}`}`;
    case 'ApprovalGranted':
      // The reason of an auto-pass is the runtime's wording of the same rule: the rule says it.
      if (event.data.auto === true) return oneLine(`${event.data.nodeId} auto-passed by policy (rule ${event.data.rule ?? 'none'})`, 120);
      return oneLine(`${event.data.nodeId} by ${event.data.approver}${event.data.reason === '' ? '' : `: ${event.data.reason}`}`, 120);
    case 'ApprovalRejected':
      return oneLine(`${event.data.nodeId} by ${event.data.approver}${event.data.reason === '' ? '' : `: ${event.data.reason}`}`, 120);
    case 'RunResumed':
      return `${event.data.nodeId} approval ${event.data.approvalId}`;
    case 'ApprovalCancelled':
      return oneLine(`${event.data.nodeId} approval ${event.data.approvalId}: ${event.data.reason}`, 120);
    case 'BranchFailed':
      return oneLine(`${event.data.branchId} of ${event.data.groupId} (${event.data.cause} at ${event.data.nodeId}): ${event.data.error}`, 120);
    case 'RunCompleted':
      return '';
    case 'RunFailed':
      return oneLine(`${event.data.cause}${event.data.nodeId === undefined ? '' : ` at ${event.data.nodeId}`}: ${event.data.error}`, 120);
    case 'RunCancelled':
      return oneLine(`${event.data.reason}${event.data.by === undefined ? '' : ` by ${event.data.by}`}`, 120);
    case 'NodeRetryScheduled':
      return `${event.data.nodeId} attempt ${event.data.attempt} due ${event.data.dueAt}`;
    case 'ApprovalExpired':
      return `${event.data.nodeId} approval ${event.data.approvalId}`;
    case 'RunRetried':
      return oneLine(`from ${event.data.fromNode}${event.data.by === undefined ? '' : ` by ${event.data.by}`}${event.data.reason ? `: ${event.data.reason}` : ''}`, 120);
    case 'ContractViolated':
      return oneLine(`${event.data.nodeId} attempt ${event.data.attempt} ${event.data.kind} ${event.data.key}: ${event.data.message}`, 120);
  }
}

/** How an attempt failed, beyond its message: ` (interrupted)`, ` (aborted)`, ` (timed out)`, ` (not retryable)`. Pure. */
export function failureFlags(data: { interrupted?: boolean; aborted?: boolean; timedOut?: boolean; retryable?: boolean }): string {
  return `${data.interrupted === true ? ' (interrupted)' : ''}${data.aborted === true ? ' (aborted)' : ''}${data.timedOut === true ? ' (timed out)' : ''}${data.retryable === false ? ' (not retryable)' : ''}`;
}
