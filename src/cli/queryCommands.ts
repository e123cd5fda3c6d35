/**
 * Read-only commands over the projections and the log: `runs`, `show`, `log`.
 */
import { Option } from 'commander';
import type { Command } from 'commander';
import { getRun, listRuns, readRunEvents } from '../index.js';
import { parseDuration } from '../index.js';
import type { AttemptLog, ListRunsFilter, RunEvent, RunStatus } from '../index.js';
import { describePlace, mapNodeIdsOfLog, orderRunTree, readRunFamily } from './childRuns.js';
import type { ChildRunView, ParentRunView } from './childRuns.js';
import { runNotFound, usageError } from './cliErrors.js';
import type { BindAction } from './commandKit.js';
import { withExamples } from './commandKit.js';
import { publicApproval } from './gateCommands.js';
import { markGates } from './gateMarks.js';
import type { MarkedGate } from './gateMarks.js';
import { formatFields, formatTable, oneLine } from './output.js';
import type { Output } from './output.js';
import { followLog } from './followCommand.js';
import { agentNeedOfRun } from './runAgent.js';
import type { AgentNeed } from './runAgent.js';
import { resolveRunId } from './runIds.js';

const RUN_STATUSES: readonly RunStatus[] = ['running', 'paused', 'completed', 'failed', 'cancelled'];

/**
 * Registers `runs`, `show` and `log`. All exit 0, or 67 for an unknown run.
 * `runs` draws child runs (SPEC §12) under their parent; `show` names a run's
 * parent and lists its children.
 */
