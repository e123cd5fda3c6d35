/**
 * Runs paused by v1 (HMAC-signed tokens, SHA-256 stored in RunPaused.tokenHash)
 * keep working after the switch to random credentials: their tokens verify by
 * hash, with no secret. The v1 signature is recomputed here, independently of
 * src/, from the algorithm docs/adr/0004-resume-tokens.md recorded.
 */
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NewRunEvent, RunEvent } from '../../../src/events/types.js';
import { canonicalJson } from '../../../src/events/canonicalJson.js';
import { toApprovalRows, toRunRow } from '../../../src/projections/projectRun.js';
import { approveGate, resumePlaybook } from '../../../src/runtime/gates.js';
import { foldStoredEvents } from '../../../src/runtime/loadRun.js';
import { readRunEvents, verifyRun } from '../../../src/runtime/queries.js';
import type { EventStore } from '../../../src/store/eventStore.js';
import { scriptedDispatcher, SECRET, tempStore } from '../../helpers/runtimeHarness.js';

let store: EventStore;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ store, cleanup } = await tempStore()));
afterEach(() => cleanup());

const golden = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'fixtures', 'logs', 'release-approved-completed.json'), 'utf8')) as { events: RunEvent[] };

/** The v1 token of a RunPaused, as v1 signed it (record.ts recorded the golden logs with SECRET). */
function v1Token(runId: string, paused: RunEvent & { type: 'RunPaused' }): string {
  const { approvalId, nodeId, contextDigest, expiresAt } = paused.data;
  const message = canonicalJson(['cantbook-resume-v1', runId, approvalId, nodeId, contextDigest, expiresAt ?? null]);
  return `cbk1.${approvalId}.${createHmac('sha256', SECRET).update(message, 'utf8').digest('base64url')}`;
}

/** Writes `events` (a prefix of a recorded log, maybe altered) as a run of this store, projections included. */
async function importRun(runId: string, events: readonly RunEvent[]): Promise<void> {
  const { playbook, snapshot } = foldStoredEvents(runId, events);
  await store.append({
    runId,
    expectedVersion: 0,
    events: events.map(({ type, data, at }) => ({ type, data, at }) as NewRunEvent),
    run: toRunRow(playbook.model, snapshot),
    approvals: toApprovalRows(snapshot),
    playbook: { sourceHash: playbook.sourceHash, name: playbook.model.definition.name, source: playbook.source },
  });
}

const runId = golden.events[0]!.runId;
const pausedAt = golden.events.findIndex((event) => event.type === 'RunPaused');
const paused = golden.events[pausedAt] as RunEvent & { type: 'RunPaused' };
const beforeExpiry = () => new Date(Date.parse(paused.at) + 60_000);

describe('tokens of v1 runs', () => {
  it('the recomputed v1 token is the one whose hash the golden log stored (the oracle is right)', () => {
    expect(createHash('sha256').update(v1Token(runId, paused)).digest('hex')).toBe(paused.data.tokenHash);
  });

  it('a v1 run paused at its gate is approved and resumed with its v1 token, without any secret, and still verifies', async () => {
    await importRun(runId, golden.events.slice(0, pausedAt + 1));
    const token = v1Token(runId, paused);
    await expect(approveGate({ store, token, approver: 'alice', now: beforeExpiry })).resolves.toMatchObject({ status: 'approved', runId });
    const resumed = await resumePlaybook({ store, approvalToken: token, dispatcher: scriptedDispatcher(), now: beforeExpiry });
    expect(resumed.terminalStatus).toBe('completed');
    const events = await readRunEvents(store, runId);
    // The imported prefix is byte-for-byte the golden history: same hashes.
    expect(events.slice(0, pausedAt + 1).map((e) => e.hash)).toEqual(golden.events.slice(0, pausedAt + 1).map((e) => e.hash));
    expect((await verifyRun(store, runId)).ok).toBe(true);
  });

  it('a v1 token signed with the right secret for another gate, or any other secret for this one, is refused', async () => {
    await importRun(runId, golden.events.slice(0, pausedAt + 1));
    const other = createHmac('sha256', 'another-secret').update('x').digest('base64url');
    await expect(approveGate({ store, token: `cbk1.${paused.data.approvalId}.${other}`, approver: 'mallory', approvalSecret: SECRET, now: beforeExpiry })).rejects.toMatchObject({ code: 'E_APPROVAL_TOKEN_INVALID' });
  });

  it('the token stays bound to the context digest recorded at the gate: a log whose context no longer has that digest is refused', async () => {
    const altered = golden.events.slice(0, pausedAt + 1).map((event) =>
      event.type === 'RunPaused' ? ({ ...event, data: { ...event.data, contextDigest: '0'.repeat(64) } } as RunEvent) : event,
    );
    await importRun(runId, altered);
    await expect(approveGate({ store, token: v1Token(runId, paused), approver: 'alice', now: beforeExpiry })).rejects.toMatchObject({
      code: 'E_APPROVAL_TOKEN_INVALID',
      message: expect.stringContaining('context changed'),
    });
  });

  it('and to the expiry: after expiresAt the genuine token gets E_APPROVAL_EXPIRED', async () => {
    await importRun(runId, golden.events.slice(0, pausedAt + 1));
    const late = () => new Date(Date.parse(paused.data.expiresAt as string) + 1);
    await expect(approveGate({ store, token: v1Token(runId, paused), approver: 'alice', now: late })).rejects.toMatchObject({ code: 'E_APPROVAL_EXPIRED' });
  });
});
