/**
 * Operators' hands on a run (SPEC §10): cancel it, or drive a failed run again
 * from where it failed (redrive).
 */
import { redriveNodeOf } from '../compiler/runState.js';
import { CantbookError, E_CONCURRENT_UPDATE, E_RUN_FINISHED, E_RUN_NOT_RETRYABLE, E_USAGE, hasCode } from '../errors.js';
import type { EventStore } from '../store/eventStore.js';
import type { Clock } from './clock.js';
import { boundedText, MAX_APPROVER_LENGTH, MAX_REASON_LENGTH } from './gates.js';
import { cancelTree, unsettledChildren } from './childRuns.js';
import { loadRun } from './loadRun.js';
import { checkHostOptions, leaseRun, RunSession, resultOf } from './runSession.js';
import type { HostOptions, PlaybookResult } from './runSession.js';

export interface CancelRunOptions {
  store: EventStore;
  runId: string;
  /** Why (recorded in the log): 1..4,000 characters. */
  reason: string;
  /** Who cancels (recorded): at most 200 characters. */
  by?: string;
  now?: () => Date;
  clock?: Clock;
}

export interface RetryRunOptions extends HostOptions {
  store: EventStore;
  runId: string;
  by?: string;
  reason?: string;
}

/** How many times a cancellation is tried again when the run's driver appended between our read and our write. */
const CANCEL_ATTEMPTS = 8;

/**
 * Cancels a run (SPEC §10): appends `RunCancelled{reason, by}`. Its pending
 * gates become `cancelled` in the same commit; its in-flight attempts are
 * aborted by whoever drives it (at once in this process, within one lease
 * renewal from another; their processes are killed before the driver
 * stops). Works from any process, without the run's lease: the expected
 * version orders it against the driver. Then every child run it still
 * waits for is cancelled the same way, depth first (SPEC §12). Returns the
 * run's result (`cancelled`).
 *
 * Throws E_RUN_FINISHED when the run already ended (completed, failed,
 * cancelled), E_RUN_NOT_FOUND, E_USAGE for a blank or over-long reason.
 *
 * @example
 * await cancelRun({ store, runId, reason: 'superseded by 1.2.1', by: 'alice' });
 */
export async function cancelRun(options: CancelRunOptions): Promise<PlaybookResult> {
  const { store, runId } = options;
  const { reason, by } = cancelText(options);
  for (let attempt = 1; ; attempt += 1) {
    const run = await loadRun(store, runId);
    if (typeof run.snapshot.value === 'string') {
      throw new CantbookError(E_RUN_FINISHED, `run '${runId}' already ended (${String(run.snapshot.value)}); there is nothing to cancel`, { runId, state: run.snapshot.value });
    }
    const session = new RunSession(store, run.playbook, run.snapshot, { dispatcher: refuseDispatch, ...clockOptions(options) });
    session.record({ type: 'RunCancelled', data: { reason, ...(by === undefined ? {} : { by }) } });
    try {
      await session.commit();
      // Then its children, depth first (SPEC §12); a cascade cut short is finished by each child's next driver.
      for (const child of unsettledChildren(session.state.context)) await cancelTree(store, child, `its parent run '${runId}' was cancelled: ${reason}`, by);
      return resultOf(run.playbook, session.state);
    } catch (error) {
      // The driver appended first (a result): cancel on top of the log as it is now.
      if (!hasCode(error, E_CONCURRENT_UPDATE) || attempt >= CANCEL_ATTEMPTS) throw error;
    }
  }
}

/**
 * Redrives a run that failed or exceeded a cap (SPEC §10, like Step Functions
 * redrive): appends `RunRetried{fromNode, by, reason}` and drives the run on
 * from the top-level node it failed at, with fresh attempt counts for it,
 * keeping every earlier success (a parallel group keeps the branches that had
 * succeeded). Holds the run's lease like any driver.
 *
 * Throws E_RUN_NOT_RETRYABLE for a run that is not failed, was cancelled, or
 * failed because a human rejected it; E_RUN_ACTIVE while another driver holds
 * its lease; E_RUN_NOT_FOUND.
 *
 * @example
 * const result = await retryRun({ store, runId, by: 'alice', reason: 'flaky network', dispatcher });
 */
export async function retryRun(options: RetryRunOptions): Promise<PlaybookResult> {
  checkHostOptions(options);
  const { store, runId } = options;
  const by = options.by === undefined ? undefined : boundedText(options.by, MAX_APPROVER_LENGTH, 'the name of who retries');
  const reason = options.reason === undefined ? undefined : boundedText(options.reason, MAX_REASON_LENGTH, 'the reason');
  await loadRun(store, runId); // E_RUN_NOT_FOUND before any lease
  const lease = await leaseRun(store, runId, options);
  let session: RunSession;
  try {
    // Under the lease nobody else drives the run: what we read now is what we redrive.
    const run = await loadRun(store, runId);
    const fromNode = redriveNodeOf(run.playbook.model, run.snapshot.context);
    const value = run.snapshot.value;
    const parent = run.snapshot.context.parent;
    if (parent !== null) {
      // Its parent recorded how it ended; a retry of the parent's node starts a new child instead.
      throw new CantbookError(E_RUN_NOT_RETRYABLE, `run '${runId}' is a child of run '${parent.runId}' (node '${parent.nodeId}'): retry that run, which starts a new child`, { runId, parentRunId: parent.runId });
    }
    if ((value !== 'failed' && value !== 'exceeded_iteration_cap') || fromNode === undefined) {
      const why = typeof value !== 'string' ? 'it has not ended' : value === 'completed' ? 'it completed' : value === 'cancelled' ? 'it was cancelled' : 'a human rejected it';
      throw new CantbookError(E_RUN_NOT_RETRYABLE, `run '${runId}' cannot be retried: ${why}`, { runId, state: value });
    }
    session = new RunSession(store, run.playbook, run.snapshot, options, lease);
    session.record({ type: 'RunRetried', data: { fromNode, ...(by === undefined ? {} : { by }), ...(reason === undefined ? {} : { reason }) } });
  } catch (error) {
    await store.releaseLease(lease).catch(() => undefined);
    throw error;
  }
  // RunRetried is committed with the first NodeStarted, under the lease.
  return session.drive();
}

function cancelText(options: CancelRunOptions): { reason: string; by: string | undefined } {
  const reason = typeof options.reason === 'string' ? options.reason.trim() : '';
  if (reason === '') throw new CantbookError(E_USAGE, 'a cancellation needs a reason');
  return {
    reason: boundedText(reason, MAX_REASON_LENGTH, 'the reason'),
    by: options.by === undefined ? undefined : boundedText(options.by, MAX_APPROVER_LENGTH, 'the name of who cancels'),
  };
}

function clockOptions(options: { now?: () => Date; clock?: Clock }): { now?: () => Date; clock?: Clock } {
  return { ...(options.now === undefined ? {} : { now: options.now }), ...(options.clock === undefined ? {} : { clock: options.clock }) };
}

/** Cancelling never runs a node. */
const refuseDispatch = {
  dispatch(): never {
    throw new TypeError('no node may run while a run is being cancelled');
  },
};