export function registerQueryCommands(program: Command, bind: BindAction): void {
  const runs = program
    .command('runs')
    .description('list runs, newest first, child runs under their parent')
    .addOption(new Option('--status <status>', 'only runs with this status').choices(RUN_STATUSES))
    .option('--playbook <name>', "only runs of the playbook with this name (its `name:`)")
    .option('--since <when>', 'only runs started since then: an ISO-8601 time, or a duration back from now (30m, 2h, 7d)')
    .option('--limit <n>', 'at most this many runs, the newest', positiveInteger('--limit'));
  withExamples(runs, ['cantbook runs', 'cantbook runs --status paused', 'cantbook runs --playbook release --since 7d --limit 20', 'cantbook runs --status failed --json']);
  runs.action(
    bind(async (ctx, cmd) => {
      const opts = cmd.opts<{ status?: RunStatus; playbook?: string; since?: string; limit?: number }>();
      const filter: ListRunsFilter = { newestFirst: true };
      if (opts.status !== undefined) filter.status = opts.status;
      if (opts.playbook !== undefined) filter.playbookName = opts.playbook;
      if (opts.since !== undefined) filter.startedSince = sinceOf(opts.since, new Date());
      if (opts.limit !== undefined) filter.limit = opts.limit;
      const rows = await ctx.withReadStore((store) => listRuns(store, filter));
      ctx.out.data(rows);
      const { status } = opts;
      const narrowed = Object.keys(filter).some((key) => key !== 'newestFirst');
      if (rows.length === 0) ctx.out.line(!narrowed ? 'no runs' : status === undefined ? 'no runs match' : `no ${status} runs match`);
      else {
        ctx.out.line(
          formatTable(
            ['RUN', 'PLAYBOOK', 'STATUS', 'NODE', 'STARTED', 'UPDATED'],
            orderRunTree(rows).map(({ row, prefix }) => [`${prefix}${row.runId}`, row.playbookName, row.status, row.currentNode ?? '-', row.startedAt, row.updatedAt]),
          ),
        );
      }
      return 0;
    }),
  );

  const show = program
    .command('show')
    .description("a run's summary: status, current node, attempts, error, approvals, parent and child runs, the agent it remembers")
    .argument('<runId>', 'the run')
    .option('--logs', "also print each attempt's log (what the agent or command wrote to stderr; its last 64 KiB)");
  withExamples(show, ['cantbook show 7f1c2a9e-…', 'cantbook show 7f1c2a9e-… --json', 'cantbook show 7f1c2a9e --logs']);
  show.action(
    bind(async (ctx, cmd) => {
      const withLogs = cmd.opts<{ logs?: boolean }>().logs === true;
      const { row, approvals, family, settings, logs, resumeNeedsAgent } = await ctx.withReadStore(async (store) => {
        const runId = await resolveRunId(store, cmd.processedArgs[0] as string);
        const found = await getRun(store, runId);
        if (found === null) throw runNotFound(runId);
        // Escalations and auto-passes are marked in the log, not in the approvals row.
        const gates = await markGates(store, (await store.listApprovals({ runId })).map(publicApproval));
        return {
          row: found,
          approvals: gates,
          family: await readRunFamily(store, found),
          settings: await store.getRunSettings(runId),
          logs: withLogs ? (await store.listAttemptLogs(runId)).map(({ runId: _run, ...log }) => log) : undefined,
          // A printed `resume` must work as pasted: it names an agent when neither the run nor the config file has one and one is needed.
          resumeNeedsAgent: gates.some((gate) => gate.status === 'approved' && !gate.resumed) && ctx.config()?.agent === undefined && needsAgent(await agentNeedOfRun(store, runId)),
        };
      });
      ctx.out.data({ ...row, approvals, parent: family.parent, children: family.children, settings, ...(logs === undefined ? {} : { logs }) });
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
      if (settings?.agent !== undefined) fields.push(['agent', `${settings.agent} (remembered: approve, resume, retry and recover use it)`]);
      if (family.parent !== null) fields.push(['parent', describeParent(family.parent, family.parentMaps)]);
      describeChildren(family.children, family.maps).forEach((line, index) => fields.push([index === 0 ? 'children' : '', line]));
      for (const gate of approvals) {
        fields.push([gate.escalation === undefined ? 'approval' : 'escalation', `${gate.nodeId} · ${gateSummary(gate)} · id ${gate.approvalId}${gate.expiresAt === null ? '' : ` · expires ${gate.expiresAt}`}`]);
        fields.push(['', oneLine(gate.prompt, 300)]);
        if (gate.status === 'pending') fields.push(['', `decide with: ${ctx.command('approve', "'<the token run printed>'", '--by', '"$USER"')}`]);
        if (gate.status === 'approved' && !gate.resumed) {
          // A placeholder that pastes safely, as approve's hint prints it: the shell puts the spec in.
          const line = resumeNeedsAgent
            ? `the run remembers no agent: set CANTBOOK_AGENT to the agent's spec, then continue with: ${ctx.command('resume', row.runId, '--agent', '"$CANTBOOK_AGENT"')}`
            : `continue with: ${ctx.command('resume', row.runId)}`;
          fields.push(['', line]);
        }
      }
      ctx.out.line(formatFields(fields));
      if (logs !== undefined) printAttemptLogs(ctx.out, logs);
      return 0;
    }),
  );

  const log = program
    .command('log')
    .description("a run's events in order (the source of truth)")
    .argument('<runId>', 'the run')
    .option('-f, --follow', 'keep printing events as they are appended, until the run ends or waits for a human (--json: one event per line)');
  withExamples(log, ['cantbook log 7f1c2a9e-…', 'cantbook log 7f1c2a9e-… --json | jq ".[].type"', 'cantbook log 7f1c2a9e-… --follow']);
  log.action(
    bind(async (ctx, cmd) => {
      const given = cmd.processedArgs[0] as string;
      if (cmd.opts<{ follow?: boolean }>().follow === true) return followLog(ctx, given);
      const events = await ctx.withReadStore(async (store) => readRunEvents(store, await resolveRunId(store, given)));
      if (events.length === 0) throw runNotFound(given);
      ctx.out.data(events);
      const maps = mapNodeIdsOfLog(events);
      ctx.out.line(formatTable(['SEQ', 'AT', 'TYPE', 'DETAILS'], events.map((event) => [String(event.seq), event.at, event.type, summarize(event, maps)])));
      return 0;
    }),
  );
}

/** A commander parser for an option that takes a positive integer (E_USAGE otherwise). */
function positiveInteger(flag: string): (value: string) => number {
  return (value) => {
    if (!/^[1-9][0-9]*$/.test(value)) throw usageError(`${flag} must be a positive integer, got '${value}'`);
    return Number(value);
  };
}

/**
 * `--since`: an ISO-8601 time as it is (normalised), or a duration (`30m`,
 * `2h`, `7d`) back from `now`. E_USAGE for anything else. Pure.
 */
export function sinceOf(value: string, now: Date): string {
  const duration = parseDuration(value);
  if (duration !== null) return new Date(now.getTime() - duration).toISOString();
  const at = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(at)) throw usageError(`--since must be an ISO-8601 time (2026-12-01, 2026-12-01T09:00:00Z) or a duration back from now (30m, 2h, 7d), got '${value}'`);
  return new Date(at).toISOString();
}

