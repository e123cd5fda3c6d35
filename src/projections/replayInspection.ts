/**
 * A stored run turned into the XState inspection protocol: the records a live
 * actor's inspector would have produced, rebuilt from the log alone (no
 * dispatcher, no actor, no clock).
 *
 * The record shapes are those `@statelyai/inspect` sends over its WebSocket
 * and browser adapters (`@xstate.actor`, `@xstate.event`, `@xstate.snapshot`
 * with `sessionId`, `rootId`, `createdAt`, `id`, `_version`), so a receiver
 * built for that package (Stately's inspector, `createWebSocketReceiver`)
 * accepts them.
 */
import type { PlaybookMachine } from '../compiler/compilePlaybook.js';
import { initialRunSnapshot } from '../compiler/foldRun.js';
import type { RunSnapshot } from '../compiler/foldRun.js';
import type { RunEvent } from '../events/types.js';
import { foldRunSteps } from './foldRunSteps.js';
import type { RunState } from '../compiler/runState.js';

/** The `_version` field of every record: the `@statelyai/inspect` protocol version the shapes follow. */
export const INSPECTION_PROTOCOL_VERSION = '0.7.2';

/** A snapshot as inspection records carry it: state value, context (the run fold) and actor status. */
export interface InspectedRunSnapshot {
  value: unknown;
  context: RunState;
  status: RunSnapshot['status'];
}

/** What an actor received: a stored run event, or XState's start event. */
export type InspectedEvent = RunEvent | { type: 'xstate.init' };

/** Fields every record has. `rootId` equals `sessionId`: a run is a single root actor. */
interface InspectionRecordBase {
  sessionId: string;
  rootId: string;
  /** Milliseconds since the epoch, as a string: when the event was recorded in the log. */
  createdAt: string;
  /** Unique within the replay: `<sessionId>:<seq>:<kind>`. */
  id: string;
  _version: string;
}

/** The actor was created: its name (the machine id), its definition (machine config as JSON text) and its first snapshot. */
export interface InspectionActorRecord extends InspectionRecordBase {
  type: '@xstate.actor';
  name: string;
  definition: string;
  snapshot: InspectedRunSnapshot;
}

/** The actor received an event. */
export interface InspectionEventRecord extends InspectionRecordBase {
  type: '@xstate.event';
  event: InspectedEvent;
}

/** The actor's snapshot after an event. */
export interface InspectionSnapshotRecord extends InspectionRecordBase {
  type: '@xstate.snapshot';
  event: InspectedEvent;
  snapshot: InspectedRunSnapshot;
}

/** One record of the inspection stream. */
export type InspectionRecord = InspectionActorRecord | InspectionEventRecord | InspectionSnapshotRecord;

export interface ReplayInspectionOptions {
  /** The actor's session id in the records (default: the run id). */
  sessionId?: string;
}

/**
 * Replays a run's log as an inspection stream, in the order a live actor emits
 * it: `@xstate.actor` (initial snapshot), `@xstate.event` + `@xstate.snapshot`
 * for `xstate.init`, then for every stored event its `@xstate.event` and the
 * `@xstate.snapshot` of the fold after it. So the stream has `3 + 2 * n`
 * records for `n` events, and the snapshot after event `i` equals
 * `foldRun(machine, initial, events.slice(0, i + 1))`.
 *
 * Pure: timestamps come from the events' `at`. `events` must be a whole log
 * from seq 1 (a prefix is fine); like `foldRun` it throws FoldError on an
 * event the machine does not accept. Records share structure with the
 * snapshots: treat them as read-only.
 *
 * @example
 * const records = replayInspection(compilePlaybook(definition), events);
 * for (const record of records) socket.send(JSON.stringify(record));
 */
export function replayInspection(machine: PlaybookMachine, events: readonly RunEvent[], options: ReplayInspectionOptions = {}): InspectionRecord[] {
  const first = events[0];
  const sessionId = options.sessionId ?? first?.runId ?? 'run';
  const base = (seq: number, kind: string, at: string | undefined) => ({
    sessionId,
    rootId: sessionId,
    createdAt: epochMillis(at),
    id: `${sessionId}:${seq}:${kind}`,
    _version: INSPECTION_PROTOCOL_VERSION,
  });
  const initial = initialRunSnapshot(machine);
  const init: InspectedEvent = { type: 'xstate.init' };
  const records: InspectionRecord[] = [
    {
      type: '@xstate.actor',
      ...base(0, 'actor', first?.at),
      name: String((machine.config as { id?: unknown }).id ?? machine.id),
      definition: JSON.stringify(machine.config),
      snapshot: inspected(initial),
    },
    { type: '@xstate.event', ...base(0, 'event', first?.at), event: init },
    { type: '@xstate.snapshot', ...base(0, 'snapshot', first?.at), event: init, snapshot: inspected(initial) },
  ];
  const steps = foldRunSteps(machine, initial, events);
  events.forEach((event, index) => {
    records.push({ type: '@xstate.event', ...base(event.seq, 'event', event.at), event });
    records.push({ type: '@xstate.snapshot', ...base(event.seq, 'snapshot', event.at), event, snapshot: inspected(steps[index] as RunSnapshot) });
  });
  return records;
}

function inspected(snapshot: RunSnapshot): InspectedRunSnapshot {
  return { value: snapshot.value, context: snapshot.context, status: snapshot.status };
}

/** `at` as epoch milliseconds in a string (the protocol's `createdAt`); the text itself when it is not a date. */
function epochMillis(at: string | undefined): string {
  if (at === undefined) return '0';
  const ms = Date.parse(at);
  return Number.isFinite(ms) ? String(ms) : at;
}
