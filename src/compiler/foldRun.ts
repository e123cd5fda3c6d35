import { initialTransition, transition } from 'xstate';
import type { RunEvent } from '../events/types.js';
import type { RunState } from '../projections/runState.js';
import type { PlaybookMachine } from './compilePlaybook.js';

/** A folded run: the machine snapshot (state value + context) after some events. */
export interface RunSnapshot {
  value: unknown;
  context: RunState;
  status: 'active' | 'done' | 'error' | 'stopped';
}

/** An event the machine does not accept where the run stands: the log is corrupt or not this playbook's. */
export class FoldError extends Error {
  readonly event: RunEvent;
  constructor(event: RunEvent, value: unknown) {
    super(`event ${event.seq} (${event.type}) of run '${event.runId}' is not allowed in state ${JSON.stringify(value)}`);
    this.name = 'FoldError';
    this.event = event;
  }
}

/** The snapshot before any event. Pure. */
export function initialRunSnapshot(machine: PlaybookMachine): RunSnapshot {
  return initialTransition(machine)[0] as RunSnapshot;
}

/**
 * Folds events into a snapshot through xstate's pure `transition`. Strict: an
 * event the machine does not accept, or one out of seq order, throws FoldError
 * rather than being skipped, so a bad log is never silently "replayed".
 *
 * Pure. `foldRun(m, foldRun(m, s, a), b)` equals `foldRun(m, s, [...a, ...b])`.
 */
export function foldRun(machine: PlaybookMachine, snapshot: RunSnapshot, events: readonly RunEvent[]): RunSnapshot {
  let current = snapshot;
  for (const event of events) {
    if (event.seq !== current.context.version + 1) throw new FoldError(event, current.value);
    const [next] = transition(machine, current as never, event as never);
    if (next === (current as unknown)) throw new FoldError(event, current.value);
    current = next as RunSnapshot;
  }
  return current;
}
