/**
 * Live inspection (HostOptions.inspect) and replayed inspection
 * (replayInspection) describe a run the same way: one @xstate.event per stored
 * event, in log order, each followed by the @xstate.snapshot of the fold.
 */
import { createInspector, createWebSocketInspector } from '@statelyai/inspect';
import type { StatelyInspectionEvent } from '@statelyai/inspect';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import type { InspectionEvent } from 'xstate';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  approveGate,
  compilePlaybook,
  executePlaybook,
  foldRun,
  initialRunSnapshot,
  readRunEvents,
  replayInspection,
  replayRun,
  resumePlaybook,
} from '../../../src/index.js';
import type { EventStore, InspectionRecord, RunEvent } from '../../../src/index.js';
import { manualClock, playbookFrom, scriptedDispatcher, SECRET, success, tempStore } from '../../helpers/runtimeHarness.js';

let store: EventStore;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ store, cleanup } = await tempStore()));
afterEach(() => cleanup());

const retrying = playbookFrom(`
version: "1.0"
name: build
nodes:
  - { id: compile, type: agentic, skill: cc, on_failure: { max_iterations: 2 } }
  - { id: test, type: agentic, skill: tt, depends: [compile] }
`);

const gated = playbookFrom(`
version: "1.0"
name: gated
nodes:
  - { id: prepare, type: agentic, skill: prep }
  - { id: review, type: approval, prompt: "Ship {{prepare}}?", depends: [prepare] }
  - { id: ship, type: agentic, skill: ship, depends: [review] }
`);

/** The three inspection event types a run produces (XState also emits microsteps and actions). */
const lifecycle = (event: { type: string }): boolean => ['@xstate.actor', '@xstate.event', '@xstate.snapshot'].includes(event.type);

interface Shape {
  type: string;
  event?: string;
  seq?: number;
  value?: unknown;
  status?: unknown;
}

/**
 * What both streams must agree on: kind, event type and seq, state value and
 * status. Not the snapshot of an @xstate.actor record: live inspectors read it
 * from the actor when they convert the event (later), so it is not the
 * initial one; the @xstate.snapshot after `xstate.init` is.
 */
function shapeOf(record: { type: string; event?: unknown; snapshot?: unknown }): Shape {
  const shape: Shape = { type: record.type };
  if (record.type === '@xstate.actor') return shape;
  const event = record.event as { type?: string; seq?: number } | undefined;
  if (event?.type !== undefined) shape.event = event.type;
  if (event?.seq !== undefined) shape.seq = event.seq;
  const snapshot = record.snapshot as { value?: unknown; status?: unknown } | undefined;
  if (snapshot !== undefined) Object.assign(shape, { value: snapshot.value, status: snapshot.status });
  return shape;
}

function liveShape(event: InspectionEvent): Shape {
  return shapeOf(event as { type: string; event?: unknown; snapshot?: unknown });
}

/** The run events an actor received (everything after XState's init event). */
function runEventsOf(stream: readonly InspectionEvent[]): RunEvent[] {
  return stream.flatMap((e) => (e.type === '@xstate.event' && e.event.type !== 'xstate.init' ? [e.event as unknown as RunEvent] : []));
}

function foldPrefix(events: readonly RunEvent[], n: number) {
  const machine = compilePlaybook(retrying.playbook);
  return foldRun(machine, initialRunSnapshot(machine), events.slice(0, n));
}

