import { foldRun } from '../compiler/foldRun.js';
import type { RunSnapshot } from '../compiler/foldRun.js';
import type { PlaybookMachine } from '../compiler/compilePlaybook.js';
import type { RunEvent } from '../events/types.js';

/**
 * The fold after each event: element `i` is the run's snapshot once
 * `events[0..i]` are applied to `snapshot`. What a timeline or an audit shows
 * when it steps through a run one event at a time.
 *
 * Pure. As strict as `foldRun` (throws FoldError on an event the machine does
 * not accept), and the last element equals `foldRun(machine, snapshot, events)`.
 * An empty `events` gives `[]`.
 *
 * @example
 * const steps = foldRunSteps(machine, initialRunSnapshot(machine), events);
 * steps.map((s) => s.value); // ['active', ...] one state value per event
 */
export function foldRunSteps(machine: PlaybookMachine, snapshot: RunSnapshot, events: readonly RunEvent[]): RunSnapshot[] {
  const steps: RunSnapshot[] = [];
  let current = snapshot;
  for (const event of events) {
    current = foldRun(machine, current, [event]);
    steps.push(current);
  }
  return steps;
}
