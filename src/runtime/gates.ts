import { timingSafeEqual } from 'node:crypto';
import { hashResumeToken, parseResumeToken, verifyResumeToken } from '../approvals/resumeToken.js';
import { resumableGate } from '../compiler/nextStep.js';
import { branchOf } from '../compiler/playbookModel.js';
import {
  CantbookError,
  E_APPROVAL_ALREADY_DECIDED,
  E_APPROVAL_EXPIRED,
  E_APPROVAL_NOT_FOUND,
  E_APPROVAL_TOKEN_INVALID,
  E_CONCURRENT_UPDATE,
  E_PLAYBOOK_RESUME_BLOCKED,
  hasCode,
} from '../errors.js';
import type { ApprovalRow } from '../projections/types.js';
import type { EventStore } from '../store/eventStore.js';
import { loadRun, requireSecret, secretFor } from './loadRun.js';
import type { LoadedRun } from './loadRun.js';
import { refuseIfDriven } from './recoverRun.js';
import { resultOf, RunSession } from './runSession.js';
import type { HostOptions, PlaybookResult } from './runSession.js';

export interface GateDecisionOptions {
  store: EventStore;
  /** The resume token printed when the run paused. */
  token: string;
  /** Who decides (recorded in the log). */
  approver: string;
  reason?: string;
  approvalSecret?: string;
  now?: () => Date;
}

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
 * (HMAC, timing-safe), that the gate is pending and not expired. Does not run
 * anything: call resumePlaybook next (the CLI's `approve` does both).
 *
 * Throws E_APPROVAL_TOKEN_INVALID (malformed or forged), E_APPROVAL_NOT_FOUND,
 * E_APPROVAL_ALREADY_DECIDED, E_APPROVAL_EXPIRED (and records the expiry).
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
  const approver = typeof options.approver === 'string' ? options.approver.trim() : '';
  if (approver === '') throw new CantbookError(E_APPROVAL_TOKEN_INVALID, 'an approval decision needs an approver name');
  const now = options.now ?? (() => new Date());
  for (let attempt = 1; ; attempt += 1) {
    // The gate's state comes from the fold of the log, never from the approvals projection.
    const { gate, run } = await authenticate(options.store, options.token, options.approvalSecret);
    if (gate.status === 'expired') throw expired(gate);
    if (gate.status !== 'pending') {
      const by = gate.approver === null ? '' : ` by ${gate.approver}`;
      throw new CantbookError(E_APPROVAL_ALREADY_DECIDED, `gate '${gate.approvalId}' was already ${gate.status}${by}`, { approvalId: gate.approvalId, status: gate.status });
    }
    const session = new RunSession(options.store, run.playbook, run.snapshot, { dispatcher: refuseDispatch, now });
    try {
      if (isDue(gate, now())) {
        await expire(session, run, gate);
        throw expired(gate);
      }
      const data = { approvalId: gate.approvalId, nodeId: gate.nodeId, approver, reason: options.reason ?? '' };
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
      // Someone appended first: decide again on the log as it is now. A rival decision shows there as decided.
      if (attempt >= DECISION_ATTEMPTS) {
        throw new CantbookError(E_APPROVAL_ALREADY_DECIDED, `gate '${gate.approvalId}' could not be decided: the run kept moving (try again)`, { approvalId: gate.approvalId }, { cause: error });
      }
    }
  }
}

/**
 * Continues an approved gate from its successor, exactly once (SPEC §5.4): the
 * `RunResumed` event is committed before any node runs, and of two resumers
 * (in this process or another) only one can append it. Pending, rejected,
 * expired and already-resumed gates throw E_PLAYBOOK_RESUME_BLOCKED. The
 * session then drives the whole run (every branch) to its next pause or end.
 */
export async function resumePlaybook(options: ResumePlaybookOptions): Promise<PlaybookResult> {
  const { gate, run } = await authenticate(options.store, options.approvalToken, options.approvalSecret);
  return resumeLoaded(options, run, gate.approvalId);
}

/**
 * As resumePlaybook, by run id: resumes the run's approved gate. The human's
 * decision was authenticated when it was recorded (approveGate), so no token is
 * needed here; exactly-once holds the same way.
 */