/** `<runId> (node implement_all, item 2) · epic · paused`: the `parent` line of `show`. Pure. */
export function describeParent(parent: ParentRunView, maps: ReadonlySet<string> | null): string {
  const about = [parent.playbookName, parent.status].filter((part) => part !== null).join(' · ');
  return `${parent.runId} (${describePlace(parent, maps)})${about === '' ? '' : ` · ${about}`}`;
}

/**
 * The `children` lines of `show`, one per child, columns aligned:
 * `<id>  paused     release  node release · at approval`. Pure.
 */
export function describeChildren(children: readonly ChildRunView[], maps: ReadonlySet<string> | null): string[] {
  const width = (pick: (child: ChildRunView) => string): number => Math.max(0, ...children.map((child) => pick(child).length));
  const idWidth = width((child) => child.runId);
  const statusWidth = width((child) => child.status);
  const nameWidth = width((child) => child.playbookName);
  return children.map((child) => {
    const place = child.nodeId === null ? '-' : describePlace({ nodeId: child.nodeId, attempt: child.attempt ?? 1, index: child.index ?? 0 }, maps);
    const at = child.currentNode === null || child.status === 'completed' ? '' : ` · at ${child.currentNode}`;
    return `${child.runId.padEnd(idWidth)}  ${child.status.padEnd(statusWidth)}  ${child.playbookName.padEnd(nameWidth)}  ${place}${at}`;
  });
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

/**
 * One line about an event's data, for `log`. `maps`, the ids of the run's
 * `map` nodes, says which child runs have an item worth naming (null: name
 * it always; see {@link describePlace}). Pure.
 */
export function summarize(event: RunEvent, maps: ReadonlySet<string> | null = null): string {
  switch (event.type) {
    case 'RunStarted': {
      const parent = event.data.parent;
      // A child's parent is named before its context: the context is the long part that gets cut.
      const child = parent === undefined ? '' : ` child of ${parent.runId} (${describePlace(parent, null)})`;
      return oneLine(`${event.data.playbookName} sha256 ${event.data.sourceHash.slice(0, 12)}${child} context ${JSON.stringify(event.data.context)}`, child === '' ? 120 : 240);
    }
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
    case 'ChildRunStarted': {
      // A child's id repeats its parent's: never cut these lines at the id, only a settled child's error.
      const item = maps === null || maps.has(event.data.nodeId) ? ` for item ${event.data.index}` : '';
      return `${event.data.nodeId} attempt ${event.data.attempt}: started child ${event.data.childRunId}${item}`;
    }
    case 'ChildRunSettled': {
      const { nodeId, attempt, childRunId, status, error } = event.data;
      const why = status === 'completed' || error === undefined ? '' : `: ${oneLine(error, 120)}`;
      return `${nodeId} attempt ${attempt}: child ${childRunId} ${status}${why}`;
    }
  }
}

/** How an attempt failed, beyond its message: ` (interrupted)`, ` (aborted)`, ` (timed out)`, ` (not retryable)`. Pure. */
export function failureFlags(data: { interrupted?: boolean; aborted?: boolean; timedOut?: boolean; retryable?: boolean }): string {
  return `${data.interrupted === true ? ' (interrupted)' : ''}${data.aborted === true ? ' (aborted)' : ''}${data.timedOut === true ? ' (timed out)' : ''}${data.retryable === false ? ' (not retryable)' : ''}`;
}

/** Each attempt's log under a heading; agent output is shown with its control characters escaped. */
function printAttemptLogs(out: Output, logs: readonly AttemptLog[]): void {
  if (logs.length === 0) {
    out.line('\nno attempt logs (no attempt of this run wrote to stderr)');
    return;
  }
  for (const log of logs) {
    const dropped = log.droppedBytes === 0 ? '' : ` (its first ${log.droppedBytes} bytes were not kept)`;
    out.line(`\n── log of ${log.nodeId}, attempt ${log.attempt}${dropped}`);
    out.line(printable(log.text.replace(/\n$/, '')));
  }
}

/** `text` with every control character but newline and tab written as `\xNN`, so it cannot drive the terminal. Pure. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (char) => `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Whether continuing a run needs an agent it does not remember (null: not known, so yes). */
function needsAgent(need: AgentNeed | null): boolean {
  return need === null || (need.agentic.length > 0 && need.remembered?.agent === undefined);
}
