import { digestContext, parseResumeToken, tokenMatchesHash } from '../approvals/resumeToken.js';
import { resumableGate } from '../compiler/nextStep.js';
import { contextOf } from '../compiler/runState.js';
import {
  CantbookError,
  E_APPROVAL_ALREADY_DECIDED,
  E_APPROVAL_EXPIRED,
  E_APPROVAL_NOT_FOUND,
  E_APPROVAL_TOKEN_INVALID,
  E_CONCURRENT_UPDATE,
  E_PLAYBOOK_RESUME_BLOCKED,
  E_RUN_ACTIVE,
  E_USAGE,
  hasCode,
} from '../errors.js';
import type { ApprovalRow } from '../projections/types.js';
import type { EventStore, Lease } from '../store/eventStore.js';
import { loadRun } from './loadRun.js';
import type { LoadedRun } from './loadRun.js';
import { checkHostOptions, leaseRun, resultOf, RunSession } from './runSession.js';
import type { HostOptions, PlaybookResult } from './runSession.js';

export interface GateDecisionOptions {
  store: EventStore;
  /** The resume token printed when the run paused. */
  token: string;
  /** Who decides (recorded in the log): 1..{@link MAX_APPROVER_LENGTH} characters after trimming. */
  approver: string;
  /** Why (recorded in the log): at most {@link MAX_REASON_LENGTH} characters. */
  reason?: string;
  /**
   * Accepted for compatibility with v1 hosts and ignored: tokens are random
   * credentials verified by their hash, so no key signs or verifies them
   * (docs/security.md). Passing one changes nothing.
   */
  approvalSecret?: string;
  now?: () => Date;
}

/** The longest approver name a decision records (SPEC §5.3). */
export const MAX_APPROVER_LENGTH = 200;
/** The longest reason a decision records (SPEC §5.3). */
export const MAX_REASON_LENGTH = 4000;

export interface GateDecisionResult {
  runId: string;
  approvalId: string;
  nodeId: string;
  status: 'approved' | 'rejected';
  /** For a rejection: the run's result (failed). */
  result?: PlaybookResult;
}

export interface ResumePlaybookOptions extends HostOptions {
  store: EventStore;
  approvalToken: string;
}

export interface ResumeRunOptions extends HostOptions {
  store: EventStore;
  runId: string;
}

export interface SweepOptions {
  store: EventStore;
  now?: () => Date;
}

/**
 * Records a human's approval of a pending gate (SPEC §5.3). Verifies the token
 * against the gate as the fold of the log has it: SHA-256 of the token equals
 * the gate's `tokenHash` (timing-safe), the gate is pending and not expired, and
 * the run's context still has the digest recorded when the gate opened. Does not
 * run anything: call resumePlaybook next (the CLI's `approve` does both).
 *
 * Throws E_USAGE (blank or over-long approver, over-long reason),
 * E_APPROVAL_TOKEN_INVALID (malformed, forged, or for another context),
 * E_APPROVAL_NOT_FOUND, E_APPROVAL_ALREADY_DECIDED (also for the loser of two
 * concurrent decisions), E_APPROVAL_EXPIRED (and records the expiry).
 */
export function approveGate(options: GateDecisionOptions): Promise<GateDecisionResult> {
  return decide(options, 'approved');
}

/** Records a rejection; the run fails at once (cause approval_rejected). Same checks as approveGate. */
export function rejectGate(options: GateDecisionOptions): Promise<GateDecisionResult> {
  return decide(options, 'rejected');
}

/** How many times a decision is retried when another writer (a driver of another branch) appended first. */
const DECISION_ATTEMPTS = 8;

