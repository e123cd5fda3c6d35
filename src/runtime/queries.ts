import { canonicalJson } from '../events/canonicalJson.js';
import { checkAnchor, formatAnchor, headOf, parseAnchor } from '../events/anchor.js';
import type { RunAnchor } from '../events/anchor.js';
import { verifyChain } from '../events/hashChain.js';
import type { RunEvent } from '../events/types.js';
import { CantbookError, E_RUN_NOT_FOUND, E_USAGE } from '../errors.js';
import { toApprovalRows, toRunRow } from '../projections/projectRun.js';
import type { ApprovalRow, RunRow } from '../projections/types.js';
import type { EventStore, ListRunsFilter } from '../store/eventStore.js';
import { foldStoredEvents } from './loadRun.js';

/** A pending gate as operators see it: no token, no token hash. */
export interface PendingApproval {
  approvalId: string;
  runId: string;
  nodeId: string;
  prompt: string;
  requestedAt: string;
  expiresAt: string | null;
}

/** One thing `verifyRun` found wrong. */
export interface VerifyProblem {
  kind: 'seq_gap' | 'hash_mismatch' | 'wrong_run' | 'unreplayable' | 'projection_mismatch' | 'missing_events' | 'anchor_mismatch';
  seq?: number;
  message: string;
}

export interface VerifyResult {
  runId: string;
  ok: boolean;
  problems: VerifyProblem[];
  /**
   * The run's head as stored now (last event's seq and hash), null without
   * events. Keep it (`formatAnchor(head)`) where the database's writers cannot
   * reach, and pass it back as `anchor` later to detect a rewritten history.
   */
  head: RunAnchor | null;
}

/** Options of {@link verifyRun}. */
export interface VerifyRunOptions {
  /**
   * A head exported earlier (a {@link RunAnchor} or its text `<runId>:<seq>:<hash>`).
   * The event at its seq must still have its hash, or the result has an
   * `anchor_mismatch` problem. Throws E_USAGE when it is malformed or names
   * another run.
   */
  anchor?: RunAnchor | string;
}

/** The runs-projection row of one run (`parentRunId` names the run that started it as a child), or null. */
export function getRun(store: EventStore, runId: string): Promise<RunRow | null> {
  return store.getRun(runId);
}

/**
 * Runs, oldest first (then by run id), optionally by status and by parent:
 * `{parentRunId}` lists the child runs a run started (SPEC §12), `{parentRunId,
 * status}` those of them in that status.
 *
 * @example
 * const waiting = await listRuns(store, { parentRunId: runId, status: 'paused' });
 */
export function listRuns(store: EventStore, filter: ListRunsFilter = {}): Promise<RunRow[]> {
  return store.listRuns(filter);
}

/** A run's events in order (`{runId, seq, globalSeq, type, data, at, hash}`). */
export function readRunEvents(store: EventStore, runId: string): Promise<RunEvent[]> {
  return store.readRun(runId);
}

/**
 * Every gate waiting for a human, oldest first. A gate past its expiry is not
 * pending any more, even before a worker recorded its expiry (SPEC §5.5), so it
 * is left out. Tokens are never stored, so never returned.
 */
export async function getPendingApprovals(store: EventStore, options: { now?: () => Date } = {}): Promise<PendingApproval[]> {
  const now = (options.now?.() ?? new Date()).getTime();
  const rows = await store.listApprovals({ status: 'pending' });
  return rows
    .filter((row) => row.expiresAt === null || Date.parse(row.expiresAt) > now)
    .map(({ approvalId, runId, nodeId, prompt, requestedAt, expiresAt }) => ({ approvalId, runId, nodeId, prompt, requestedAt, expiresAt }));
}

/**
 * Proves a run's stored history: seq without gaps, every hash chained, the log
 * folds through its pinned playbook, and the projections equal that fold. An
 * edited event breaks its hash; a deleted one leaves a gap or disagrees with the
 * projection's version. With `anchor` (a head exported earlier) it also proves
 * that the history up to the anchor is the one that was anchored: a rewrite of
 * the whole chain by someone with write access passes every other check, but
 * not this one (docs/security.md). Returns the current `head` to export.
 * Read-only.
 *
 * Throws E_RUN_NOT_FOUND when the store has neither events nor a row for it,
 * E_USAGE for a malformed anchor or one of another run.
 *
 * @example
 * const { head } = await verifyRun(store, runId);          // keep formatAnchor(head) somewhere safe
 * const later = await verifyRun(store, runId, { anchor }); // later.ok === false after a rewrite
 */
