import { createActor, initialTransition } from 'xstate';
import type { AnyActorScope } from 'xstate';
import type { RunEvent } from '../events/types.js';
import { FoldDraft, evolve } from './runState.js';
import type { RunState } from './runState.js';
import { modelOfMachine } from './compilePlaybook.js';
import type { PlaybookMachine } from './compilePlaybook.js';
import { createMachineFold } from './machineTable.js';
import type { MachineFold } from './machineTable.js';

/**
 * A folded run: the machine's state value, context and status after some
 * events. `foldRun` returns exactly these three fields; an xstate
 * MachineSnapshot (from `foldRunWithXstate`) has them too.
 */
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

/** Options of {@link foldRun}. */
export interface FoldOptions {
  /**
   * Lets the fold update the run's maps in place (see FoldDraft): the caller
   * owns the result and reads only the latest snapshot folded with this draft.
   */
  draft?: FoldDraft;
}

/** The snapshot before any event: the machine's initial state, through its transition table. Pure. */
export function initialRunSnapshot(machine: PlaybookMachine): RunSnapshot {
  return createMachineFold(machine).initial();
}

/**
 * Folds events into a snapshot through the machine's transition table
 * (machineTable.ts), which a differential property proves equal to xstate's
 * pure `transition` after every event. Strict: an event the machine does not
 * accept, or one out of seq order, throws FoldError rather than being
 * skipped, so a bad log is never silently "replayed". Linear in the events.
 *
 * Pure without a draft: `foldRun(m, foldRun(m, s, a), b)` equals
 * `foldRun(m, s, [...a, ...b])`. One call owns the maps it makes until it
 * returns, so a long log costs one copy of each map, not one per event; with
 * `options.draft` that ownership spans calls (see FoldOptions). Returns plain
 * `{ value, context, status }` snapshots (no xstate methods).
 */
export function foldRun(machine: PlaybookMachine, snapshot: RunSnapshot, events: readonly RunEvent[], options: FoldOptions = {}): RunSnapshot {
  // Without a draft, one for this call: the maps it copies are its own until it returns.
  const fold = draftFold(machine, options.draft ?? new FoldDraft());
  let current = snapshot;
  for (const event of events) {
    if (event.seq !== current.context.version + 1) throw new FoldError(event, current.value);
    const next = fold.step(current, event);
    if (next === undefined) throw new FoldError(event, current.value);
    current = next;
  }
  return current;
}

const draftFolds = new WeakMap<FoldDraft, { machine: PlaybookMachine; fold: MachineFold }>();

/** The table fold whose `apply` is `evolve` writing in place under `draft` (made once per draft: a session folds one event at a time). */
function draftFold(machine: PlaybookMachine, draft: FoldDraft): MachineFold {
  const known = draftFolds.get(draft);
  if (known?.machine === machine) return known.fold;
  const model = modelOfMachine(machine);
  if (model === undefined) throw new TypeError(`machine '${machine.id}' was not compiled by compileModel`);
  const fold = createMachineFold(machine, (context, event) => evolve(model, context, event, draft));
  draftFolds.set(draft, { machine, fold });
  return fold;
}

/** As `initialRunSnapshot`, through xstate's `initialTransition`: an xstate MachineSnapshot. Pure. */
export function initialRunSnapshotWithXstate(machine: PlaybookMachine): RunSnapshot {
  return initialTransition(machine)[0] as RunSnapshot;
}

/**
 * As `foldRun`, through xstate's generic `machine.transition`: the reference
 * the table is checked against (test/property/machineTable.test.ts), and the
 * path for a snapshot that must stay an xstate MachineSnapshot. `snapshot`
 * must be one (from `initialRunSnapshotWithXstate` or this function).
 *
 * Pure. Throws FoldError exactly where `foldRun` does.
 */
export function foldRunWithXstate(machine: PlaybookMachine, snapshot: RunSnapshot, events: readonly RunEvent[]): RunSnapshot {
  const scope = inertScopeOf(machine);
  let current = snapshot;
  for (const event of events) {
    if (event.seq !== current.context.version + 1) throw new FoldError(event, current.value);
    const next = machine.transition(current as never, event as never, scope);
    if (next === (current as unknown)) throw new FoldError(event, current.value);
    current = next as RunSnapshot;
  }
  return current;
}

const scopes = new WeakMap<PlaybookMachine, AnyActorScope>();

/**
 * One inert actor scope per machine, reused for every event folded through it.
 * xstate's `transition(machine, snapshot, event)` is `machine.transition` with a
 * scope built by creating a throwaway actor per call; that actor (and the
 * initial snapshot its constructor computes) cost three quarters of a fold
 * (docs/performance.md). The machine's only action is `assign` (applied inside
 * `transition`), it has no children, delays or emitted events, so nothing ever
 * reaches the scope's executor, and a shared scope yields the same snapshots.
 */
function inertScopeOf(machine: PlaybookMachine): AnyActorScope {
  let scope = scopes.get(machine);
  if (scope === undefined) {
    const self = createActor(machine);
    scope = {
      self,
      id: '',
      sessionId: '',
      system: self.system,
      logger: () => undefined,
      defer: () => undefined,
      emit: () => undefined,
      stopChild: () => undefined,
      actionExecutor: (action) => {
        // Every action is an assign, resolved inside transition(); anything else would be a compiler bug.
        throw new TypeError(`the playbook machine tried to execute action '${action.type}' during a fold`);
      },
    } as AnyActorScope;
    scopes.set(machine, scope);
  }
  return scope;
}