async function decide(options: GateDecisionOptions, decision: 'approved' | 'rejected'): Promise<GateDecisionResult> {
  const { approver, reason } = decisionText(options);
  const now = options.now ?? (() => new Date());
  for (let attempt = 1; ; attempt += 1) {
    // The gate's state comes from the fold of the log, never from the approvals projection.
    const { gate, run } = await authenticate(options.store, options.token);
    if (gate.status !== 'pending') throw decided(gate);
    const session = new RunSession(options.store, run.playbook, run.snapshot, { dispatcher: refuseDispatch, now });
    try {
      if (isDue(gate, now())) {
        await expire(session, gate);
        throw expired(gate);
      }
      if (digestContext(contextOf(run.playbook.model, run.snapshot.context, gate.nodeId)) !== gate.contextDigest) {
        throw new CantbookError(E_APPROVAL_TOKEN_INVALID, `gate '${gate.approvalId}': the run's context changed since the gate opened, so the token no longer approves what the reviewer saw`, { approvalId: gate.approvalId });
      }
      const data = { approvalId: gate.approvalId, nodeId: gate.nodeId, approver, reason };
      session.record(decision === 'approved' ? { type: 'ApprovalGranted', data } : { type: 'ApprovalRejected', data });
      if (decision === 'approved') {
        await session.commit();
        return { runId: gate.runId, approvalId: gate.approvalId, nodeId: gate.nodeId, status: decision };
      }
      // A rejection ends the run (or the gate's branch) at once, in the same commit.
      await session.settleDecisions();
      const ended = typeof session.state.value === 'string';
      return { runId: gate.runId, approvalId: gate.approvalId, nodeId: gate.nodeId, status: decision, ...(ended ? { result: resultOf(run.playbook, session.state) } : {}) };
    } catch (error) {
      if (!hasCode(error, E_CONCURRENT_UPDATE)) throw error;
      // Another writer appended between our read and our append (the UNIQUE (run, seq) constraint decided).
      // A rival decision shows in the log as decided: the loser says who won, never a raw conflict. Any
      // other append (a driver of another branch) leaves the gate pending: decide again on the log as it is.
      const lost = await lostRace(options.store, gate, error);
      if (lost !== undefined || attempt >= DECISION_ATTEMPTS) {
        throw lost ?? new CantbookError(E_APPROVAL_ALREADY_DECIDED, `gate '${gate.approvalId}' could not be decided: the run kept moving (try again)`, { approvalId: gate.approvalId }, { cause: error });
      }
    }
  }
}

/** Trims and bounds approver and reason (SPEC §5.3); E_USAGE otherwise. */
function decisionText(options: GateDecisionOptions): { approver: string; reason: string } {
  const approver = typeof options.approver === 'string' ? options.approver.trim() : '';
  if (approver === '') throw new CantbookError(E_USAGE, 'an approval decision needs an approver name');
  return { approver: boundedText(approver, MAX_APPROVER_LENGTH, 'the approver name'), reason: boundedText(options.reason ?? '', MAX_REASON_LENGTH, 'the reason') };
}

/**
 * Text a decision records (who, why): E_USAGE when it is not a string or is
 * longer than `max` characters (SPEC §5.3); `what` names it in the message.
 */
export function boundedText(text: unknown, max: number, what: string): string {
  if (typeof text !== 'string') throw new CantbookError(E_USAGE, `${what} must be text`);
  if (text.length > max) throw new CantbookError(E_USAGE, `${what} is ${text.length} characters long; at most ${max} are allowed`, { length: text.length, max });
  return text;
}

/** The refusal for a gate that is no longer pending. */
function decided(gate: ApprovalRow): CantbookError {
  if (gate.status === 'expired') return expired(gate);
  const by = gate.approver === null ? '' : ` by ${gate.approver}`;
  return new CantbookError(E_APPROVAL_ALREADY_DECIDED, `gate '${gate.approvalId}' was already ${gate.status}${by}`, { approvalId: gate.approvalId, status: gate.status });
}

/** After losing an append race: the gate as the log has it now, reported as decided; undefined while it is still pending. */
async function lostRace(store: EventStore, gate: ApprovalRow, cause: unknown): Promise<CantbookError | undefined> {
  let now: ApprovalRow | undefined;
  try {
    now = (await loadRun(store, gate.runId)).snapshot.context.approvals[gate.approvalId];
  } catch {
    now = undefined;
  }
  if (now !== undefined && now.status === 'pending') return undefined;
  if (now !== undefined) {
    const error = decided(now);
    return new CantbookError(error.code, `${error.message} (just now, by another process)`, error.details, { cause });
  }
  return new CantbookError(E_APPROVAL_ALREADY_DECIDED, `gate '${gate.approvalId}' was decided by someone else just now`, { approvalId: gate.approvalId }, { cause });
}

