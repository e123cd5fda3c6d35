import { canonicalJson } from '../events/canonicalJson.js';
import { verifyChain } from '../events/hashChain.js';
import type { RunEvent } from '../events/types.js';
import { CantbookError, E_RUN_NOT_FOUND } from '../errors.js';
import { toApprovalRows, toRunRow } from '../projections/projectRun.js';
import type { ApprovalRow, RunRow, RunStatus } from '../projections/types.js';
import type { EventStore } from '../store/eventStore.js';
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
  kind: 'seq_gap' | 'hash_mismatch' | 'wrong_run' | 'unreplayable' | 'projection_mismatch' | 'missing_events';
  seq?: number;
  message: string;
}

export interface VerifyResult {
  runId: string;
  ok: boolean;
  problems: VerifyProblem[];
}

/** The runs-projection row of one run, or null. */
export function getRun(store: EventStore, runId: string): Promise<RunRow | null> {
  return store.getRun(runId);
}

/** Runs, oldest first, optionally by status. */
export function listRuns(store: EventStore, filter: { status?: RunStatus } = {}): Promise<RunRow[]> {
  return store.listRuns(filter);
}

/** A run's events in order (`{runId, seq, globalSeq, type, data, at, hash}`). */
export function readRunEvents(store: EventStore, runId: string): Promise<RunEvent[]> {
  return store.readRun(runId);
}

/** Every gate waiting for a human, oldest first. Tokens are never stored, so never returned. */
export async function getPendingApprovals(store: EventStore): Promise<PendingApproval[]> {
  const rows = await store.listApprovals({ status: 'pending' });
  return rows.map(({ approvalId, runId, nodeId, prompt, requestedAt, expiresAt }) => ({ approvalId, runId, nodeId, prompt, requestedAt, expiresAt }));
}

/**
 * Proves a run's stored history: seq without gaps, every hash chained, the log
 * folds through its pinned playbook, and the projections equal that fold. An
 * edited event breaks its hash; a deleted one leaves a gap or disagrees with the
 * projection's version. Read-only.
 *
 * Throws E_RUN_NOT_FOUND when the store has neither events nor a row for it.
 */
export async function verifyRun(store: EventStore, runId: string): Promise<VerifyResult> {
  const [events, row] = await Promise.all([store.readRun(runId), store.getRun(runId)]);
  if (events.length === 0) {
    if (row === null) throw new CantbookError(E_RUN_NOT_FOUND, `no run '${runId}' in this store`, { runId });
    return { runId, ok: false, problems: [{ kind: 'missing_events', message: `run '${runId}' has a projection row but no events` }] };
  }
  const problems: VerifyProblem[] = verifyChain(runId, events).map((p) => ({ kind: p.problem, seq: p.seq, message: p.message }));
  let expected: { run: RunRow; approvals: ApprovalRow[] } | undefined;
  try {
    const { playbook, snapshot } = foldStoredEvents(runId, events);
    expected = { run: toRunRow(playbook.model, snapshot), approvals: toApprovalRows(snapshot) };
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
  return { runId, ok: problems.length === 0, problems };
}

/** verifyRun for every run in the store. */
export async function verifyStore(store: EventStore): Promise<VerifyResult[]> {
  const results: VerifyResult[] = [];
  for (const runId of await store.listRunIds()) results.push(await verifyRun(store, runId));
  return results;
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
