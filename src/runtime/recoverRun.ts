import type { EventStore } from '../store/eventStore.js';
import { loadRun, secretFor } from './loadRun.js';
import { RunSession, resultOf } from './runSession.js';
import type { HostOptions, PlaybookResult } from './runSession.js';

export interface RecoverRunOptions extends HostOptions {
  store: EventStore;
  runId: string;
}

/**
 * Finishes a run whose process died (SPEC §4 "Crash safety"). A node that was
 * started but never finished gets `NodeFailed {interrupted: true}` and the
 * normal retry rule; a run between steps simply continues. Finished and paused
 * runs are returned as they are.
 *
 * Only call it for a run no live process is driving: if one is, whichever
 * writes second gets E_CONCURRENT_UPDATE and stops, so the log stays
 * consistent, but the interrupted node may be dispatched twice (delivery is
 * at-least-once; use the idempotency key).
 */
export async function recoverRun(options: RecoverRunOptions): Promise<PlaybookResult> {
  const run = await loadRun(options.store, options.runId);
  const status = run.snapshot.context.status;
  if (status !== 'running') return resultOf(run.snapshot);
  const session = new RunSession(options.store, run.playbook, run.snapshot, { ...options, ...secretFor(run.playbook, options.approvalSecret) });
  return session.drive();
}
