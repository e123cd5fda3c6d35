import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { executePlaybook } from '../../../src/runtime/executePlaybook.js';
import { formatAnchor } from '../../../src/events/anchor.js';
import { GENESIS_HASH, hashEvent } from '../../../src/events/hashChain.js';
import type { RunEvent } from '../../../src/events/types.js';
import { getRunHead, rebuildProjections, verifyRun, verifyStore } from '../../../src/runtime/queries.js';
import { recoverRun } from '../../../src/runtime/recoverRun.js';
import type { EventStore } from '../../../src/store/eventStore.js';
import { playbookFrom, scriptedDispatcher, tempStore } from '../../helpers/runtimeHarness.js';
import type { TestStore } from '../../helpers/testStores.js';

let store: EventStore;
let testStore: TestStore;
beforeEach(async () => ({ store } = testStore = await tempStore()));
afterEach(() => testStore.cleanup());

const pb = playbookFrom(`version: "1.0"\nname: v\nnodes:\n  - { id: a, type: agentic, skill: s }\n  - { id: b, type: agentic, skill: s, depends: [a] }\n`);

async function completedRun(): Promise<string> {
  const result = await executePlaybook({ store, ...pb, dispatcher: scriptedDispatcher({ a: [{ status: 'success', output: { amount: 10 } }] }) });
  return result.runId;
}

/** Edits the database behind the store's back, as an attacker or a bad tool would. */
function tamper(sql: string, ...params: unknown[]): Promise<void> {
  return testStore.rawSql(sql, ...params);
}

describe('verifyRun', () => {
  it('passes on an untouched run', async () => {
    const runId = await completedRun();
    const events = await store.readRun(runId);
    expect(await verifyRun(store, runId)).toEqual({ runId, ok: true, problems: [], head: { runId, seq: events.length, hash: events.at(-1)?.hash } });
  });

  it('detects an edited event', async () => {
    const runId = await completedRun();
    await tamper(`UPDATE events SET data = replace(data, '"amount":10', '"amount":1000') WHERE run_id = ? AND seq = 3`, runId);
    const result = await verifyRun(store, runId);
    expect(result.ok).toBe(false);
    expect(result.problems).toContainEqual(expect.objectContaining({ kind: 'hash_mismatch', seq: 3 }));
  });

  it('detects a deleted event in the middle and at the end', async () => {
    const runId = await completedRun();
    await tamper('DELETE FROM events WHERE run_id = ? AND seq = 4', runId);
    expect((await verifyRun(store, runId)).problems).toContainEqual(expect.objectContaining({ kind: 'seq_gap' }));

    const other = await completedRun();
    await tamper('DELETE FROM events WHERE run_id = ? AND seq = (SELECT max(seq) FROM events WHERE run_id = ?)', other, other);
    const result = await verifyRun(store, other);
    expect(result.ok).toBe(false);
    expect(result.problems).toContainEqual(expect.objectContaining({ kind: 'projection_mismatch' }));
  });

  it('detects a projection edited away from the fold, and rebuildProjections repairs it', async () => {
    const runId = await completedRun();
    await tamper(`UPDATE runs SET status = 'running' WHERE run_id = ?`, runId);
    const reopened = await testStore.open();
    expect((await verifyRun(reopened, runId)).problems).toEqual([expect.objectContaining({ kind: 'projection_mismatch', message: expect.stringContaining('status') })]);
    await rebuildProjections(reopened, runId);
    expect((await verifyRun(reopened, runId)).ok).toBe(true);
  });

  it('verifyStore checks every run; a corrupt log is reported, not thrown, and recoverRun refuses it with E_LOG_CORRUPT', async () => {
    const good = await completedRun();
    const bad = await completedRun();
    await tamper(`UPDATE events SET type = 'RunCompleted', data = '{}' WHERE run_id = ? AND seq = 2`, bad);
    const results = await verifyStore(store);
    expect(results.find((r) => r.runId === good)?.ok).toBe(true);
    expect(results.find((r) => r.runId === bad)?.problems.map((p) => p.kind)).toEqual(expect.arrayContaining(['hash_mismatch', 'unreplayable']));
    await expect(recoverRun({ store, runId: bad, dispatcher: scriptedDispatcher() })).rejects.toMatchObject({ code: 'E_LOG_CORRUPT' });
  });

  it('unknown runs are E_RUN_NOT_FOUND', async () => {
    await expect(verifyRun(store, 'nope')).rejects.toMatchObject({ code: 'E_RUN_NOT_FOUND' });
    await expect(recoverRun({ store, runId: 'nope', dispatcher: scriptedDispatcher() })).rejects.toMatchObject({ code: 'E_RUN_NOT_FOUND' });
  });
});

