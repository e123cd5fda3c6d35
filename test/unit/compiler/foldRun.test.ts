/**
 * foldRun folds through the machine's transition table, and foldRunWithXstate
 * through `machine.transition` with one shared inert scope per machine; both
 * instead of xstate's `transition()` wrapper (which builds a new actor per
 * event). All three must be indistinguishable: same snapshot after every event
 * of every golden log, and the same refusal of events the machine does not
 * accept. (test/property/machineTable.test.ts checks the table on random runs.)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { transition } from 'xstate';
import { describe, expect, it } from 'vitest';
import { compilePlaybook } from '../../../src/compiler/compilePlaybook.js';
import type { PlaybookMachine } from '../../../src/compiler/compilePlaybook.js';
import { FoldError, foldRun, foldRunWithXstate, initialRunSnapshot, initialRunSnapshotWithXstate } from '../../../src/compiler/foldRun.js';
import type { RunSnapshot } from '../../../src/compiler/foldRun.js';
import type { RunEvent } from '../../../src/events/types.js';
import { parsePlaybook } from '../../../src/playbook/parsePlaybook.js';

const dir = join(import.meta.dirname, '..', '..', 'fixtures', 'logs');
const goldens = readdirSync(dir).filter((file) => file.endsWith('.json'));

function load(file: string): { machine: PlaybookMachine; events: RunEvent[] } {
  const { events } = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { events: RunEvent[] };
  const started = events[0];
  if (started?.type !== 'RunStarted') throw new Error(`${file} does not start with RunStarted`);
  return { machine: compilePlaybook(parsePlaybook(started.data.source).definition), events };
}

/** The reference: xstate's own pure transition(), one throwaway actor per event. */
function referenceStep(machine: PlaybookMachine, snapshot: RunSnapshot, event: RunEvent): RunSnapshot {
  return transition(machine, snapshot as never, event as never)[0] as unknown as RunSnapshot;
}

const observable = (snapshot: RunSnapshot) => ({ value: snapshot.value, context: snapshot.context, status: snapshot.status });

describe('foldRun', () => {
  it.each(goldens)('%s: equals xstate transition() after every event', (file) => {
    const { machine, events } = load(file);
    let ours = initialRunSnapshot(machine);
    let scoped = initialRunSnapshotWithXstate(machine);
    let reference = initialRunSnapshotWithXstate(machine);
    expect(observable(ours)).toEqual(observable(reference));
    for (const event of events) {
      ours = foldRun(machine, ours, [event]);
      scoped = foldRunWithXstate(machine, scoped, [event]);
      reference = referenceStep(machine, reference, event);
      expect(observable(ours), `after event ${event.seq} (${event.type})`).toEqual(observable(reference));
      expect(observable(scoped), `after event ${event.seq} (${event.type}), inert scope`).toEqual(observable(reference));
    }
    // Folding the whole log at once gives the same as event by event.
    expect(observable(foldRun(machine, initialRunSnapshot(machine), events))).toEqual(observable(ours));
  });

  it('refuses an event the machine does not accept, and one out of order, as xstate would', () => {
    const { machine, events } = load(goldens[0] as string);
    const started = foldRun(machine, initialRunSnapshot(machine), events.slice(0, 1));
    const xstarted = foldRunWithXstate(machine, initialRunSnapshotWithXstate(machine), events.slice(0, 1));
    const completed = { ...events.at(-1), seq: 2, type: 'RunCompleted', data: {} } as RunEvent;
    // xstate leaves the snapshot unchanged for an event with no enabled transition; foldRun calls that corrupt.
    expect(referenceStep(machine, xstarted, completed)).toBe(xstarted);
    expect(() => foldRun(machine, started, [completed])).toThrow(FoldError);
    expect(() => foldRunWithXstate(machine, xstarted, [completed])).toThrow(FoldError);
    expect(() => foldRun(machine, started, [{ ...(events[1] as RunEvent), seq: 3 }])).toThrow(FoldError);
    expect(() => foldRunWithXstate(machine, xstarted, [{ ...(events[1] as RunEvent), seq: 3 }])).toThrow(FoldError);
  });

  it('shares nothing between machines: two playbooks folded in turn stay independent', () => {
    const [a, b] = [load(goldens[0] as string), load(goldens[1] as string)];
    let left = initialRunSnapshot(a.machine);
    let right = initialRunSnapshot(b.machine);
    for (let i = 0; i < Math.max(a.events.length, b.events.length); i++) {
      if (a.events[i]) left = foldRun(a.machine, left, [a.events[i] as RunEvent]);
      if (b.events[i]) right = foldRun(b.machine, right, [b.events[i] as RunEvent]);
    }
    expect(observable(left)).toEqual(observable(a.events.reduce((s, e) => referenceStep(a.machine, s, e), initialRunSnapshotWithXstate(a.machine))));
    expect(observable(right)).toEqual(observable(b.events.reduce((s, e) => referenceStep(b.machine, s, e), initialRunSnapshotWithXstate(b.machine))));
  });
});
