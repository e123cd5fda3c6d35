import type { PlaybookMachine } from '../compiler/compilePlaybook.js';
import type { PlaybookModel } from '../compiler/playbookModel.js';
import { initialRunSnapshot } from '../compiler/foldRun.js';
import type { RunSnapshot } from '../compiler/foldRun.js';
import type { RunEvent } from '../events/types.js';
import type { PlaybookDefinition } from '../playbook/types.js';
import { foldRunSteps } from '../projections/foldRunSteps.js';
import type { EventStore } from '../store/eventStore.js';
import { loadRun } from './loadRun.js';

/** A stored run read back for audit: its pinned playbook, compiled machine, events and the fold after each. */
export interface RunReplay {
  runId: string;
  /** The playbook the run was started with (parsed from the text pinned in `RunStarted`). */
  playbook: PlaybookDefinition;
  /** SHA-256 of the pinned playbook text. */
  sourceHash: string;
  /** The playbook indexed (nodes, branches, edges): what reads of the state value need. */
  model: PlaybookModel;
  /** The machine compiled from that text: what the log is folded through. */
  machine: PlaybookMachine;
  events: RunEvent[];
  /** The snapshot before the first event. */
  initial: RunSnapshot;
  /** `steps[i]` is the fold after `events[i]`; the last one is the run's current state. */
  steps: RunSnapshot[];
}

/**
 * Reads a run's log and replays it through the playbook text it was started
 * with (never the file as it is today), keeping the state after every event.
 * Read-only: runs no node and writes nothing. Cost is O(events).
 *
 * Throws E_RUN_NOT_FOUND, or E_LOG_CORRUPT when the pinned text does not match
 * its hash or the log does not fold.
 *
 * @example
 * const { events, steps } = await replayRun(store, runId);
 * events.forEach((event, i) => console.log(event.seq, event.type, steps[i].value));
 */
export async function replayRun(store: EventStore, runId: string): Promise<RunReplay> {
  const { playbook, events } = await loadRun(store, runId);
  const initial = initialRunSnapshot(playbook.machine);
  return {
    runId,
    playbook: playbook.model.definition,
    sourceHash: playbook.sourceHash,
    model: playbook.model,
    machine: playbook.machine,
    events,
    initial,
    steps: foldRunSteps(playbook.machine, initial, events),
  };
}