/**
 * Continues an approved gate from its successor, exactly once (SPEC §5.4): the
 * `RunResumed` event is committed before any node runs, and of two resumers
 * (in this process or another) only one can append it. Pending, rejected,
 * expired and already-resumed gates throw E_PLAYBOOK_RESUME_BLOCKED. The
 * session then drives the whole run (every branch) to its next pause or end.
 */
export async function resumePlaybook(options: ResumePlaybookOptions): Promise<PlaybookResult> {
  checkHostOptions(options);
  const { gate, run } = await authenticate(options.store, options.approvalToken);
  return resumeLoaded(options, run, gate.approvalId);
}

/**
 * As resumePlaybook, by run id: resumes the run's approved gate. The human's
 * decision was authenticated when it was recorded (approveGate), so no token is
 * needed here; exactly-once holds the same way.
 */
export async function resumeRun(options: ResumeRunOptions): Promise<PlaybookResult> {
  checkHostOptions(options);
  const run = await loadRun(options.store, options.runId);
  const gates = Object.values(run.snapshot.context.approvals);
  const gate = gates.find((g) => resumableGate(run.snapshot, g.approvalId).resumable) ?? gates.at(-1);
  if (!gate) throw new CantbookError(E_PLAYBOOK_RESUME_BLOCKED, `run '${options.runId}' has no approval gate to resume`, { runId: options.runId });
  return resumeLoaded(options, run, gate.approvalId);
}

async function resumeLoaded(options: HostOptions & { store: EventStore }, run: LoadedRun, approvalId: string): Promise<PlaybookResult> {
  const runId = run.snapshot.context.runId;
  const blocked = (loaded: LoadedRun): void => {
    const check = resumableGate(loaded.snapshot, approvalId);
    if (!check.resumable) throw new CantbookError(E_PLAYBOOK_RESUME_BLOCKED, check.message, { runId, approvalId, reason: check.reason });
  };
  blocked(run);
  let lease: Lease;
  try {
    lease = await leaseRun(options.store, runId, options);
  } catch (error) {
    // Someone holds the run's lease: that driver resumes the approved gate itself (SPEC §5.4), exactly once.
    if (!hasCode(error, E_RUN_ACTIVE)) throw error;
    throw new CantbookError(E_PLAYBOOK_RESUME_BLOCKED, `${(error as Error).message}; that driver resumes gate '${approvalId}'`, { runId, approvalId, reason: 'driven' }, { cause: error });
  }
  // Checked again under the lease: a resume that read the log before another one drove the run and let go of it
  // would otherwise drive on from the other's end and report its result as its own.
  let current: LoadedRun;
  try {
    current = await loadRun(options.store, runId);
    blocked(current);
  } catch (error) {
    await options.store.releaseLease(lease).catch(() => undefined);
    throw error;
  }
  const result = await new RunSession(options.store, current.playbook, current.snapshot, options, lease).drive();
  return continueParents(options, current.snapshot.context.parent?.runId, result);
}

/**
 * A child run that ended lets its parent go on (SPEC §12): the parent is
 * driven here, and so on up the tree while each one ends. Stops at a parent
 * someone else drives (that driver, or a worker woken by the child's end,
 * goes on) and returns the result of the highest run this call drove.
 */
async function continueParents(options: HostOptions & { store: EventStore }, parentRunId: string | undefined, result: PlaybookResult): Promise<PlaybookResult> {
  let current = result;
  let next = parentRunId;
  while (next !== undefined && isEnded(current)) {
    // A parent that already ended (cancelled without waiting for this child) has nothing to go on with.
    if (typeof (await loadRun(options.store, next)).snapshot.value === 'string') return current;
    let lease: Lease;
    try {
      lease = await leaseRun(options.store, next, options);
    } catch (error) {
      if (hasCode(error, E_RUN_ACTIVE)) return current;
      throw error;
    }
    let parent: LoadedRun;
    try {
      parent = await loadRun(options.store, next);
    } catch (error) {
      await options.store.releaseLease(lease).catch(() => undefined);
      throw error;
    }
    current = await new RunSession(options.store, parent.playbook, parent.snapshot, options, lease).drive();
    next = parent.snapshot.context.parent?.runId;
  }
  return current;
}