export async function resumeRun(options: ResumeRunOptions): Promise<PlaybookResult> {
  const run = await loadRun(options.store, options.runId);
  const gates = Object.values(run.snapshot.context.approvals);
  const gate = gates.find((g) => resumableGate(run.snapshot, g.approvalId).resumable) ?? gates.at(-1);
  if (!gate) throw new CantbookError(E_PLAYBOOK_RESUME_BLOCKED, `run '${options.runId}' has no approval gate to resume`, { runId: options.runId });
  return resumeLoaded(options, run, gate.approvalId);
}

async function resumeLoaded(options: HostOptions & { store: EventStore }, run: LoadedRun, approvalId: string): Promise<PlaybookResult> {
  const check = resumableGate(run.snapshot, approvalId);
  if (!check.resumable) {
    throw new CantbookError(E_PLAYBOOK_RESUME_BLOCKED, check.message, { runId: run.snapshot.context.runId, approvalId, reason: check.reason });
  }
  refuseIfDriven(run);
  const session = new RunSession(options.store, run.playbook, run.snapshot, { ...options, ...secretFor(run.playbook, options.approvalSecret) });
  return session.drive();
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
      await expire(session, run, gate);
      expiredIds.push(gate.approvalId);
    } catch (error) {
      if (!hasCode(error, E_CONCURRENT_UPDATE)) throw error; // someone decided or expired it first
    }
  }
  return expiredIds;
}

/**
 * Token -> the gate as the fold of its run's log says it is, + the run, or a
 * coded refusal. The approvals projection only finds the run; it decides nothing.
 * Checks the signature before revealing anything about the gate.
 */
async function authenticate(store: EventStore, token: string, secretOption: string | undefined): Promise<{ gate: ApprovalRow; run: LoadedRun }> {
  const parsed = parseResumeToken(token);
  if (!parsed) throw new CantbookError(E_APPROVAL_TOKEN_INVALID, 'that is not a cantbook resume token (expected cbk1.<approvalId>.<signature>)');
  const secret = requireSecret(secretOption);
  const row = await store.getApproval(parsed.approvalId);
  const notFound = () => new CantbookError(E_APPROVAL_NOT_FOUND, `no approval gate '${parsed.approvalId}' in this store`, { approvalId: parsed.approvalId });
  if (!row) throw notFound();
  const run = await loadRun(store, row.runId);
  const gate = run.snapshot.context.approvals[parsed.approvalId];
  if (!gate) throw notFound();
  const claims = { runId: gate.runId, approvalId: gate.approvalId, nodeId: gate.nodeId, contextDigest: gate.contextDigest, expiresAt: gate.expiresAt };
  const hashMatches = safeEqualHex(hashResumeToken(token), gate.tokenHash);
  if (!verifyResumeToken(secret, token, claims) || !hashMatches) {
    throw new CantbookError(E_APPROVAL_TOKEN_INVALID, `the token for gate '${gate.approvalId}' has an invalid signature (forged, altered, or signed with another secret)`, { approvalId: gate.approvalId });
  }
  return { gate, run };
}

function safeEqualHex(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && left.length > 0 && timingSafeEqual(left, right);
}

function isDue(gate: ApprovalRow, now: Date): boolean {
  return gate.status === 'pending' && gate.expiresAt !== null && Date.parse(gate.expiresAt) <= now.getTime();
}

/** Records the gate's expiry as the machine names it: RunFailed at the top level, BranchFailed inside a group. */
async function expire(session: RunSession, run: LoadedRun, gate: ApprovalRow): Promise<void> {
  const error = `approval gate '${gate.nodeId}' expired at ${gate.expiresAt}`;
  const branch = branchOf(run.playbook.model, gate.nodeId);
  if (branch === undefined) {
    session.record({ type: 'RunFailed', data: { nodeId: gate.nodeId, approvalId: gate.approvalId, cause: 'approval_expired', error } });
  } else {
    session.record({ type: 'BranchFailed', data: { groupId: branch.groupId, branchId: branch.id, nodeId: gate.nodeId, approvalId: gate.approvalId, cause: 'approval_expired', error } });
  }
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