describe('live inspection (HostOptions.inspect)', () => {
  it('sees the actor, then every run event in log order, each followed by the snapshot of the fold', async () => {
    const seen: InspectionEvent[] = [];
    const dispatcher = scriptedDispatcher({ compile: [{ status: 'failure', error: 'flaky' }, success({ built: true })] });
    const result = await executePlaybook({ store, ...retrying, dispatcher, now: manualClock().now, inspect: (event) => seen.push(event) });
    expect(result.terminalStatus).toBe('completed');
    const events = await readRunEvents(store, result.runId);
    const live = seen.filter(lifecycle);

    // The actor, XState's init event and the snapshot before anything happened.
    expect(live.slice(0, 3).map((e) => e.type)).toEqual(['@xstate.actor', '@xstate.event', '@xstate.snapshot']);
    expect(live[1]?.type === '@xstate.event' && live[1].event.type).toBe('xstate.init');
    expect(live[2]?.type === '@xstate.snapshot' && live[2].snapshot).toMatchObject({ value: 'idle', status: 'active' });

    // Then exactly the stored events, as stored (seq, hash and all), in order.
    const rest = live.slice(3);
    expect(rest).toHaveLength(2 * events.length);
    expect(rest.filter((e) => e.type === '@xstate.event').map((e) => (e as { event: unknown }).event)).toEqual(events);
    events.forEach((event, i) => {
      const snapshot = rest[2 * i + 1];
      if (snapshot?.type !== '@xstate.snapshot') throw new Error(`expected a snapshot after event ${event.seq}, got ${snapshot?.type}`);
      expect(snapshot.event).toEqual(event);
      const folded = foldPrefix(events, i + 1);
      const actual = snapshot.snapshot as unknown as { value: unknown; context: unknown; status: unknown };
      expect({ value: actual.value, context: actual.context, status: actual.status }).toEqual({ value: folded.value, context: folded.context, status: folded.status });
    });
    expect(rest.at(-1)).toMatchObject({ type: '@xstate.snapshot', snapshot: { value: 'completed', status: 'done' } });
    // All of it came from one root actor.
    expect(new Set(live.map((e) => e.actorRef.sessionId)).size).toBe(1);
    expect(new Set(live.map((e) => e.rootId)).size).toBe(1);
  });

  it('equals the replay of the stored log, record for record', async () => {
    const seen: InspectionEvent[] = [];
    const dispatcher = scriptedDispatcher({ compile: [{ status: 'failure', error: 'flaky' }, success()] });
    const { runId } = await executePlaybook({ store, ...retrying, dispatcher, inspect: { next: (event) => seen.push(event) } });
    const replay = await replayRun(store, runId);
    const records = replayInspection(replay.machine, replay.events);
    expect(seen.filter(lifecycle).map(liveShape)).toEqual(records.map(shapeOf));
  });

  it('resumePlaybook takes an observer too: it starts from the fold of the whole log, decision included', async () => {
    const clock = manualClock();
    const paused: InspectionEvent[] = [];
    const first = await executePlaybook({ store, ...gated, dispatcher: scriptedDispatcher(), approvalSecret: SECRET, now: clock.now, inspect: (e) => paused.push(e) });
    expect(first.terminalStatus).toBe('pending_approval');
    const token = first.approvalToken as string;
    await approveGate({ store, token, approver: 'ana', approvalSecret: SECRET, now: clock.now });
    const beforeResume = await readRunEvents(store, first.runId);

    const resumed: InspectionEvent[] = [];
    const done = await resumePlaybook({ store, approvalToken: token, dispatcher: scriptedDispatcher(), approvalSecret: SECRET, now: clock.now, inspect: (e) => resumed.push(e) });
    expect(done.terminalStatus).toBe('completed');
    const events = await readRunEvents(store, first.runId);

    const pausedEvents = runEventsOf(paused);
    expect(pausedEvents).toEqual(events.filter((e) => e.seq <= pausedEvents.length));
    expect(pausedEvents.at(-1)?.type).toBe('RunPaused');

    expect(resumed.filter(lifecycle).slice(0, 2).map((e) => e.type)).toEqual(['@xstate.actor', '@xstate.event']);
    const start = resumed.filter(lifecycle)[2];
    const machine = compilePlaybook(gated.playbook);
    const atResume = foldRun(machine, initialRunSnapshot(machine), beforeResume);
    expect(start?.type === '@xstate.snapshot' && start.snapshot).toMatchObject({ value: atResume.value, context: atResume.context });
    const resumedEvents = runEventsOf(resumed);
    expect(resumedEvents).toEqual(events.slice(beforeResume.length));
    expect(resumedEvents.map((e) => e.type)).toEqual(['RunResumed', 'NodeStarted', 'NodeSucceeded', 'RunCompleted']);
  });
});

