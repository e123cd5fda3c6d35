import { FoldError, foldRun, initialRunSnapshot } from '../compiler/foldRun.js';
import type { RunSnapshot } from '../compiler/foldRun.js';
import { sha256Hex } from '../events/canonicalJson.js';
import type { RunEvent } from '../events/types.js';
import { CantbookError, E_LOG_CORRUPT, E_RUN_NOT_FOUND } from '../errors.js';
import type { EventStore } from '../store/eventStore.js';
import { compileSource } from './playbookCache.js';
import type { CompiledPlaybook } from './playbookCache.js';

/** A stored run read back: its pinned playbook, its events and their fold. */
export interface LoadedRun {
  playbook: CompiledPlaybook;
  events: RunEvent[];
  snapshot: RunSnapshot;
}

/**
 * Reads a run's whole log and folds it through the playbook text the run was
 * started with (never the file as it is today). Cost is O(this run's events):
 * independent of how many other runs the store holds.
 *
 * Throws E_RUN_NOT_FOUND, or E_LOG_CORRUPT when the log does not fold.
 */
export async function loadRun(store: EventStore, runId: string): Promise<LoadedRun> {
  const events = await store.readRun(runId);
  if (events.length === 0) throw new CantbookError(E_RUN_NOT_FOUND, `no run '${runId}' in this store`, { runId });
  return { events, ...foldStoredEvents(runId, events) };
}

/** Folds a run's complete log. Throws E_LOG_CORRUPT when it does not fold. */
export function foldStoredEvents(runId: string, events: readonly RunEvent[]): { playbook: CompiledPlaybook; snapshot: RunSnapshot } {
  const first = events[0];
  if (first?.type !== 'RunStarted') throw corrupt(runId, `its first event is ${first?.type ?? 'missing'}, not RunStarted`);
  const { source, sourceHash } = first.data;
  if (typeof source !== 'string' || sha256Hex(source) !== sourceHash) throw corrupt(runId, 'its playbook text does not match its sourceHash');
  let playbook: CompiledPlaybook;
  try {
    // A text a run was pinned to: rules added after it started do not lock the run out of its own history.
    // A run started before contracts were enforced (no RunStarted.contracts) folds as it ran.
    playbook = compileSource(source, { pinned: true, contracts: first.data.contracts === true });
  } catch (error) {
    throw corrupt(runId, `its pinned playbook no longer parses: ${(error as Error).message}`, error);
  }
  try {
    return { playbook, snapshot: foldRun(playbook.machine, initialRunSnapshot(playbook.machine), events) };
  } catch (error) {
    if (error instanceof FoldError) throw corrupt(runId, error.message, error);
    throw error;
  }
}

function corrupt(runId: string, why: string, cause?: unknown): CantbookError {
  return new CantbookError(E_LOG_CORRUPT, `the log of run '${runId}' cannot be replayed: ${why}`, { runId }, { cause });
}
