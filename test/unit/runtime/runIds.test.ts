/** Run ids are time-ordered UUIDv7 from the injected clock (issue 10: random ids doubled the raw insert cost). */
import { describe, expect, it } from 'vitest';
import { executePlaybook, newRunId } from '../../../src/runtime/executePlaybook.js';
import { manualClock, playbookFrom, scriptedDispatcher, tempStore } from '../../helpers/runtimeHarness.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const msOf = (id: string) => Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16);

describe('run ids', () => {
  it('are UUIDv7 whose time part is the injected clock', () => {
    const clock = manualClock('2026-12-01T10:00:00.000Z');
    const id = newRunId(clock.now);
    expect(id).toMatch(UUID_V7);
    expect(msOf(id)).toBe(Date.parse('2026-12-01T10:00:00.000Z'));
  });

  it('of runs started later sort later', async () => {
    const { store, cleanup } = await tempStore();
    const clock = manualClock();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      clock.advance(1);
      const result = await executePlaybook({ store, ...playbookFrom('version: "1.0"\nname: one\nnodes:\n  - { id: a, type: agentic, skill: s }\n'), dispatcher: scriptedDispatcher(), now: clock.now });
      ids.push(result.runId);
    }
    expect(ids.every((id) => UUID_V7.test(id))).toBe(true);
    expect([...ids].sort()).toEqual(ids);
    await cleanup();
  });
});
