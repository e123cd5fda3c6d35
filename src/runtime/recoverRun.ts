import { nextSteps, runStatusOf } from '../compiler/nextStep.js';
import type { EventStore } from '../store/eventStore.js';
import { clockOf } from './clock.js';
import { loadRun } from './loadRun.js';
import type { LoadedRun } from './loadRun.js';
import { checkHostOptions, leaseRun, RunSession, resultOf } from './runSession.js';
import type { HostOptions, PlaybookResult } from './runSession.js';

export interface RecoverRunOptions extends HostOptions {
  store: EventStore;
  runId: string;
  /**
   * Take the run over even while another driver holds a live lease on it.
   * That driver's next append fails with E_LEASE_LOST and it stops (its
   * attempts are aborted when it next renews or writes); the node it was
   * running is dispatched again here.
   */
  force?: boolean;
}

/**
 * Finishes a run whose driver died (SPEC §4 "Crash safety", §11). Recovery of
 * a crashed driver is "its lease expired": this takes the run's lease, then
 * every node that was started but never finished gets `NodeFailed
 * {interrupted: true}` and the normal retry rule, an approved gate nobody
 * resumed is resumed, a due gate expiry is recorded, and a run between steps
 * simply continues. Finished runs, and paused runs with nothing due, are
 * returned as they are.
 *
 * Refuses with E_RUN_ACTIVE (unless `force`) a run whose lease is live:
 * someone is driving it.
 *
 * @example
 * for (const run of await listRuns(store, { status: 'running' })) {
 *   await recoverRun({ store, runId: run.runId, dispatcher });
 * }
 */
export async function recoverRun(options: RecoverRunOptions): Promise<PlaybookResult> {
  checkHostOptions(options);
  const { store, runId } = options;
  const clock = clockOf(options);
  // 1. Anything to do? (Read without the lease: a finished run needs none.)
  const before = await loadRun(store, runId);
  if (!needsDriver(before, clock.now().getTime())) return resultOf(before.playbook, before.snapshot);
  // 2. The lease: only once the previous driver's has expired (or by force).
  const lease = await leaseRun(store, runId, options, options.force === true);
  // 3. Read again under the lease (the old driver may have written meanwhile), and continue like any session.
  let run: LoadedRun;
  try {
    run = await loadRun(store, runId);
  } catch (error) {
    await store.releaseLease(lease).catch(() => undefined);
    throw error;
  }
  return new RunSession(store, run.playbook, run.snapshot, options, lease).drive();
}

/** Whether a run has something for a driver to do: not ended, and not only waiting for humans whose gates are not yet due. */
function needsDriver(run: LoadedRun, now: number): boolean {
  const { model } = run.playbook;
  if (typeof run.snapshot.value === 'string') return false;
  if (runStatusOf(model, run.snapshot) !== 'paused') return true;
  return nextSteps(model, run.snapshot).some((step) => step.kind === 'paused' && step.expiresAt !== undefined && Date.parse(step.expiresAt) <= now);
}
