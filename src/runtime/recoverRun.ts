import { runStatusOf } from '../compiler/nextStep.js';
import { activeNodes } from '../compiler/stateValue.js';
import type { RunEvent, RunOwner } from '../events/types.js';
import { CantbookError, E_RUN_ACTIVE } from '../errors.js';
import type { EventStore } from '../store/eventStore.js';
import { loadRun } from './loadRun.js';
import type { LoadedRun } from './loadRun.js';
import { isDrivenHere, RunSession, resultOf, thisProcess } from './runSession.js';
import type { HostOptions, PlaybookResult } from './runSession.js';

export interface RecoverRunOptions extends HostOptions {
  store: EventStore;
  runId: string;
  /**
   * Take the run over even when the process that started its node still
   * looks alive (see below). The node is then dispatched again, and the old
   * process's next write fails with E_CONCURRENT_UPDATE.
   */
  force?: boolean;
}

/**
 * Finishes a run whose process died (SPEC §4 "Crash safety"). Every node that
 * was started but never finished gets `NodeFailed {interrupted: true}` and the
 * normal retry rule; an approved gate nobody resumed is resumed; a run between
 * steps simply continues. Finished and paused runs are returned as they are.
 *
 * Refuses with E_RUN_ACTIVE (unless `force`) a run whose in-flight node was
 * started by a process that is still alive: one in this process, or a live pid
 * on this host (`NodeStarted.owner`). A process on another host cannot be
 * checked from here; its runs are taken over. Whoever writes second gets
 * E_CONCURRENT_UPDATE and stops, so the log stays consistent either way, but a
 * node taken over from a live process is dispatched twice (delivery is
 * at-least-once; use the idempotency key).
 *
 * @example
 * for (const run of await listRuns(store, { status: 'running' })) {
 *   await recoverRun({ store, runId: run.runId, dispatcher });
 * }
 */
export async function recoverRun(options: RecoverRunOptions): Promise<PlaybookResult> {
  // 1. Read and fold the log through the playbook text the run was pinned to.
  const run = await loadRun(options.store, options.runId);
  if (typeof run.snapshot.value === 'string' || runStatusOf(run.playbook.model, run.snapshot) === 'paused') return resultOf(run.playbook, run.snapshot);
  // 2. Nodes in flight: only take them over from processes that are gone.
  if (options.force !== true) refuseIfDriven(run);
  // 3. Continue it like any session: record the interruptions, retry, resume approved gates, run on.
  const session = new RunSession(options.store, run.playbook, run.snapshot, options);
  return session.drive();
}

/**
 * Throws E_RUN_ACTIVE when an attempt in flight in the run was started by a
 * process that is still alive (this process, or a live pid on this host).
 */
export function refuseIfDriven(run: LoadedRun): void {
  const runId = run.snapshot.context.runId;
  if (typeof run.snapshot.value === 'string') return;
  for (const { nodeId, phase } of activeNodes(run.playbook.model, run.snapshot.value)) {
    if (phase !== 'running' || run.playbook.model.nodes.get(nodeId)?.type === 'parallel') continue;
    const attempt = run.snapshot.context.attempts[nodeId] ?? 0;
    const owner = ownerOf(run.events, nodeId, attempt);
    if (owner !== undefined && isAlive(owner, runId)) {
      throw new CantbookError(
        E_RUN_ACTIVE,
        `run '${runId}' is still being driven: node '${nodeId}' attempt ${attempt} was started by process ${owner.pid} on ${owner.host}, which is alive; recover it once that process has stopped, or force the takeover`,
        { runId, nodeId, attempt, owner },
      );
    }
  }
}

/** The owner recorded by the NodeStarted of this node attempt, if the log has one. */
function ownerOf(events: readonly RunEvent[], nodeId: string, attempt: number): RunOwner | undefined {
  const started = events.findLast((event) => event.type === 'NodeStarted' && event.data.nodeId === nodeId && event.data.attempt === attempt);
  return started?.type === 'NodeStarted' ? started.data.owner : undefined;
}

/** Whether the owner can still be driving the run, as far as this host can tell. */
function isAlive(owner: RunOwner, runId: string): boolean {
  if (owner.host !== thisProcess.host) return false;
  if (owner.pid === thisProcess.pid) return isDrivenHere(runId);
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (error) {
    // EPERM: the pid exists but belongs to another user, so it is alive.
    return (error as { code?: unknown }).code === 'EPERM';
  }
}