function isEnded(result: PlaybookResult): boolean {
  return result.terminalStatus !== 'pending_approval';
}

/**
 * Fails every gate past its `expiresAt` (cause approval_expired): the run, or
 * the gate's branch inside a parallel group. Durable and idempotent: safe to
 * call from any number of hosts at once. Returns the approval ids it expired.
 */
export async function sweepExpiredApprovals(options: SweepOptions): Promise<string[]> {
  const now = (options.now ?? (() => new Date()))();
  const expiredIds: string[] = [];
  for (const row of await options.store.listApprovals({ status: 'pending' })) {
    if (!isDue(row, now)) continue;
    const run = await loadRun(options.store, row.runId);
    const gate = run.snapshot.context.approvals[row.approvalId];
    if (gate === undefined || !isDue(gate, now)) continue; // the projection was stale: the log says otherwise
    const session = new RunSession(options.store, run.playbook, run.snapshot, { dispatcher: refuseDispatch, now: () => now });
    try {
      await expire(session, gate);
      expiredIds.push(gate.approvalId);
    } catch (error) {
      if (!hasCode(error, E_CONCURRENT_UPDATE)) throw error; // someone decided or expired it first
    }
  }
  return expiredIds;
}

/**
 * Token -> gate + run, or a coded refusal. The gate is read from the fold of the
 * log (never the projection), so the hash compared is the one `RunPaused`
 * recorded, and its status is the status the machine will judge the decision by.
 */
async function authenticate(store: EventStore, token: string): Promise<{ gate: ApprovalRow; run: LoadedRun }> {
  const parsed = parseResumeToken(token);
  if (!parsed) throw new CantbookError(E_APPROVAL_TOKEN_INVALID, 'that is not a cantbook resume token (expected cbk1.<approvalId>.<credential>)');
  const row = await store.getApproval(parsed.approvalId);
  if (!row) throw new CantbookError(E_APPROVAL_NOT_FOUND, `no approval gate '${parsed.approvalId}' in this store`, { approvalId: parsed.approvalId });
  const run = await loadRun(store, row.runId);
  const gate = run.snapshot.context.approvals[parsed.approvalId];
  if (!gate) throw new CantbookError(E_APPROVAL_NOT_FOUND, `no approval gate '${parsed.approvalId}' in the log of run '${row.runId}'`, { approvalId: parsed.approvalId });
  if (!tokenMatchesHash(token, gate.tokenHash)) {
    throw new CantbookError(E_APPROVAL_TOKEN_INVALID, `that token does not open gate '${gate.approvalId}' (forged, altered, or from another gate)`, { approvalId: gate.approvalId });
  }
  return { gate, run };
}

function isDue(gate: ApprovalRow, now: Date): boolean {
  return gate.status === 'pending' && gate.expiresAt !== null && Date.parse(gate.expiresAt) <= now.getTime();
}

/**
 * Records the gate's expiry (ApprovalExpired), then what the machine decides
 * from it: the run fails approval_expired at the top level, the branch inside
 * a group.
 */
async function expire(session: RunSession, gate: ApprovalRow): Promise<void> {
  session.record({ type: 'ApprovalExpired', data: { approvalId: gate.approvalId, nodeId: gate.nodeId } });
  await session.settleDecisions();
}

function expired(gate: ApprovalRow): CantbookError {
  return new CantbookError(E_APPROVAL_EXPIRED, `gate '${gate.approvalId}' expired at ${gate.expiresAt ?? 'an earlier time'}`, { approvalId: gate.approvalId });
}

/** Deciding a gate never runs a node; a dispatch here would be a bug. */
const refuseDispatch = {
  dispatch(): never {
    throw new TypeError('no node may run while a gate is being decided');
  },
};
