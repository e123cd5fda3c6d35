import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../src/events/canonicalJson.js';
import type { RunEvent } from '../../../src/events/types.js';
import { FoldDraft, emptyRunState, evolve } from '../../../src/compiler/runState.js';
import type { RunState } from '../../../src/compiler/runState.js';
import { compileSource } from '../../../src/runtime/playbookCache.js';

const dir = join(import.meta.dirname, '..', '..', 'fixtures', 'logs');
const goldens = readdirSync(dir).filter((f) => f.endsWith('.json'));
const logOf = (file: string) => (JSON.parse(readFileSync(join(dir, file), 'utf8')) as { events: RunEvent[] }).events;

describe('evolve with a FoldDraft', () => {
  it.each(goldens)('%s: the draft fold equals the pure fold after every event, and never touches what it started from', (file) => {
    const events = logOf(file);
    const started = events[0] as Extract<RunEvent, { type: 'RunStarted' }>;
    const { model } = compileSource(started.data.source, { pinned: true });
    const draft = new FoldDraft();
    let pure: RunState = emptyRunState();
    let drafted: RunState = emptyRunState();
    // Every snapshot the pure fold made, frozen in text: the draft must never change one of them.
    const seen: [RunState, string][] = [];
    for (const event of events) {
      pure = evolve(model, pure, event);
      seen.push([pure, canonicalJson(pure)]);
      const eventText = canonicalJson(event);
      drafted = evolve(model, drafted, event, draft);
      expect(drafted).toEqual(pure);
      expect(canonicalJson(event)).toBe(eventText);
    }
    for (const [state, text] of seen) expect(canonicalJson(state)).toBe(text);
  });

  it('copies a map it did not make once, then writes that copy in place', () => {
    const draft = new FoldDraft();
    const given = { a: 1 };
    const first = draft.writable(given);
    expect(first).not.toBe(given);
    expect(draft.writable(first)).toBe(first);
    first.a = 2;
    expect(given).toEqual({ a: 1 });
    expect(new FoldDraft().writable(first)).not.toBe(first);
  });

  it('a draft fold of a long run copies each map once (linear), where the pure fold copies the context per event', () => {
    const nodes = 400;
    const lines = ['name: long', 'version: "1.0"', 'nodes:'];
    for (let i = 0; i < nodes; i++) lines.push(`  - id: n${i}`, '    type: agentic', '    skill: a');
    lines.push('edges:');
    for (let i = 1; i < nodes; i++) lines.push(`  - { from: n${i - 1}, to: n${i} }`);
    const source = lines.join('\n') + '\n';
    const { model } = compileSource(source);
    const at = '2026-01-01T00:00:00.000Z';
    const events: RunEvent[] = [{ runId: 'r', seq: 1, globalSeq: 1, type: 'RunStarted', at, hash: '', data: { playbookName: 'long', sourceHash: 'x', source, context: {}, maxIterationsDefault: 3 } } as RunEvent];
    for (let i = 0; i < nodes; i++) {
      const seq = events.length + 1;
      events.push({ runId: 'r', seq, globalSeq: seq, type: 'NodeStarted', at, hash: '', data: { nodeId: `n${i}`, attempt: 1 } } as RunEvent);
      events.push({ runId: 'r', seq: seq + 1, globalSeq: seq + 1, type: 'NodeSucceeded', at, hash: '', data: { nodeId: `n${i}`, attempt: 1, output: { [`k${i}`]: i } } } as RunEvent);
    }
    const draft = new FoldDraft();
    const contexts = new Set<object>();
    let state = emptyRunState();
    for (const event of events) {
      state = evolve(model, state, event, draft);
      contexts.add(state.context);
    }
    // RunStarted's own context, then the one copy the draft made and kept writing.
    expect(contexts.size).toBe(2);
    expect(Object.keys(state.context)).toHaveLength(nodes);
    expect(Object.keys(state.attempts)).toHaveLength(nodes);
  });
});