export async function verifyRun(store: EventStore, runId: string, options: VerifyRunOptions = {}): Promise<VerifyResult> {
  const anchor = anchorOption(runId, options.anchor);
  const [events, row] = await Promise.all([store.readRun(runId), store.getRun(runId)]);
  if (events.length === 0) {
    if (row === null) throw new CantbookError(E_RUN_NOT_FOUND, `no run '${runId}' in this store`, { runId });
    const problems: VerifyProblem[] = [{ kind: 'missing_events', message: `run '${runId}' has a projection row but no events` }];
    if (anchor !== undefined) problems.push(...checkAnchor(events, anchor).map((p) => ({ kind: p.problem, seq: p.seq, message: p.message })));
    return { runId, ok: false, problems, head: null };
  }
  const problems: VerifyProblem[] = verifyChain(runId, events).map((p) => ({ kind: p.problem, seq: p.seq, message: p.message }));
  if (anchor !== undefined) problems.push(...checkAnchor(events, anchor).map((p) => ({ kind: p.problem, seq: p.seq, message: p.message })));
  let expected: { run: RunRow; approvals: ApprovalRow[] } | undefined;
  try {
    const { playbook, snapshot } = foldStoredEvents(runId, events);
    const run = toRunRow(playbook.model, snapshot);
    // A run waiting for child runs has its wake time set by their last commits and cleared by its driver's hand-back (SPEC §12): a hint, not a fold.
    const waits = Object.values(snapshot.context.children).some((set) => set.running > 0);
    expected = { run: waits && row !== null ? { ...run, wakeAt: row.wakeAt } : run, approvals: toApprovalRows(snapshot) };
  } catch (error) {
    problems.push({ kind: 'unreplayable', message: (error as Error).message });
  }
  if (expected) {
    const approvals = await store.listApprovals({ runId });
    problems.push(...compareRows('run', expected.run, row));
    const stored = new Map(approvals.map((a) => [a.approvalId, a]));
    for (const approval of expected.approvals) problems.push(...compareRows(`approval '${approval.approvalId}'`, approval, stored.get(approval.approvalId) ?? null));
    for (const extra of approvals.filter((a) => !expected.approvals.some((e) => e.approvalId === a.approvalId))) {
      problems.push({ kind: 'projection_mismatch', message: `approval '${extra.approvalId}' is stored but no event opened it` });
    }
  }
  return { runId, ok: problems.length === 0, problems, head: headOf(runId, events) };
}

/** verifyRun for every run in the store. */
export async function verifyStore(store: EventStore): Promise<VerifyResult[]> {
  const results: VerifyResult[] = [];
  for (const runId of await store.listRunIds()) results.push(await verifyRun(store, runId));
  return results;
}

/**
 * A run's head now (`{runId, seq, hash}` of its last event), or null when it
 * has no events: the anchor to export after a run completes or pauses.
 * Reads one event.
 */
export async function getRunHead(store: EventStore, runId: string): Promise<RunAnchor | null> {
  const row = await store.getRun(runId);
  if (row === null) return null;
  const events = await store.readRun(runId, Math.max(0, row.version - 1));
  const head = headOf(runId, events);
  // The projection may lag a concurrent append; the log is the truth.
  return head !== null && head.seq === row.version ? head : headOf(runId, await store.readRun(runId));
}

function anchorOption(runId: string, given: RunAnchor | string | undefined): RunAnchor | undefined {
  if (given === undefined) return undefined;
  const anchor = typeof given === 'string' ? parseAnchor(given) : given;
  if (anchor === null || typeof anchor !== 'object' || !Number.isInteger(anchor.seq) || anchor.seq < 1 || !/^[0-9a-f]{64}$/.test(String(anchor.hash))) {
    throw new CantbookError(E_USAGE, `not an anchor: ${JSON.stringify(typeof given === 'string' ? given : formatAnchor(given as RunAnchor))} (expected <runId>:<seq>:<64 hex characters>, as verify prints it)`);
  }
  if (anchor.runId !== runId) throw new CantbookError(E_USAGE, `the anchor is for run '${anchor.runId}', not '${runId}'`, { runId, anchorRunId: anchor.runId });
  return anchor;
}

/**
 * Rewrites one run's projection rows from its events (the repair `verify`
 * points to when only projections disagree). Throws E_LOG_CORRUPT when the
 * log itself does not fold: events are never rewritten.
 */
export async function rebuildProjections(store: EventStore, runId: string): Promise<void> {
  const events = await store.readRun(runId);
  if (events.length === 0) {
    await store.replaceProjections(runId, null, []);
    return;
  }
  const { playbook, snapshot } = foldStoredEvents(runId, events);
  await store.replaceProjections(runId, toRunRow(playbook.model, snapshot), toApprovalRows(snapshot));
}

function compareRows(what: string, expected: object, actual: object | null): VerifyProblem[] {
  if (actual === null) return [{ kind: 'projection_mismatch', message: `${what}: projection row is missing` }];
  const fields = Object.keys(expected).filter(
    (key) => canonicalJson((expected as Record<string, unknown>)[key]) !== canonicalJson((actual as Record<string, unknown>)[key]),
  );
  return fields.length === 0 ? [] : [{ kind: 'projection_mismatch', message: `${what}: stored ${fields.join(', ')} differ${fields.length === 1 ? 's' : ''} from the fold of the log` }];
}