/** Rewrites one event's data and recomputes the chain from there to the end, then rebuilds the projections: a careful forger. */
async function rewriteHistory(runId: string, seq: number, edit: (data: Record<string, unknown>) => Record<string, unknown>): Promise<void> {
  const events = await store.readRun(runId);
  let prev = GENESIS_HASH;
  for (const event of events) {
    const data = event.seq === seq ? edit(event.data as Record<string, unknown>) : event.data;
    const hash = hashEvent(prev, runId, event.seq, { ...event, data } as RunEvent);
    await tamper('UPDATE events SET data = ?, hash = ? WHERE run_id = ? AND seq = ?', JSON.stringify(data), hash, runId, event.seq);
    prev = hash;
  }
  await rebuildProjections(store, runId);
}

describe('anchors (verifyRun with {anchor})', () => {
  it('a whole-chain rewrite passes verify without an anchor, and fails with the anchor taken before it, naming the run and the seq', async () => {
    const runId = await completedRun();
    const { head } = await verifyRun(store, runId);
    const anchor = formatAnchor(head!);
    expect(await getRunHead(store, runId)).toEqual(head);
    await rewriteHistory(runId, 3, (data) => ({ ...data, output: { amount: 1000 } }));
    const blind = await verifyRun(store, runId);
    expect(blind.ok).toBe(true);
    expect(blind.head?.hash).not.toBe(head?.hash);
    const anchored = await verifyRun(store, runId, { anchor });
    expect(anchored.ok).toBe(false);
    expect(anchored.problems).toEqual([{ kind: 'anchor_mismatch', seq: head!.seq, message: expect.stringContaining(`run '${runId}'`) }]);
    // The object form works the same.
    expect((await verifyRun(store, runId, { anchor: head! })).ok).toBe(false);
  });

  it('an anchor taken mid-run still holds after the run goes on; a truncated log fails it', async () => {
    const result = await executePlaybook({
      store,
      ...playbookFrom(`version: "1.0"\nname: g\nnodes:\n  - { id: a, type: agentic, skill: s }\n  - { id: gate, type: approval, prompt: ok?, depends: [a] }\n  - { id: b, type: agentic, skill: s, depends: [gate] }\n`),
      dispatcher: scriptedDispatcher(),
    });
    const head = (await verifyRun(store, result.runId)).head!;
    const { approveGate, resumePlaybook } = await import('../../../src/runtime/gates.js');
    await approveGate({ store, token: result.approvalToken!, approver: 'alice' });
    await resumePlaybook({ store, approvalToken: result.approvalToken!, dispatcher: scriptedDispatcher() });
    expect(await verifyRun(store, result.runId, { anchor: head })).toMatchObject({ ok: true, problems: [] });
    await tamper('DELETE FROM events WHERE run_id = ? AND seq >= ?', result.runId, head.seq);
    const cut = await verifyRun(store, result.runId, { anchor: head });
    expect(cut.problems.map((p) => p.kind)).toContain('anchor_mismatch');
  });

  it('a malformed anchor, or one of another run, is E_USAGE', async () => {
    const runId = await completedRun();
    await expect(verifyRun(store, runId, { anchor: 'nonsense' })).rejects.toMatchObject({ code: 'E_USAGE' });
    await expect(verifyRun(store, runId, { anchor: `other-run:1:${'a'.repeat(64)}` })).rejects.toMatchObject({ code: 'E_USAGE' });
  });
});