describe('@statelyai/inspect observers', () => {
  it("createInspector's `inspect` plugs into executePlaybook and emits what replayInspection rebuilds", async () => {
    const sent: StatelyInspectionEvent[] = [];
    const inspector = createInspector({ send: (event) => sent.push(event) });
    const { runId } = await executePlaybook({ store, ...retrying, dispatcher: scriptedDispatcher(), inspect: inspector.inspect });
    const replay = await replayRun(store, runId);
    const records = replayInspection(replay.machine, replay.events);
    // The inspector converts on an idle callback (a zero timeout in Node).
    await vi.waitFor(() => expect(sent).toHaveLength(records.length));
    expect(sent.map(shapeOf)).toEqual(records.map(shapeOf));
    const actor = sent[0];
    if (actor?.type !== '@xstate.actor') throw new Error('the first record must announce the actor');
    // The package cuts the definition at depth 10 ("[Object]"); the replay sends it whole.
    const theirs = JSON.parse(actor.definition as string) as { id: string; states: object };
    const ours = JSON.parse((records[0] as { definition: string }).definition) as { id: string; states: object };
    expect(ours).toEqual(JSON.parse(JSON.stringify(replay.machine.config)));
    expect(theirs.id).toBe(ours.id);
    expect(Object.keys(theirs.states).sort()).toEqual(Object.keys(ours.states).sort());
    expect(actor.name).toBe('build');
    // The replayed records carry the same top-level fields as the package's own.
    for (const [index, record] of records.entries()) {
      const theirRecord = sent[index] as unknown as Record<string, unknown>;
      const fromPackage = Object.keys(theirRecord).filter((key) => theirRecord[key] !== undefined);
      expect(Object.keys(record).sort()).toEqual(fromPackage.sort());
    }
  });

  it('createWebSocketInspector streams a live run to a WebSocket receiver', async () => {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const received: StatelyInspectionEvent[] = [];
    server.on('connection', (socket) => socket.on('message', (data) => received.push(JSON.parse(String(data)) as StatelyInspectionEvent)));
    const { port } = server.address() as AddressInfo;
    const inspector = createWebSocketInspector({ url: `ws://127.0.0.1:${port}` });
    try {
      const { runId } = await executePlaybook({ store, ...retrying, dispatcher: scriptedDispatcher(), inspect: inspector.inspect });
      const replay = await replayRun(store, runId);
      const records: InspectionRecord[] = replayInspection(replay.machine, replay.events);
      await vi.waitFor(() => expect(received).toHaveLength(records.length), { timeout: 5000 });
      expect(received.map(shapeOf)).toEqual(JSON.parse(JSON.stringify(records.map(shapeOf))));
    } finally {
      inspector.stop();
      for (const client of server.clients) client.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('replayInspection (pure)', () => {
  it('gives 3 + 2n records whose snapshots are the fold after each event, stamped with the event time', async () => {
    const clock = manualClock('2026-03-01T10:00:00.000Z');
    const { runId } = await executePlaybook({ store, ...retrying, dispatcher: scriptedDispatcher(), now: clock.now });
    const events = await readRunEvents(store, runId);
    const records = replayInspection(compilePlaybook(retrying.playbook), events, { sessionId: 'audit-1' });
    expect(records).toHaveLength(3 + 2 * events.length);
    expect(new Set(records.map((r) => r.sessionId))).toEqual(new Set(['audit-1']));
    expect(new Set(records.map((r) => r.rootId))).toEqual(new Set(['audit-1']));
    expect(new Set(records.map((r) => r.id)).size).toBe(records.length);
    events.forEach((event, i) => {
      const snapshot = records[4 + 2 * i];
      const folded = foldPrefix(events, i + 1);
      expect(snapshot).toMatchObject({ type: '@xstate.snapshot', event: { seq: event.seq }, createdAt: String(Date.parse('2026-03-01T10:00:00.000Z')) });
      expect(snapshot?.type === '@xstate.snapshot' && snapshot.snapshot).toEqual({ value: folded.value, context: folded.context, status: folded.status });
    });
    // A prefix of the log replays to a prefix of the stream.
    expect(replayInspection(compilePlaybook(retrying.playbook), events.slice(0, 2), { sessionId: 'audit-1' })).toEqual(records.slice(0, 7));
  });
});
