import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { executePlaybook } from '../../../src/runtime/executePlaybook.js';
import { rebuildProjections, verifyRun, verifyStore } from '../../../src/runtime/queries.js';
import { recoverRun } from '../../../src/runtime/recoverRun.js';
import type { EventStore } from '../../../src/store/eventStore.js';
import { openSqliteStore } from '../../../src/store/sqliteEventStore.js';
import { playbookFrom, scriptedDispatcher, tempStore } from '../../helpers/runtimeHarness.js';

let store: EventStore;
let path: string;
let cleanup: () => Promise<void>;
beforeEach(() => ({ store, path, cleanup } = tempStore()));
afterEach(() => cleanup());

const pb = playbookFrom(`version: "1.0"\nname: v\nnodes:\n  - { id: a, type: agentic, skill: s }\n  - { id: b, type: agentic, skill: s, depends: [a] }\n`);

async function completedRun(): Promise<string> {
  const result = await executePlaybook({ store, ...pb, dispatcher: scriptedDispatcher({ a: [{ status: 'success', output: { amount: 10 } }] }) });
  return result.runId;
}

/** Edits the file behind the store's back, as an attacker or a bad tool would. */
function tamper(sql: string, ...params: unknown[]): void {
  const db = new Database(path);
  db.prepare(sql).run(...params);
  db.close();
}

describe('verifyRun', () => {
  it('passes on an untouched run', async () => {
    const runId = await completedRun();
    expect(await verifyRun(store, runId)).toEqual({ runId, ok: true, problems: [] });
  });

  it('detects an edited event', async () => {
    const runId = await completedRun();
    tamper(`UPDATE events SET data = replace(data, '"amount":10', '"amount":1000') WHERE run_id = ? AND seq = 3`, runId);
    const result = await verifyRun(store, runId);
    expect(result.ok).toBe(false);
    expect(result.problems).toContainEqual(expect.objectContaining({ kind: 'hash_mismatch', seq: 3 }));
  });

  it('detects a deleted event in the middle and at the end', async () => {
    const runId = await completedRun();
    tamper('DELETE FROM events WHERE run_id = ? AND seq = 4', runId);
    expect((await verifyRun(store, runId)).problems).toContainEqual(expect.objectContaining({ kind: 'seq_gap' }));

    const other = await completedRun();
    tamper('DELETE FROM events WHERE run_id = ? AND seq = (SELECT max(seq) FROM events WHERE run_id = ?)', other, other);
    const result = await verifyRun(store, other);
    expect(result.ok).toBe(false);
    expect(result.problems).toContainEqual(expect.objectContaining({ kind: 'projection_mismatch' }));
  });

  it('detects a projection edited away from the fold, and rebuildProjections repairs it', async () => {
    const runId = await completedRun();
    tamper(`UPDATE runs SET status = 'running' WHERE run_id = ?`, runId);
    const reopened = openSqliteStore(path);
    expect((await verifyRun(reopened, runId)).problems).toEqual([expect.objectContaining({ kind: 'projection_mismatch', message: expect.stringContaining('status') })]);
    await rebuildProjections(reopened, runId);
    expect((await verifyRun(reopened, runId)).ok).toBe(true);
    await reopened.close();
  });

  it('verifyStore checks every run; a corrupt log is reported, not thrown, and recoverRun refuses it with E_LOG_CORRUPT', async () => {
    const good = await completedRun();
    const bad = await completedRun();
    tamper(`UPDATE events SET type = 'RunCompleted', data = '{}' WHERE run_id = ? AND seq = 2`, bad);
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
